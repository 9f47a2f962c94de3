//! `stepgrpo bench`: prefill and decode throughput with the key/value cache, and one training step
//! (or, with `--vllm-server-base-url`, the engines side by side: see [`crate::bench_engines`]; with
//! `--memory`, the peak memory of a Step-GRPO step: see [`crate::bench_memory`]).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::Serialize;
use stepgrpo_core::decode::{GenerateConfig, SamplingConfig, feed, generate, prefill};
use stepgrpo_core::logprobs::token_log_probs;
use stepgrpo_core::model::{self, CausalLm, Dtype};
use stepgrpo_core::pretrained::Pretrained;
use stepgrpo_core::rng::Rng;
use stepgrpo_core::rollout::{ExitType, Rollout, RolloutConfig, TruncationConfig, rollout};
use stepgrpo_core::steps::Triggers;

use crate::DeviceArgs;
use crate::bench_memory::{MemoryArgs, Setting, Shape};

/// Arguments of `stepgrpo bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Hugging Face model directory (not needed with --memory).
    #[arg(long, required_unless_present = "memory")]
    model: Option<PathBuf>,
    /// Rows decoded together.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Prompt tokens per row.
    #[arg(long, default_value_t = 128)]
    prompt_len: usize,
    /// New tokens per row.
    #[arg(long, default_value_t = 128)]
    new_tokens: usize,
    /// Timed repetitions (the best is reported); one untimed warm-up run comes first.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Also time truncated rollouts with probes against plain rollouts on the same prompts (needs
    /// tokenizer.json), with and without the probes' early stop; no probe may exit, so every run
    /// produces the same tokens.
    #[arg(long)]
    rollout: bool,
    /// With --rollout: the probes' threshold (a probe that passes it fails the benchmark).
    #[arg(long, default_value_t = 0.95)]
    probe_threshold: f64,
    /// Trigger words of the rollout benchmark, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "Wait")]
    triggers: Vec<String>,
    /// Compare the in-process engine with these vLLM servers instead (serving --model; see
    /// docs/vllm.md): rollout tokens/s, ms per probe and seconds per Step-GRPO step.
    #[arg(long = "vllm-server-base-url", alias = "vllm-url", value_delimiter = ',')]
    vllm_url: Vec<String>,
    /// With --vllm-server-base-url: the problems (JSONL) for a model other than the built-in task's.
    #[arg(long)]
    train_data: Option<PathBuf>,
    /// With --vllm-server-base-url: Step-GRPO steps timed per engine (after one untimed step).
    #[arg(long, default_value_t = 3)]
    rl_steps: usize,
    /// With --vllm-server-base-url: where the policy is written for the servers to load (they must see it).
    #[arg(long, default_value = "runs/bench-vllm-weights")]
    vllm_weights_dir: PathBuf,
    /// Measure the peak memory of one Step-GRPO step (rollouts + update) on a random model of
    /// --shape under each of --memory-settings, each in its own process.
    #[arg(long)]
    memory: bool,
    /// With --memory: the model's shape (Qwen3's real vocabulary of 151,936 ids).
    #[arg(long, value_enum, default_value = "qwen3-0.6b")]
    shape: Shape,
    /// With --memory: the settings, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "full,full+checkpointing,lora,lora+checkpointing"
    )]
    memory_settings: Vec<Setting>,
    /// With --memory: prompts in the step.
    #[arg(long, default_value_t = 2)]
    prompts: usize,
    /// With --memory: responses per prompt.
    #[arg(long, default_value_t = 2)]
    generations: usize,
    /// With --memory: tokens per response (the random model runs each to this length).
    #[arg(long, default_value_t = 256)]
    response_len: usize,
    /// With --memory: keep only the first N decoder layers of --shape (each layer, the attention
    /// and the vocabulary as in the shape): long responses in reach of a CPU.
    #[arg(long)]
    layers: Option<usize>,
    /// With --memory: run this one setting here (how the benchmark calls itself).
    #[arg(long, value_enum, hide = true)]
    memory_setting: Option<Setting>,
    /// Print one JSON object (with --memory: one per setting).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    device: DeviceArgs,
}

/// What `stepgrpo bench` measures.
#[derive(Serialize, Debug)]
struct Report {
    device: String,
    batch: usize,
    prompt_len: usize,
    new_tokens: usize,
    /// Prompt tokens per second in the batched prefill.
    prefill_tokens_per_s: f64,
    /// Generated tokens per second (whole batch) after the prefill.
    decode_tokens_per_s: f64,
    /// Seconds for forward + backward + AdamW on a [batch, prompt_len + new_tokens] batch.
    train_step_s: f64,
    /// With `--rollout`: the probe overhead.
    #[serde(skip_serializing_if = "Option::is_none")]
    rollout: Option<RolloutReport>,
}

/// Truncated rollout with probes against plain sampling, same prompts and tokens.
#[derive(Serialize, Debug)]
struct RolloutReport {
    /// The probes' threshold (none may exit, so every run produces the same tokens).
    probe_threshold: f64,
    /// Seconds for the rollouts without probes.
    plain_s: f64,
    /// Seconds with a probe at every trigger, each stopped once it can no longer pass.
    probed_s: f64,
    /// probed_s / plain_s.
    ratio: f64,
    /// Seconds with every probe decoded to its end (`probe_early_stop = false`).
    full_probes_s: f64,
    /// full_probes_s / plain_s.
    full_ratio: f64,
    /// Probes made (the same in both probed runs).
    probes: usize,
    /// Greedy probe tokens decoded with the early stop.
    probe_tokens: usize,
    /// Greedy probe tokens decoded without it.
    full_probe_tokens: usize,
    /// Response tokens generated (identical in every run).
    tokens: usize,
}

fn bench_rollout(args: &Args, device: &Device, prompts: &[Vec<u32>]) -> anyhow::Result<RolloutReport> {
    let p = Pretrained::load_as(args.model.as_deref().context("--model")?, device, args.device.dtype)?;
    let tok = p.tokenizer.as_ref().context("--rollout needs tokenizer.json in the model directory")?;
    let triggers = Triggers::new(args.triggers.clone()).context("--triggers")?;
    let config = |truncation| RolloutConfig {
        num_generations: 1,
        max_completion_length: args.new_tokens,
        sampling: SamplingConfig { seed: 3, ..SamplingConfig::default() },
        truncation,
        triggers: triggers.clone(),
        ..RolloutConfig::default()
    };
    let probing = |probe_early_stop| TruncationConfig {
        probe_threshold: args.probe_threshold,
        probe_early_stop,
        // No other exit either: every run decodes the plain rollout's tokens.
        think_budget_ratio: 1.0,
        budget_margin: 0,
        repetition_window: 0,
        ..Default::default()
    };
    let run = |c: &RolloutConfig| pollster::block_on(rollout(&p.model, tok, prompts, &[], c));
    let (plain, probed, full) = (config(None), config(Some(probing(true))), config(Some(probing(false))));
    let (reference, cut, whole) = (run(&plain)?, run(&probed)?, run(&full)?);
    let ids = |rs: &[Rollout]| rs.iter().map(|r| r.ids.clone()).collect::<Vec<_>>();
    anyhow::ensure!(
        ids(&reference) == ids(&cut) && ids(&cut) == ids(&whole),
        "the probed rollouts decode other tokens than the plain ones ({} early exits at --probe-threshold {}: raise it)",
        cut.iter().chain(&whole).filter(|r| r.exit == ExitType::EarlyExit).count(),
        args.probe_threshold
    );
    let probe_tokens =
        |rs: &[Rollout]| -> usize { rs.iter().flat_map(|r| r.probes.iter().map(|p| p.tokens)).sum() };
    let plain_s = best_of(args.repeat, || run(&plain).map(drop).map_err(Into::into))?;
    let probed_s = best_of(args.repeat, || run(&probed).map(drop).map_err(Into::into))?;
    let full_probes_s = best_of(args.repeat, || run(&full).map(drop).map_err(Into::into))?;
    Ok(RolloutReport {
        probe_threshold: args.probe_threshold,
        plain_s,
        probed_s,
        ratio: probed_s / plain_s,
        full_probes_s,
        full_ratio: full_probes_s / plain_s,
        probes: cut.iter().map(|r| r.probes.len()).sum(),
        probe_tokens: probe_tokens(&cut),
        full_probe_tokens: probe_tokens(&whole),
        tokens: reference.iter().map(|r| r.ids.len()).sum(),
    })
}

/// Seconds of `steps` greedy decode steps after a prefill of `prompts` (not timed), each reading
/// its ids back as generation does.
fn decode_seconds(model: &CausalLm, prompts: &[Vec<u32>], steps: usize) -> anyhow::Result<f64> {
    let (mut cache, mut logits) = prefill(model, prompts, None)?;
    let next = |logits: Tensor<2>| -> anyhow::Result<Vec<i64>> {
        let ids = logits.argmax(1).into_data();
        ids.convert::<i64>().try_to_vec::<i64>().map_err(|e| anyhow::anyhow!("reading ids: {e:?}"))
    };
    let mut ids = next(logits)?;
    let start = Instant::now();
    for _ in 0..steps {
        logits = feed(model, &mut cache, ids);
        ids = next(logits)?;
    }
    Ok(start.elapsed().as_secs_f64())
}

fn sync(device: &Device) -> anyhow::Result<()> {
    device.sync().map_err(|e| anyhow::anyhow!("device sync failed: {e:?}"))
}

fn random_ids(rows: usize, len: usize, vocab: usize, seed: u64) -> Vec<Vec<u32>> {
    let mut rng = Rng::new(seed);
    (0..rows).map(|_| (0..len).map(|_| rng.below(vocab) as u32).collect()).collect()
}

/// Best-of-n seconds of `f`, after one warm-up call (shader compilation, allocation).
fn best_of(n: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    f()?;
    let mut best = f64::INFINITY;
    for _ in 0..n.max(1) {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

fn train_step(model: CausalLm, ids: &[Vec<u32>], device: &Device) -> anyhow::Result<CausalLm> {
    let (b, t) = (ids.len(), ids[0].len());
    let flat: Vec<i64> = ids.iter().flatten().map(|&x| x as i64).collect();
    let all = Tensor::<2, Int>::from_data(TensorData::new(flat, [b, t]), device);
    let inputs = all.clone().narrow(1, 0, t - 1);
    let targets = all.narrow(1, 1, t - 1);
    let loss = token_log_probs(&model, inputs, targets, 1.0).log_probs.mean().neg();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    // PyTorch's AdamW defaults (burn's differ: eps 1e-5, weight decay 1e-4).
    let mut optim = AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(0.01).init();
    let model = optim.step(1e-4, model, grads);
    sync(device)?;
    Ok(model)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.batch > 0 && args.prompt_len > 0, "--batch and --prompt-len must be positive");
    anyhow::ensure!(args.new_tokens >= 2, "--new-tokens must be at least 2 (one token is the prefill's)");
    let selected = args.device.select();
    let device = selected.device.clone();
    if args.memory {
        anyhow::ensure!(args.layers != Some(0), "--layers must be at least 1");
        let memory = MemoryArgs {
            shape: args.shape,
            settings: args.memory_settings.clone(),
            prompts: args.prompts,
            generations: args.generations,
            response_len: args.response_len,
            layers: args.layers,
            dtype: args.device.dtype,
            json: args.json,
        };
        return match args.memory_setting {
            Some(setting) => crate::bench_memory::run_one(&memory, setting, &device),
            None => crate::bench_memory::run(&memory, &std::env::args().skip(1).collect::<Vec<_>>()),
        };
    }
    let model_dir = args.model.clone().context("--model")?;
    if !args.vllm_url.is_empty() {
        let engines = crate::bench_engines::EngineArgs {
            model: model_dir,
            urls: args.vllm_url,
            train_data: args.train_data,
            weights_dir: args.vllm_weights_dir,
            rl_steps: args.rl_steps,
            repeat: args.repeat,
        };
        return crate::bench_engines::run(engines, &device, &selected.description, args.json);
    }
    let model = model::load_as(&model_dir, &device, args.device.dtype)?;
    let vocab = model.config.vocab_size;
    let prompts = random_ids(args.batch, args.prompt_len, vocab, 1);
    let run = |max_new_tokens: usize| -> anyhow::Result<()> {
        let config = GenerateConfig {
            max_new_tokens,
            sampling: SamplingConfig::greedy(),
            eos_token_ids: Vec::new(),
            stop_strings: Vec::new(),
        };
        pollster::block_on(generate(&model, &prompts, &config, None))?;
        Ok(())
    };
    // Prefill alone = generating one token; decode steps are timed on their own after it.
    let prefill_s = best_of(args.repeat, || run(1))?;
    let mut decode_s = f64::INFINITY;
    for _ in 0..=args.repeat.max(1) {
        decode_s = decode_s.min(decode_seconds(&model, &prompts, args.new_tokens - 1)?);
    }

    let train_device = device.clone().autodiff();
    // Every weight trains: f32 master weights, as the trainer keeps them.
    let mut train_model = model::load_as(&model_dir, &train_device, Some(Dtype::F32))
        .context("loading the model for training")?;
    let batch = random_ids(args.batch, args.prompt_len + args.new_tokens, vocab, 2);
    let train_step_s = best_of(args.repeat, || {
        train_model = train_step(train_model.clone(), &batch, &train_device)?;
        Ok(())
    })?;

    let report = Report {
        device: selected.description,
        batch: args.batch,
        prompt_len: args.prompt_len,
        new_tokens: args.new_tokens,
        prefill_tokens_per_s: (args.batch * args.prompt_len) as f64 / prefill_s,
        decode_tokens_per_s: (args.batch * (args.new_tokens - 1)) as f64 / decode_s,
        train_step_s,
        rollout: if args.rollout { Some(bench_rollout(&args, &device, &prompts)?) } else { None },
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("device            {}", report.device);
        println!("prefill           {:.0} tokens/s", report.prefill_tokens_per_s);
        println!("decode            {:.0} tokens/s", report.decode_tokens_per_s);
        println!("training step     {:.3} s", report.train_step_s);
        if let Some(r) = &report.rollout {
            println!(
                "rollout probes    {:.2}x the plain rollout time ({} probes decoding {} tokens; {} tokens)",
                r.ratio, r.probes, r.probe_tokens, r.tokens
            );
            println!("  without early stop {:.2}x ({} probe tokens)", r.full_ratio, r.full_probe_tokens);
        }
    }
    Ok(())
}
