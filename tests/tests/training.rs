//! Training on the built-in task: the model learns, a run resumed from a checkpoint continues
//! exactly as an uninterrupted one, and both phases run on every backend.

use stepgrpo_core::model::{CausalLm, init, to_hf_safetensors};
use stepgrpo_core::rng::Rng;
use stepgrpo_core::task;
use stepgrpo_core::train::checkpoint::{self, TrainerState};
use stepgrpo_core::train::{
    Method, ProblemSet, RlConfig, RlTrainer, Sequence, SftConfig, SftTrainer, TrainConfig, nll_gradients,
};
use stepgrpo_tests::devices;

fn small_sft(steps: usize) -> SftConfig {
    let mut c = SftConfig { max_steps: steps, batch_size: 8, ..SftConfig::default() };
    // Batches of 8 are noisier than the default 32: a gentler rate than the default 3e-3.
    c.optim.learning_rate = 1e-3;
    c.optim.warmup_steps = 2;
    c
}

fn small_rl(steps: usize) -> RlConfig {
    let mut c = TrainConfig::builtin().rl;
    c.max_steps = steps;
    c.prompts_per_step = 2;
    c.gradient_accumulation_steps = 2;
    c.rollout.num_generations = 3;
    c.rollout.max_completion_length = 24;
    c.optim.learning_rate = 1e-3;
    c
}

fn weights(model: &CausalLm) -> Vec<u8> {
    pollster::block_on(to_hf_safetensors(model)).unwrap()
}

fn sft(steps: usize, device: &burn::tensor::Device) -> SftTrainer {
    sft_from(init(&task::model_config(), device), steps)
}

fn sft_from(model: CausalLm, steps: usize) -> SftTrainer {
    let (problems, _) = ProblemSet::builtin(&task::TaskConfig::default(), 1, 20);
    SftTrainer::new(model, task::tokenizer(), problems, small_sft(steps), 1).unwrap()
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

#[test]
fn supervised_gradients_computed_in_threads_are_the_whole_batch_s() {
    let device = burn::tensor::Device::flex().autodiff();
    let model = init(&task::model_config(), &device);
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
    // within 40 steps (a wrong sign or misaligned advantages make it fall). Measured in eight runs
    // (the initial weights differ): 0.034-0.063 over the first ten steps, 0.084-0.111 the last ten,
    // a rise of x1.6 to x2.5; one run in about ten rose by less than x1.4.
    let device = burn::tensor::Device::flex().autodiff();
    let easy =
        task::TaskConfig { levels: vec![task::Level { operands: 2, digits: 1 }], ..Default::default() };
    let (problems, _) = ProblemSet::builtin(&easy, 1, 20);
    let mut warm = SftConfig { max_steps: 60, batch_size: 16, ..SftConfig::default() };
    warm.optim.learning_rate = 2e-3;
    warm.optim.warmup_steps = 10;
    let mut sft =
        SftTrainer::new(init(&task::model_config(), &device), task::tokenizer(), problems.clone(), warm, 1)
            .unwrap();
    while !sft.is_done() {
        pollster::block_on(sft.step()).unwrap();
    }
    let mut c = TrainConfig::builtin().rl;
    c.max_steps = 40;
    c.prompts_per_step = 4;
    c.rollout.max_completion_length = 32;
    c.optim.learning_rate = 1e-4;
    c.optim.warmup_steps = 0;
    let mut rl = RlTrainer::new(Method::Grpo, sft.model, task::tokenizer(), vec![0], problems, c, 1).unwrap();
    let rewards: Vec<f64> = (0..40).map(|_| pollster::block_on(rl.step()).unwrap().metrics.reward).collect();
    let mean = |r: &[f64]| r.iter().sum::<f64>() / r.len() as f64;
    let (first, last) = (mean(&rewards[..10]), mean(&rewards[30..]));
    assert!(last > 1.25 * first, "reward {first:.3} -> {last:.3}: {rewards:?}");
}

#[test]
fn resuming_from_a_checkpoint_continues_exactly() {
    let device = burn::tensor::Device::flex().autodiff();
    let dir = std::env::temp_dir().join(format!("stepgrpo-resume-{}", std::process::id()));
    let files = task::tokenizer_files();
    let (problems, _) = ProblemSet::builtin(&task::TaskConfig::default(), 1, 20);
    let (tokenizer, eos) = (task::tokenizer(), vec![0]);

    // SFT: 4 steps straight, or 2 + checkpoint + a fresh process's restore + 2, from the same
    // initial weights (read from disk: the device's random stream is shared with parallel tests).
    let start = dir.join("init");
    pollster::block_on(stepgrpo_core::model::save(&init(&task::model_config(), &device), &start)).unwrap();
    let start = || stepgrpo_core::model::load(&start, &device).unwrap();
    let mut straight = sft_from(start(), 4);
    while !straight.is_done() {
        pollster::block_on(straight.step()).unwrap();
    }
    let mut first = sft_from(start(), 4);
    for _ in 0..2 {
        pollster::block_on(first.step()).unwrap();
    }
    let state = TrainerState { phase: "sft".into(), step: 2 };
    let path =
        pollster::block_on(checkpoint::save(&dir.join("sft"), &first.model, &first.optim, &state, &files))
            .unwrap();
    let mut resumed = sft_from(start(), 4);
    resumed.restore(checkpoint::load(&path, init(&task::model_config(), &device)).unwrap()).unwrap();
    while !resumed.is_done() {
        pollster::block_on(resumed.step()).unwrap();
    }
    assert_eq!(weights(&straight.model), weights(&resumed.model), "SFT resumed differs");

    // RL from the SFT model: 2 steps straight, or 1 + checkpoint + restore + 1.
    let base = straight.model.clone();
    let rl = |steps| {
        RlTrainer::new(
            Method::StepGrpo,
            base.clone(),
            tokenizer.clone(),
            eos.clone(),
            problems.clone(),
            small_rl(steps),
            1,
        )
        .unwrap()
    };
    let mut straight = rl(2);
    while !straight.is_done() {
        pollster::block_on(straight.step()).unwrap();
    }
    let mut first = rl(2);
    pollster::block_on(first.step()).unwrap();
    let state = TrainerState { phase: "step_grpo".into(), step: 1 };
    let path =
        pollster::block_on(checkpoint::save(&dir.join("rl"), &first.model, &first.optim, &state, &files))
            .unwrap();
    let mut resumed = rl(2);
    resumed.restore(checkpoint::load(&path, base.clone()).unwrap()).unwrap();
    pollster::block_on(resumed.step()).unwrap();
    assert_eq!(weights(&straight.model), weights(&resumed.model), "RL resumed differs");
    assert_ne!(weights(&straight.model), weights(&base), "RL changed nothing");

    // The checkpoint is a model directory transformers-style loaders open.
    let p = stepgrpo_core::pretrained::Pretrained::load(&path, &device).unwrap();
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
        let (problems, _) = ProblemSet::builtin(&task::TaskConfig::default(), 1, 20);
        for method in [Method::StepGrpo, Method::GrpoLengthPenalty] {
            let mut rl = RlTrainer::new(
                method,
                t.model.clone(),
                task::tokenizer(),
                vec![0],
                problems.clone(),
                small_rl(1),
                2,
            )
            .unwrap();
            let step = pollster::block_on(rl.step()).unwrap();
            assert_eq!(step.group.len(), 3, "{name}");
            assert!(
                step.metrics.loss.is_finite() && step.metrics.mean_length > 0.0,
                "{name}: {:?}",
                step.metrics
            );
        }
    }
}
