//! `stepgrpo bench --vllm-server-base-url URL[,URL...]`: the in-process engine against vLLM servers, same
//! model, prompts and settings, side by side in one run: rollout tokens/s, what a probe costs, and
//! seconds per Step-GRPO step. Give one server started with prefix caching and one without to see
//! what the cache saves a probe.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use burn::module::Module;
use burn::tensor::Device;
use serde::Serialize;
use stepgrpo_core::decode::SamplingConfig;
use stepgrpo_core::model::CausalLm;
use stepgrpo_core::pretrained::Pretrained;
use stepgrpo_core::rollout::vllm::{VllmConfig, VllmEngine};
use stepgrpo_core::rollout::{LocalEngine, RolloutConfig, RolloutRequest, RolloutSource};
use stepgrpo_core::task;
use stepgrpo_core::train::{Method, RlTrainer, RunData, TrainConfig};

/// What the engine benchmark needs besides the model.
pub struct EngineArgs {
    pub model: PathBuf,
    pub urls: Vec<String>,
    pub train_data: Option<PathBuf>,
    pub weights_dir: PathBuf,
    pub rl_steps: usize,
    pub repeat: usize,
}

/// One engine's figures.
#[derive(Serialize, Debug)]
struct EngineReport {
    engine: String,
    /// Response tokens per second of the training rollouts (sampled, probes on).
    rollout_tokens_per_s: f64,
    /// Seconds of those rollouts (best of the repeats) and the tokens and probes they made.
    rollout_s: f64,
    rollout_tokens: usize,
    rollout_probes: usize,
    /// Greedy rollouts without probes, and the same with a probe at every trigger that never
    /// exits (delta 1): the same tokens, so the difference is the probes' cost.
    plain_s: f64,
    probed_s: f64,
    probes: usize,
    /// Milliseconds per probe: (probed_s - plain_s) / probes.
    probe_ms: f64,
    /// Mean seconds per Step-GRPO step after the first (weight sync, rollouts, scoring, update).
    rl_step_s: f64,
    /// The rollout part of it (the weight sync included).
    rl_rollout_s: f64,
}

/// The run's settings and every engine's figures.
#[derive(Serialize, Debug)]
struct Report {
    prompts: usize,
    num_generations: usize,
    max_completion_length: usize,
    engines: Vec<EngineReport>,
}

/// The problems and settings: the built-in task's recipe, or the release defaults with
/// `--train-data`.
fn data(args: &EngineArgs, pretrained: &Pretrained) -> anyhow::Result<(TrainConfig, RunData)> {
    match &args.train_data {
        None => {
            let config = stepgrpo_core::train::builtin_recipe();
            let data = RunData::builtin(&config)?;
            let vocab = pretrained.model.config.vocab_size;
            anyhow::ensure!(
                vocab == task::model_config().vocab_size,
                "{} embeds {vocab} ids, not the built-in task's: give --train-data for another model",
                args.model.display()
            );
            Ok((config, data))
        }
        Some(path) => {
            let config = TrainConfig { train_data: Some(path.clone()), ..TrainConfig::default() };
            let data = RunData::from_model(&config, pretrained)?;
            Ok((config, data))
        }
    }
}

/// Best-of-`n` seconds of a collection, with the rollouts of the last one.
fn time_collect(
    engine: &mut dyn RolloutSource,
    prompts: &[Vec<u32>],
    config: &RolloutConfig,
    n: usize,
) -> anyhow::Result<(f64, usize, usize)> {
    let mut best = f64::INFINITY;
    let (mut tokens, mut probes) = (0, 0);
    for _ in 0..n.max(1) {
        let start = Instant::now();
        let out = pollster::block_on(engine.collect(RolloutRequest { prompts, config }))?;
        best = best.min(start.elapsed().as_secs_f64());
        tokens = out.iter().map(|r| r.ids.len()).sum();
        probes = out.iter().map(|r| r.probes.len()).sum();
    }
    Ok((best, tokens, probes))
}

/// Rollout figures of one engine holding the policy's weights.
fn bench_rollouts(
    name: String,
    engine: &mut dyn RolloutSource,
    prompts: &[Vec<u32>],
    config: &RolloutConfig,
    repeat: usize,
) -> anyhow::Result<EngineReport> {
    // Warm-up: shader compilation, the server's first batches.
    time_collect(engine, prompts, config, 1)?;
    let (rollout_s, rollout_tokens, rollout_probes) = time_collect(engine, prompts, config, repeat)?;
    let greedy = RolloutConfig { sampling: SamplingConfig::greedy(), ..config.clone() };
    let plain = RolloutConfig { truncation: None, ..greedy.clone() };
    let mut never = greedy;
    if let Some(t) = never.truncation.as_mut() {
        (t.probe_threshold, t.strict, t.think_budget_ratio, t.repetition_window) = (1.0, true, 1.0, 0);
    }
    let (plain_s, _, _) = time_collect(engine, prompts, &plain, repeat)?;
    let (probed_s, _, probes) = time_collect(engine, prompts, &never, repeat)?;
    Ok(EngineReport {
        engine: name,
        rollout_tokens_per_s: rollout_tokens as f64 / rollout_s,
        rollout_s,
        rollout_tokens,
        rollout_probes,
        plain_s,
        probed_s,
        probes,
        probe_ms: 1e3 * (probed_s - plain_s) / probes.max(1) as f64,
        rl_step_s: 0.0,
        rl_rollout_s: 0.0,
    })
}

/// Mean seconds per Step-GRPO step after the first, and their rollout part.
fn bench_steps(
    model: &CausalLm,
    data: &RunData,
    config: &TrainConfig,
    steps: usize,
    source: Box<dyn RolloutSource>,
) -> anyhow::Result<(f64, f64)> {
    let mut rl = config.rl.clone();
    rl.max_steps = steps + 1;
    let mut trainer = RlTrainer::new(Method::StepGrpo, model.clone(), data, rl, config.seed, source)?;
    let (mut step_s, mut rollout_s) = (0.0, 0.0);
    for i in 0..=steps {
        let m = pollster::block_on(trainer.step())?.metrics;
        if i > 0 {
            (step_s, rollout_s) = (step_s + m.step_seconds, rollout_s + m.rollout_seconds);
        }
    }
    Ok((step_s / steps as f64, rollout_s / steps as f64))
}

pub fn run(args: EngineArgs, device: &Device, description: &str, json: bool) -> anyhow::Result<()> {
    anyhow::ensure!(args.rl_steps > 0, "--rl-steps must be at least 1");
    let train_device = device.clone().autodiff();
    let pretrained = Pretrained::load(&args.model, &train_device)?;
    let (config, data) = data(&args, &pretrained)?;
    let model = pretrained.model;
    let c = &config.rl;
    let problems = data.problems.batch(config.seed, 0, c.prompts_per_step)?;
    let prompts = problems.iter().map(|p| data.tokenizer.encode(&p.prompt)).collect::<Result<Vec<_>, _>>()?;
    let rollout =
        RolloutConfig { sampling: SamplingConfig { seed: 7, ..c.rollout.sampling }, ..c.rollout.clone() };

    let local = || LocalEngine::new(data.tokenizer.clone(), data.eos.clone());
    let vllm = |url: &String| -> anyhow::Result<VllmEngine> {
        let vc = VllmConfig { vllm_server_base_url: vec![url.clone()], ..VllmConfig::default() };
        let dir = args.weights_dir.join(url.replace(|c: char| !c.is_ascii_alphanumeric(), "_"));
        VllmEngine::connect(&vc, &dir, data.tokenizer.clone(), data.eos.clone()).with_context(|| url.clone())
    };
    let mut engines: Vec<(String, Box<dyn RolloutSource>)> =
        vec![(format!("local ({description})"), Box::new(local()))];
    for url in &args.urls {
        let engine = vllm(url)?;
        engines.push((format!("vllm {}", engine.describe()), Box::new(engine)));
    }
    let mut reports = Vec::new();
    for (name, engine) in &mut engines {
        pollster::block_on(engine.load_weights(&model.valid(), 0))?;
        eprintln!("rollouts: {name}");
        reports.push(bench_rollouts(name.clone(), engine.as_mut(), &prompts, &rollout, args.repeat)?);
    }
    drop(engines);
    let mut sources: Vec<Box<dyn RolloutSource>> = vec![Box::new(local())];
    for url in &args.urls {
        sources.push(Box::new(vllm(url)?));
    }
    for (report, source) in reports.iter_mut().zip(sources) {
        eprintln!("Step-GRPO steps: {}", report.engine);
        (report.rl_step_s, report.rl_rollout_s) = bench_steps(&model, &data, &config, args.rl_steps, source)?;
    }

    let report = Report {
        prompts: prompts.len(),
        num_generations: rollout.num_generations,
        max_completion_length: rollout.max_completion_length,
        engines: reports,
    };
    if json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!(
        "{} prompts x {} responses, up to {} tokens",
        report.prompts, report.num_generations, report.max_completion_length
    );
    println!(
        "{:<44} {:>10} {:>9} {:>10} {:>10} {:>10}",
        "engine", "tokens/s", "probes", "ms/probe", "s/step", "rollout s"
    );
    let base = &report.engines[0];
    for e in &report.engines {
        println!(
            "{:<44} {:>10.0} {:>9} {:>10.2} {:>10.2} {:>10.2}   ({:.2}x tokens/s, {:.2}x step time of local)",
            e.engine,
            e.rollout_tokens_per_s,
            e.probes,
            e.probe_ms,
            e.rl_step_s,
            e.rl_rollout_s,
            e.rollout_tokens_per_s / base.rollout_tokens_per_s,
            e.rl_step_s / base.rl_step_s,
        );
    }
    Ok(())
}
