//! `stepgrpo train`: the supervised warm start, RL with every configured method from the same
//! starting point, held-out evaluation, and the comparison table, plot and `results.json`.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use stepgrpo_core::data::{Problem, load_jsonl};
use stepgrpo_core::model::{self, CausalLm};
use stepgrpo_core::pretrained::Pretrained;
use stepgrpo_core::task;
use stepgrpo_core::text::Tokenizer;
use stepgrpo_core::train::checkpoint::{self, TrainerState};
use stepgrpo_core::train::{EvalReport, Method, ProblemSet, RlTrainer, SftTrainer, TrainConfig, evaluate};
use web_time::Instant;

use crate::report::{self, Row};
use crate::train_args::Args;

/// What every phase shares: the tokenizer, stop ids, files copied into checkpoints, problems.
struct Setup {
    tokenizer: Tokenizer,
    eos: Vec<u32>,
    files: Vec<(String, Vec<u8>)>,
    problems: ProblemSet,
    eval: Vec<Problem>,
    device: Device,
    /// Every phase's progress bar (methods may train side by side).
    progress: MultiProgress,
}

pub fn run(args: Args) -> Result<()> {
    let config = args.config()?;
    let out = config.output_dir.clone();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    model::write_atomic(&out.join("config.toml"), toml::to_string_pretty(&config)?.as_bytes())?;
    let selected = args.device.select();
    eprintln!("device: {}  run directory: {}", selected.description, out.display());
    let device = selected.device.autodiff();
    let run_start = Instant::now();

    let (setup, start) = setup(&config, &device)?;
    let mut rows = Vec::new();
    let (base, sft) = if config.model.is_none() && config.sft.max_steps > 0 {
        pollster::block_on(run_sft(&config, &setup, start, &out.join("sft"), args.resume))?
    } else {
        (start, Summary::default())
    };
    let base_label = if config.model.is_none() { "sft" } else { "base" };
    let report = pollster::block_on(cached_eval(&config, &setup, &base, &out.join(base_label), args.resume))?;
    rows.push(Row::new(base_label, &report, None, sft.train_seconds));

    rows.extend(train_methods(&config, &setup, &base, &out, args.resume)?);
    report::finish(&out, &config, &mut rows, run_start.elapsed().as_secs_f64())
}

/// Trains and evaluates every method from `base`, `config.jobs` at a time (each on its own thread:
/// a method's results depend only on its own seeded streams), and returns their rows in order.
fn train_methods(
    config: &TrainConfig,
    s: &Setup,
    base: &CausalLm,
    out: &Path,
    resume: bool,
) -> Result<Vec<Row>> {
    let next = AtomicUsize::new(0);
    let rows: Mutex<Vec<Option<Result<Row>>>> = Mutex::new(config.methods.iter().map(|_| None).collect());
    let one = |method: Method| -> Result<Row> {
        let dir = out.join(method.name());
        let (trained, summary) = pollster::block_on(run_rl(config, s, method, base, &dir, resume))?;
        let report = pollster::block_on(cached_eval(config, s, &trained, &dir, resume))?;
        Ok(Row::new(method.name(), &report, Some(summary.early_exit_rate), summary.train_seconds))
    };
    std::thread::scope(|scope| {
        for _ in 0..config.jobs.min(config.methods.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&method) = config.methods.get(i) else { break };
                    let row = one(method);
                    let failed = row.is_err();
                    rows.lock().expect("no thread panicked holding it")[i] = Some(row);
                    if failed {
                        // Start no further methods; the ones running finish their own.
                        next.store(config.methods.len(), Ordering::SeqCst);
                    }
                }
            });
        }
    });
    rows.into_inner().expect("no thread panicked holding it").into_iter().flatten().collect()
}

/// The starting model, tokenizer and problems: the built-in task's, or a model directory's.
fn setup(config: &TrainConfig, device: &Device) -> Result<(Setup, CausalLm)> {
    match &config.model {
        None => {
            device.seed(config.seed);
            let model = model::init(&task::model_config(), device);
            let (problems, eval) = ProblemSet::builtin(&config.task, config.seed, config.eval.num_problems);
            let eval = match &config.eval_data {
                Some(path) => load_jsonl(path, &task::tokenizer())?,
                None => eval,
            };
            let tokenizer = task::tokenizer();
            let setup = Setup {
                eos: tokenizer.eos_token_ids().to_vec(),
                tokenizer,
                files: task::tokenizer_files(),
                problems,
                eval,
                device: device.clone(),
                progress: MultiProgress::new(),
            };
            Ok((setup, model))
        }
        Some(dir) => {
            let p = Pretrained::load(dir, device)?;
            let tokenizer = p.tokenizer.with_context(|| format!("{}: no tokenizer.json", dir.display()))?;
            let train_path = config.train_data.as_ref().expect("validated: a model needs train_data");
            let train = load_jsonl(train_path, &tokenizer)?;
            let eval = match &config.eval_data {
                Some(path) => load_jsonl(path, &tokenizer)?,
                None => train.iter().take(config.eval.num_problems).cloned().collect(),
            };
            let mut files = Vec::new();
            for name in ["tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
                let path = dir.join(name);
                if path.exists() {
                    files.push((
                        name.to_string(),
                        std::fs::read(&path).with_context(|| path.display().to_string())?,
                    ));
                }
            }
            let setup = Setup {
                tokenizer,
                eos: p.eos_token_ids,
                files,
                problems: ProblemSet::List(train),
                eval,
                device: device.clone(),
                progress: MultiProgress::new(),
            };
            Ok((setup, p.model))
        }
    }
}

fn bar(progress: &MultiProgress, len: usize, prefix: &str) -> ProgressBar {
    let bar = progress.add(ProgressBar::new(len as u64).with_prefix(prefix.to_string()));
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>24} [{bar:30}] {pos}/{len} {elapsed_precise} (eta {eta}) {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

/// Loads `dir/final` when a finished phase is resumed.
fn finished(dir: &Path, resume: bool, device: &Device) -> Result<Option<CausalLm>> {
    let done = dir.join("final");
    Ok(if resume && done.join("model.safetensors").exists() {
        Some(model::load(&done, device)?)
    } else {
        None
    })
}

/// Appends one JSON record per line to `path`, keeping only the records up to `step` that a
/// resumed run already wrote.
fn metrics_file(path: &Path, keep_through: usize) -> Result<std::fs::File> {
    let kept: Vec<String> = if keep_through > 0 && path.exists() {
        std::fs::read_to_string(path)?
            .lines()
            .filter(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .and_then(|v| v["step"].as_u64())
                    .is_some_and(|s| s as usize <= keep_through)
            })
            .map(str::to_string)
            .collect()
    } else {
        Vec::new()
    };
    let mut text = kept.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| path.display().to_string())?;
    Ok(std::fs::OpenOptions::new().append(true).open(path)?)
}

fn write_record<T: serde::Serialize>(file: &mut std::fs::File, record: &T) -> Result<()> {
    use std::io::Write;
    writeln!(file, "{}", serde_json::to_string(record)?)?;
    Ok(())
}

async fn run_sft(
    config: &TrainConfig,
    s: &Setup,
    start: CausalLm,
    dir: &Path,
    resume: bool,
) -> Result<(CausalLm, Summary)> {
    if let (Some(model), true) = (finished(dir, resume, &s.device)?, dir.join("train_summary.json").exists())
    {
        eprintln!("sft: already finished, loaded {}", dir.join("final").display());
        return Ok((model, read_summary(dir)?));
    }
    let started = Instant::now();
    std::fs::create_dir_all(dir)?;
    let mut trainer = SftTrainer::new(
        start.clone(),
        s.tokenizer.clone(),
        s.problems.clone(),
        config.sft.clone(),
        config.seed,
    )?;
    if let Some(path) = checkpoint::latest(dir)?.filter(|_| resume) {
        trainer.restore(checkpoint::load(&path, start)?)?;
        eprintln!("sft: resumed from {}", path.display());
    }
    let mut metrics = metrics_file(&dir.join("metrics.jsonl"), trainer.step)?;
    let bar = bar(&s.progress, config.sft.max_steps, "sft");
    bar.set_position(trainer.step as u64);
    while !trainer.is_done() {
        let m = trainer.step().await?;
        write_record(&mut metrics, &m)?;
        bar.set_position(m.step as u64);
        bar.set_message(format!("loss {:.3} lr {:.1e}", m.loss, m.learning_rate));
        if config.save_steps > 0 && m.step % config.save_steps == 0 && !trainer.is_done() {
            let state = TrainerState { phase: "sft".into(), step: m.step };
            checkpoint::save(dir, &trainer.model, &trainer.optim, &state, &s.files).await?;
        }
    }
    bar.finish();
    checkpoint::save_model_dir(&dir.join("final"), &trainer.model, &s.files).await?;
    let summary = Summary { early_exit_rate: 0.0, train_seconds: started.elapsed().as_secs_f64() };
    write_summary(dir, summary)?;
    Ok((trainer.model, summary))
}

/// What a finished phase reports besides its model (`train_summary.json`, read back on resume).
#[derive(Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
struct Summary {
    /// Share of training rollouts a probe ended, over the last 10 steps.
    early_exit_rate: f64,
    /// Seconds the phase trained (in the process that finished it, when resumed).
    train_seconds: f64,
}

fn read_summary(dir: &Path) -> Result<Summary> {
    let path = dir.join("train_summary.json");
    serde_json::from_slice(&std::fs::read(&path)?).with_context(|| path.display().to_string())
}

fn write_summary(dir: &Path, summary: Summary) -> Result<()> {
    model::write_atomic(&dir.join("train_summary.json"), &serde_json::to_vec(&summary)?)?;
    Ok(())
}

/// Trains `method` from `base`; returns the model and its summary.
async fn run_rl(
    config: &TrainConfig,
    s: &Setup,
    method: Method,
    base: &CausalLm,
    dir: &Path,
    resume: bool,
) -> Result<(CausalLm, Summary)> {
    if let (Some(model), true) = (finished(dir, resume, &s.device)?, dir.join("train_summary.json").exists())
    {
        eprintln!("{}: already finished, loaded {}", method.name(), dir.join("final").display());
        return Ok((model, read_summary(dir)?));
    }
    let started = Instant::now();
    std::fs::create_dir_all(dir)?;
    let mut trainer = RlTrainer::new(
        method,
        base.clone(),
        s.tokenizer.clone(),
        s.eos.clone(),
        s.problems.clone(),
        config.rl.clone(),
        config.seed,
    )?;
    if let Some(path) = checkpoint::latest(dir)?.filter(|_| resume) {
        trainer.restore(checkpoint::load(&path, base.clone())?)?;
        eprintln!("{}: resumed from {}", method.name(), path.display());
    }
    let mut metrics = metrics_file(&dir.join("metrics.jsonl"), trainer.step)?;
    let bar = bar(&s.progress, config.rl.max_steps, method.name());
    bar.set_position(trainer.step as u64);
    let mut exits = Vec::new();
    while !trainer.is_done() {
        let step = trainer.step().await?;
        let mut record = serde_json::to_value(&step.metrics)?;
        let m = &step.metrics;
        exits.push(m.early_exit_rate);
        if config.eval.eval_steps > 0 && m.step % config.eval.eval_steps == 0 {
            // Probe-free held-out numbers next to the rollouts': whether shorter rollouts are internalised.
            let n = config.eval.eval_subset.min(s.eval.len());
            let r = evaluate(
                &trainer.model.valid(),
                &s.tokenizer,
                &s.eos,
                &s.eval[..n],
                &config.eval.rollout(&config.rl.rollout, config.seed),
            )
            .await?;
            record["eval/accuracy"] = r.stats.accuracy.into();
            record["eval/mean_length"] = r.stats.mean_tokens.into();
            record["eval/steps_mean"] = r.stats.mean_steps.into();
        }
        write_record(&mut metrics, &record)?;
        bar.set_position(m.step as u64);
        bar.set_message(format!(
            "reward {:.2} acc {:.2} tokens {:.0} steps {:.1} exit {:.2}",
            m.reward, m.accuracy, m.mean_length, m.steps_mean, m.early_exit_rate
        ));
        if config.save_steps > 0 && m.step % config.save_steps == 0 && !trainer.is_done() {
            let state = TrainerState { phase: method.name().into(), step: m.step };
            checkpoint::save(dir, &trainer.model, &trainer.optim, &state, &s.files).await?;
        }
    }
    bar.finish();
    let tail = &exits[exits.len().saturating_sub(10)..];
    let early_exit = if tail.is_empty() { 0.0 } else { tail.iter().sum::<f64>() / tail.len() as f64 };
    checkpoint::save_model_dir(&dir.join("final"), &trainer.model, &s.files).await?;
    let summary = Summary { early_exit_rate: early_exit, train_seconds: started.elapsed().as_secs_f64() };
    write_summary(dir, summary)?;
    Ok((trainer.model, summary))
}

/// Evaluates `model` on the held-out set, reusing `dir/eval.json` when a finished run is resumed.
async fn cached_eval(
    config: &TrainConfig,
    s: &Setup,
    model: &CausalLm,
    dir: &Path,
    resume: bool,
) -> Result<EvalReport> {
    let path = dir.join("eval.json");
    if resume && path.exists() {
        return Ok(serde_json::from_slice(&std::fs::read(&path)?)?);
    }
    std::fs::create_dir_all(dir)?;
    let spinner = bar(&s.progress, s.eval.len(), "eval");
    spinner.set_message(dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string());
    let report = evaluate(
        &model.valid(),
        &s.tokenizer,
        &s.eos,
        &s.eval,
        &config.eval.rollout(&config.rl.rollout, config.seed ^ 0xe7a1),
    )
    .await?;
    spinner.finish_and_clear();
    if report.stats.responses != s.eval.len() {
        bail!("evaluation answered {} of {} problems", report.stats.responses, s.eval.len());
    }
    model::write_atomic(&path, &serde_json::to_vec_pretty(&report)?)?;
    Ok(report)
}
