//! `stepgrpo eval`: accuracy, tokens, steps and tokens per correct answer of a model directory on a
//! problem set, with plain sampling or with the probe loop (DEER).

use std::path::PathBuf;

use anyhow::{Context, Result};
use stepgrpo_core::data::{load_jsonl, load_task_jsonl};
use stepgrpo_core::pretrained::Pretrained;
use stepgrpo_core::rollout::vllm::{VllmConfig, VllmEngine};
use stepgrpo_core::train::{ProblemSet, TrainConfig, evaluate, evaluate_with, seeds};

use crate::DeviceArgs;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model directory (a `final/` or `checkpoint-N/` of a run, or any HF model directory).
    #[arg(long)]
    model: PathBuf,
    /// Problems as JSONL (in the paper's prompt and the model's chat template; problems of the
    /// built-in task for a model without one); default: the built-in task's held-out set.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Problems to evaluate at most (default: all of `--data`, or the built-in run's held-out set,
    /// 5000 problems).
    #[arg(long)]
    problems: Option<usize>,
    /// Seed of the built-in held-out set (the training run's seed) and of sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.6)]
    temperature: f32,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 0.9)]
    top_p: f32,
    /// Response tokens at most (default: 128 for the built-in task, else 16,384).
    #[arg(long)]
    max_tokens: Option<usize>,
    /// Run the probe loop while answering (DEER) with this confidence threshold.
    #[arg(long)]
    deer: Option<f64>,
    /// Answer through these vLLM servers (comma-separated http://host:port), which must serve
    /// --model's weights (checked on a short greedy continuation before the evaluation).
    #[arg(long = "vllm-server-base-url", alias = "vllm-url", value_delimiter = ',')]
    vllm_url: Vec<String>,
    /// Print every response.
    #[arg(long)]
    verbose: bool,
    #[command(flatten)]
    device: DeviceArgs,
}

pub fn run(args: Args) -> Result<()> {
    let selected = args.device.select();
    let p = Pretrained::load_as(&args.model, &selected.device, args.device.dtype)?;
    let tokenizer = p.tokenizer.with_context(|| format!("{}: no tokenizer.json", args.model.display()))?;
    let builtin = args.data.is_none();
    let mut config = if builtin { stepgrpo_core::train::builtin_recipe() } else { TrainConfig::default() };
    let problems = match &args.data {
        Some(path) => {
            let all = match tokenizer.chat_template() {
                Some(_) => load_jsonl(path, &tokenizer)?,
                None => load_task_jsonl(path)?,
            };
            all.into_iter().take(args.problems.unwrap_or(usize::MAX)).collect()
        }
        None => {
            ProblemSet::builtin(&config.task, args.seed, args.problems.unwrap_or(config.eval.num_problems)).1
        }
    };
    config.eval.temperature = args.temperature;
    config.eval.top_p = args.top_p;
    if let Some(n) = args.max_tokens {
        config.eval.max_completion_length = n;
    }
    if let Some(threshold) = args.deer {
        (config.eval.deer, config.eval.deer_threshold) = (true, threshold);
    }
    config.validate()?;
    let rollout = config.eval.rollout(&config.rl.rollout, args.seed ^ seeds::EVAL_SAMPLING);
    let report = if args.vllm_url.is_empty() {
        pollster::block_on(evaluate(&p.model, &tokenizer, &p.eos_token_ids, &problems, &rollout))?
    } else {
        let vllm = VllmConfig { vllm_server_base_url: args.vllm_url.clone(), ..VllmConfig::default() };
        let scratch = std::env::temp_dir().join("stepgrpo-eval-vllm");
        let mut engine = VllmEngine::connect(&vllm, &scratch, tokenizer.clone(), p.eos_token_ids.clone())?;
        eprintln!("answering on vLLM: {}", engine.describe());
        pollster::block_on(async {
            engine.use_served_weights(&p.model).await?;
            // One collection of every problem: the servers batch them as they like.
            evaluate_with(&mut engine, &tokenizer, &problems, &rollout, problems.len()).await
        })?
    };
    if args.verbose {
        for s in &report.samples {
            println!(
                "--- {} (answer {}, {})\n{}",
                s.prompt.trim_end(),
                s.answer,
                if s.correct { "correct" } else { "wrong" },
                s.response
            );
        }
    }
    println!("{}", serde_json::to_string_pretty(&report.stats)?);
    Ok(())
}
