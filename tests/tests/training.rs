//! Training on the built-in task: the model learns, a run resumed from a checkpoint continues
//! exactly as an uninterrupted one, and both phases run on every backend.

use burn::module::Module;
use burn::tensor::DType;
use stepgrpo_core::model::{CausalLm, Dtype, from_safetensors, init, to_hf_safetensors};
use stepgrpo_core::rng::Rng;
use stepgrpo_core::rollout::LocalEngine;
use stepgrpo_core::task;
use stepgrpo_core::train::checkpoint::{self, TrainerState};
use stepgrpo_core::train::{
    DirStore, Method, RlConfig, RlTrainer, RunData, Schedule, Sequence, SftConfig, SftTrainer,
    builtin_recipe, evaluate, nll_gradients, prepare,
};
use stepgrpo_tests::builtin::{data, small_rl};
use stepgrpo_tests::{devices, seeded};

fn small_sft(steps: usize) -> SftConfig {
    let mut c = SftConfig { max_steps: steps, batch_size: 8, ..SftConfig::default() };
    // Batches of 8 are noisier than the default 32: a gentler rate than the default 3e-3.
    c.optim.learning_rate = 1e-3;
    c.optim.warmup_steps = 2;
    c
}

fn weights(model: &CausalLm) -> Vec<u8> {
    pollster::block_on(to_hf_safetensors(model)).unwrap()
}

fn sft(steps: usize, device: &burn::tensor::Device) -> SftTrainer {
    sft_from(seeded(device, 3, || init(&task::model_config(), device)), steps)
}

/// `model` as its bf16 checkpoint loads: matrices in bf16 (f16 on wgpu; f32 where the device has
/// neither), the rest f32.
fn in_bf16(model: &CausalLm) -> CausalLm {
    let mut model = model.clone();
    model.config.dtype = Dtype::BF16;
    let bytes = pollster::block_on(to_hf_safetensors(&model)).unwrap();
    from_safetensors(&model.config, bytes, &model.device()).unwrap()
}

fn sft_from(model: CausalLm, steps: usize) -> SftTrainer {
    SftTrainer::new(model, &data(task::TaskConfig::default()), small_sft(steps), 1).unwrap()
}

/// An RL trainer on the built-in task whose rollouts come from the in-process engine.
fn rl_trainer(method: Method, model: CausalLm, data: &RunData, config: RlConfig, seed: u64) -> RlTrainer {
    let engine = Box::new(LocalEngine::new(data.tokenizer.clone(), data.eos.clone()));
    RlTrainer::new(method, model, data, config, seed, engine).unwrap()
}

#[test]
fn sft_lowers_the_loss() {
    let device = burn::tensor::Device::flex().autodiff();
    let mut t = sft(40, &device);
    let first = pollster::block_on(t.step()).unwrap().loss;
    let mut last = first;
    while !t.is_done() {
        last = pollster::block_on(t.step()).unwrap().loss;
    }
    assert!(last < 0.6 * first, "loss {first} -> {last}");
}

/// The learning guard: a reduced recipe (the task's traces over a fixed pool of 16 problems, a
/// two-layer model of width 64, 300 steps) must answer at least 15 of its 16 problems greedily on
/// the CPU, and wgpu must follow the CPU's first steps from the same start. A change that stops SFT
/// from learning (a wrong gradient or kernel, a loss mask off by one, an optimizer that does not
/// step) fails it in seconds, where the full recipe would take minutes to show it.
#[test]
fn sft_learns_a_fixed_pool_of_problems_on_every_backend() {
    let model = task::TinyModel {
        hidden_size: 64,
        intermediate_size: 192,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        head_dim: 32,
        initializer_range: 0.02,
    };
    let data = data(task::TaskConfig { pool_size: 16, model, ..task::TaskConfig::default() });
    let pool: Vec<_> = data.problems.pool(1).iter().map(task::Chain::problem).collect();
    assert_eq!(pool.len(), 16);
    let mut c = SftConfig { max_steps: 300, batch_size: 16, ..SftConfig::default() };
    c.optim.learning_rate = 3e-3;
    c.optim.warmup_steps = 10;
    c.optim.lr_scheduler_type = Schedule::Cosine;
    let [(_, cpu), (_, wgpu)] = <[_; 2]>::try_from(devices()).unwrap();
    let cpu = cpu.autodiff();
    let start = seeded(&cpu, 3, || init(&model.config(), &cpu));
    let losses = |t: &mut SftTrainer, steps: usize| -> Vec<f64> {
        (0..steps).map(|_| pollster::block_on(t.step()).unwrap().loss).collect()
    };

    let mut t = SftTrainer::new(start.clone(), &data, c.clone(), 1).unwrap();
    let first = losses(&mut t, 5);
    let last = losses(&mut t, c.max_steps - 5).pop().unwrap();
    let greedy = stepgrpo_core::train::EvalConfig {
        temperature: 0.0,
        max_completion_length: 96,
        ..Default::default()
    }
    .rollout(&stepgrpo_core::rollout::RolloutConfig::default(), 0);
    let report =
        pollster::block_on(evaluate(&t.model.valid(), &data.tokenizer, &data.eos, &pool, &greedy)).unwrap();
    let right = report.samples.iter().filter(|s| s.correct).count();
    let wrong: Vec<_> = report.samples.iter().filter(|s| !s.correct).map(|s| &s.response).collect();
    assert!(right >= 15, "{right} of 16 right after SFT (final loss {last:.3}); wrong: {wrong:?}");

    // Training on wgpu to the end takes minutes on a software adapter; its first steps from the
    // same weights show it computes the same losses and updates.
    let mut t = SftTrainer::new(start.fork(&wgpu.autodiff()), &data, c, 1).unwrap();
    let on_wgpu = losses(&mut t, 5);
    for (step, (a, b)) in first.iter().zip(&on_wgpu).enumerate() {
        assert!((a - b).abs() < 1e-3 * a, "step {}: loss {b} on wgpu, {a} on the CPU", step + 1);
    }
}

/// A seed gives the built-in task the same starting model on every backend (each backend has its
/// own random generator, so a model drawn on the device would differ between CPU and wgpu), and
/// the model trains there.
#[test]
fn a_seed_starts_the_built_in_task_from_the_same_model_on_every_backend() {
    let mut config = builtin_recipe();
    config.eval.num_problems = 10;
    let starts: Vec<_> = devices()
        .into_iter()
        .map(|(name, device)| {
            let device = device.autodiff();
            let (data, model) =
                seeded(&burn::tensor::Device::flex(), 0, || prepare(&config, &device).unwrap());
            let start = weights(&model);
            let mut t = SftTrainer::new(model, &data, small_sft(1), 1).unwrap();
            pollster::block_on(t.step()).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, start)
        })
        .collect();
    for (name, start) in &starts[1..] {
        assert!(*start == starts[0].1, "{name}'s starting model differs from {}'s", starts[0].0);
    }
}

#[test]
fn supervised_gradients_computed_in_threads_are_the_whole_batch_s() {
    let device = burn::tensor::Device::flex().autodiff();
    let model = seeded(&device, 4, || init(&task::model_config(), &device));
    let (config, tokenizer, mut rng) = (task::TaskConfig::default(), task::tokenizer(), Rng::new(3));
    let examples: Vec<_> = task::problems(&config, 5, 7)
        .iter()
        .map(|c| task::Example::sample(c, &config, &mut rng).tokenize(&tokenizer).unwrap())
        .collect();
    let sequences: Vec<Sequence> = examples
        .iter()
        .map(|e| Sequence { prompt: &e.prompt, completion: &e.completion, trained: Some(&e.trained) })
        .collect();
    let read = |t: burn::tensor::Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
    let (loss, grads) = nll_gradients(&model, &sequences, 0, 1);
    let want = read(grads.get::<2>(model.embed_tokens.weight.id).unwrap());
    // Three threads over 3 + 3 + 1 rows of different lengths.
    let (sharded_loss, sharded) = nll_gradients(&model, &sequences, 0, 3);
    let got = read(sharded.get::<2>(model.embed_tokens.weight.id).unwrap());
    let scalar = |t: burn::tensor::Tensor<1>| t.into_scalar::<f32>();
    assert!((scalar(loss) - scalar(sharded_loss)).abs() < 1e-5);
    let scale = want.iter().fold(0f32, |m, g| m.max(g.abs()));
    assert!(scale > 0.0);
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-4 * scale, "{g} vs {w}");
    }
}

#[test]
fn rl_raises_the_reward_on_an_easy_task() {
    // One-operation problems after a short warm start: most responses are still wrong or overthink
    // past a 32-token budget without an answer, and GRPO's reward (accuracy + format) must rise
    // within 40 steps (a wrong sign or misaligned advantages make it fall). The initial weights are
    // seeded (and drawn under the tests' lock), so the run is the same every time. Measured from
    // initial seeds 5 to 8: first ten steps 0.059 / 0.097 / 0.053 / 0.047, last ten 0.115 / 0.116
    // / 0.128 / 0.110 (x1.95, x1.19, x2.41, x2.33: a warm start that is already right more often
    // gains less).
    let device = burn::tensor::Device::flex().autodiff();
    let easy =
        data(task::TaskConfig { levels: vec![task::Level { operands: 2, digits: 1 }], ..Default::default() });
    let mut warm = SftConfig { max_steps: 60, batch_size: 16, ..SftConfig::default() };
    warm.optim.learning_rate = 2e-3;
    warm.optim.warmup_steps = 10;
    let start = seeded(&device, 5, || init(&task::model_config(), &device));
    let mut sft = SftTrainer::new(start, &easy, warm, 1).unwrap();
    while !sft.is_done() {
        pollster::block_on(sft.step()).unwrap();
    }
    let mut c = builtin_recipe().rl;
    c.max_steps = 40;
    c.prompts_per_step = 4;
    c.rollout.max_completion_length = 32;
    c.optim.learning_rate = 1e-4;
    c.optim.warmup_steps = 0;
    let mut rl = rl_trainer(Method::Grpo, sft.model, &easy, c, 1);
    let rewards: Vec<f64> = (0..40).map(|_| pollster::block_on(rl.step()).unwrap().metrics.reward).collect();
    let mean = |r: &[f64]| r.iter().sum::<f64>() / r.len() as f64;
    let (first, last) = (mean(&rewards[..10]), mean(&rewards[30..]));
    assert!(last > 1.25 * first, "reward {first:.3} -> {last:.3}: {rewards:?}");
}

#[test]
fn resuming_from_a_checkpoint_continues_exactly() {
    let device = burn::tensor::Device::flex().autodiff();
    let dir = std::env::temp_dir().join(format!("stepgrpo-resume-{}", std::process::id()));
    let store = DirStore::new(&dir);
    let data = data(task::TaskConfig::default());

    // SFT: 4 steps straight, or 2 + checkpoint + a fresh process's restore + 2, from the same
    // initial weights.
    let initial = seeded(&device, 6, || init(&task::model_config(), &device));
    let start = || initial.clone();
    let mut straight = sft_from(start(), 4);
    while !straight.is_done() {
        pollster::block_on(straight.step()).unwrap();
    }
    let mut first = sft_from(start(), 4);
    for _ in 0..2 {
        pollster::block_on(first.step()).unwrap();
    }
    let state = TrainerState { phase: "sft".into(), step: 2, ..TrainerState::default() };
    let path = pollster::block_on(checkpoint::save(
        &store,
        &first.model,
        &first.optim,
        &state,
        &data.files,
        &data.base_model,
        None,
    ))
    .unwrap();
    let mut resumed = sft_from(start(), 4);
    resumed.restore(checkpoint::load(&store, &path, init(&task::model_config(), &device)).unwrap()).unwrap();
    while !resumed.is_done() {
        pollster::block_on(resumed.step()).unwrap();
    }
    assert_eq!(weights(&straight.model), weights(&resumed.model), "SFT resumed differs");

    // RL from the SFT model: 4 steps straight, or 1 + checkpoint + restore + 3, with two steps
    // per generation of rollouts, so the checkpoint falls inside one and must carry it.
    let base = straight.model.clone();
    let rl = || {
        let mut c = small_rl(4);
        c.steps_per_generation = 2;
        c.prompts_per_step = 1;
        rl_trainer(Method::StepGrpo, base.clone(), &data, c, 1)
    };
    let mut straight = rl();
    while !straight.is_done() {
        pollster::block_on(straight.step()).unwrap();
    }
    let mut first = rl();
    pollster::block_on(first.step()).unwrap();
    let state = TrainerState { phase: "step_grpo".into(), step: 1, ..TrainerState::default() };
    let pending = first.generation_for(first.step);
    assert!(pending.is_some(), "step 1 of 2 leaves its generation unfinished");
    let path = pollster::block_on(checkpoint::save(
        &store,
        &first.model,
        &first.optim,
        &state,
        &data.files,
        &data.base_model,
        pending,
    ))
    .unwrap();
    let mut resumed = rl();
    resumed.restore(checkpoint::load(&store, &path, base.clone()).unwrap()).unwrap();
    while !resumed.is_done() {
        pollster::block_on(resumed.step()).unwrap();
    }
    assert_eq!(weights(&straight.model), weights(&resumed.model), "RL resumed differs");
    assert_ne!(weights(&straight.model), weights(&base), "RL changed nothing");

    // The checkpoint is a model directory transformers-style loaders open.
    let p = stepgrpo_core::pretrained::Pretrained::load(&store.path(&path), &device).unwrap();
    assert_eq!(p.eos_token_ids, vec![0]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn both_phases_run_on_every_backend() {
    for (name, device) in devices() {
        let device = device.autodiff();
        let mut t = sft(1, &device);
        let m = pollster::block_on(t.step()).unwrap();
        assert!(m.loss.is_finite() && m.grad_norm > 0.0, "{name}: {m:?}");
        let data = data(task::TaskConfig::default());
        for method in [Method::StepGrpo, Method::GrpoLengthPenalty] {
            let mut rl = rl_trainer(method, t.model.clone(), &data, small_rl(1), 2);
            let step = pollster::block_on(rl.step()).unwrap();
            assert_eq!(step.group.len(), 3, "{name}");
            assert!(
                step.metrics.loss.is_finite() && step.metrics.mean_length > 0.0,
                "{name}: {:?}",
                step.metrics
            );
        }
        // From a half-precision checkpoint every weight trains in f32 (the KL reference stays half).
        let mut rl = rl_trainer(Method::StepGrpo, in_bf16(&t.model), &data, small_rl(1), 2);
        assert_eq!(rl.model.matrix_dtype(), DType::F32, "{name}");
        let step = pollster::block_on(rl.step()).unwrap();
        assert!(
            step.metrics.loss.is_finite() && step.metrics.grad_norm.is_finite(),
            "{name}: {:?}",
            step.metrics
        );
    }
}

/// A rollout source that answers every prompt of the built-in task with the same two responses,
/// one right and one wrong, so that only the update is under test.
struct RightAndWrong {
    tokenizer: stepgrpo_core::text::Tokenizer,
    eos: u32,
}

impl stepgrpo_core::rollout::RolloutSource for RightAndWrong {
    fn collect<'a>(
        &'a mut self,
        request: stepgrpo_core::rollout::RolloutRequest<'a>,
    ) -> stepgrpo_core::rollout::LocalFuture<'a, stepgrpo_core::Result<Vec<stepgrpo_core::rollout::Rollout>>>
    {
        Box::pin(async move {
            let mut out = Vec::new();
            for (p, prompt) in request.prompts.iter().enumerate() {
                let answer = task::Chain::parse(&self.tokenizer.decode(prompt)?)?.answer();
                for given in [answer, answer + 1] {
                    let mut ids = self.tokenizer.encode(&format!("</think>\n\n\\boxed{{{given}}}"))?;
                    ids.push(self.eos);
                    out.push(stepgrpo_core::rollout::Rollout {
                        prompt: p,
                        log_probs: vec![None; ids.len()],
                        ids,
                        step_starts: vec![0],
                        exit: stepgrpo_core::rollout::ExitType::Natural,
                        probes: Vec::new(),
                        clipped: false,
                        policy_version: 0,
                    });
                }
            }
            Ok(out)
        })
    }

    fn load_weights<'a>(
        &'a mut self,
        _: &'a CausalLm,
        _: u64,
    ) -> stepgrpo_core::rollout::LocalFuture<'a, stepgrpo_core::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn name(&self) -> &str {
        "right-and-wrong"
    }
}

/// With two passes over each generation (`num_iterations`), the second pass trains against the
/// sampling policy's log-probs: once a large step moves the ratio out of [1 - epsilon,
/// 1 + epsilon_high], the clip holds those tokens and the update differs from an unclipped one;
/// the first pass, at ratio 1, is the same under both.
#[test]
fn clipping_changes_the_update_once_the_ratio_leaves_the_band() {
    let device = burn::tensor::Device::flex().autodiff();
    let data = data(task::TaskConfig::default());
    let start = seeded(&device, 8, || init(&task::model_config(), &device));
    let trainer = |epsilon: f64, epsilon_high: f64| {
        let mut c = small_rl(2);
        c.num_iterations = 2;
        c.prompts_per_step = 2;
        c.rollout.num_generations = 2;
        c.rollout.truncation = None;
        c.grpo.beta = 0.0;
        (c.grpo.epsilon, c.grpo.epsilon_high, c.grpo.dual_clip) = (epsilon, epsilon_high, 1e9);
        (c.optim.learning_rate, c.optim.max_grad_norm, c.optim.warmup_steps) = (3e-2, 0.0, 0);
        let source = Box::new(RightAndWrong { tokenizer: data.tokenizer.clone(), eos: data.eos[0] });
        RlTrainer::new(Method::Grpo, start.clone(), &data, c, 1, source).unwrap()
    };
    let (mut clipped, mut free) = (trainer(0.2, 0.28), trainer(0.999, 1e9));
    let (c1, f1) = (pollster::block_on(clipped.step()).unwrap(), pollster::block_on(free.step()).unwrap());
    assert_eq!(weights(&clipped.model), weights(&free.model), "at ratio 1 nothing is clipped");
    assert_eq!(c1.metrics.clip_ratio_region, 0.0);
    assert!(c1.metrics.reward_std > 0.0, "a right and a wrong answer per group");
    let (c2, f2) = (pollster::block_on(clipped.step()).unwrap(), pollster::block_on(free.step()).unwrap());
    assert!(c2.metrics.clip_ratio_region > 0.0, "the second pass leaves the band: {:?}", c2.metrics);
    assert_eq!(c2.metrics.clip_ratio_region, c2.metrics.clip_ratio_low + c2.metrics.clip_ratio_high);
    assert_eq!(f2.metrics.clip_ratio_region, 0.0);
    assert_ne!(weights(&clipped.model), weights(&free.model), "the clip changed the update");
    assert!(
        c2.metrics.rollout_seconds == 0.0 && f1.metrics.rollout_seconds > 0.0,
        "one generation, two passes"
    );
}

#[test]
fn lora_trains_only_the_adapters_and_resumes_exactly() {
    let device = burn::tensor::Device::flex().autodiff();
    let dir = std::env::temp_dir().join(format!("stepgrpo-lora-{}", std::process::id()));
    let store = DirStore::new(&dir);
    let data = data(task::TaskConfig::default());
    // The base is kept in bf16, as a bf16 checkpoint loads; the adapters train in f32.
    let base = in_bf16(&seeded(&device, 4, || init(&task::model_config(), &device)));
    assert_eq!(base.matrix_dtype(), DType::BF16);
    let rl = || {
        let mut c = small_rl(2);
        (c.prompts_per_step, c.grpo.beta) = (1, 0.04);
        c.lora = Some(stepgrpo_core::model::LoraConfig { r: 4, ..Default::default() });
        rl_trainer(Method::StepGrpo, base.clone(), &data, c, 1)
    };
    let mut straight = rl();
    while !straight.is_done() {
        pollster::block_on(straight.step()).unwrap();
    }
    assert_eq!(weights(&straight.model.without_adapters()), weights(&base), "the base moved");
    assert_eq!(straight.model.matrix_dtype(), DType::BF16, "training widened the base");
    assert_ne!(weights(&straight.model), weights(&base), "the adapters learned nothing");

    let mut first = rl();
    pollster::block_on(first.step()).unwrap();
    let state = TrainerState { phase: "step_grpo".into(), step: 1, ..TrainerState::default() };
    let path = pollster::block_on(checkpoint::save(
        &store,
        &first.model,
        &first.optim,
        &state,
        &data.files,
        &data.base_model,
        first.generation_for(first.step),
    ))
    .unwrap();
    let mut resumed = rl();
    let template = resumed.model.clone();
    resumed.restore(checkpoint::load(&store, &path, template).unwrap()).unwrap();
    pollster::block_on(resumed.step()).unwrap();
    assert_eq!(weights(&straight.model), weights(&resumed.model), "LoRA resumed differs");
    assert_eq!(weights(&resumed.model.without_adapters()), weights(&base), "the base moved after resuming");
    // The checkpoint carries the adapter in PEFT's format beside the merged model.
    for name in ["adapter_config.json", "adapter_model.safetensors"] {
        assert!(store.path(&format!("{path}/adapter/{name}")).exists(), "{name}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
