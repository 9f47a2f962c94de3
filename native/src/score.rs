//! `stepgrpo score`: Step-Aware Relative Rewards for a JSONL file of grouped responses.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::Deserialize;
use stepgrpo_core::reward::{Reward, RewardBatch, RewardOutput, StepAwareConfig, StepAwareReward};
use stepgrpo_core::steps::Triggers;

/// Arguments of `stepgrpo score`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// JSONL file; each line `{"response": ..., "ground_truth": ..., "uid": ...}` (uid = group).
    #[arg(long)]
    input: PathBuf,
    /// Weight of accuracy against format.
    #[arg(long, default_value_t = 0.9)]
    alpha: f64,
    /// Strength of the step efficiency factor.
    #[arg(long, default_value_t = 0.5)]
    beta: f64,
    /// Mean step count over all responses of a group instead of its correct ones.
    #[arg(long)]
    all_sample_mean: bool,
    /// Plain GRPO reward (no step efficiency factor).
    #[arg(long)]
    no_step_reward: bool,
    /// Trigger words, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "Wait")]
    triggers: Vec<String>,
}

#[derive(Deserialize)]
struct Line {
    response: String,
    ground_truth: serde_json::Value,
    uid: serde_json::Value,
}

/// A uid or ground truth given as a JSON string or number, as text.
fn as_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = StepAwareConfig {
        alpha: args.alpha,
        beta: args.beta,
        correct_mean: !args.all_sample_mean,
        step_reward: !args.no_step_reward,
        triggers: Triggers::new(args.triggers.clone()).context("--triggers")?,
    };
    let reward = StepAwareReward::new(config)?;
    let file =
        std::fs::File::open(&args.input).with_context(|| format!("cannot open {}", args.input.display()))?;
    let outputs = score_lines(BufReader::new(file), &args.input.display().to_string(), &reward)?;
    let mut out = std::io::stdout().lock();
    for o in outputs {
        writeln!(out, "{}", serde_json::to_string(&o)?)?;
    }
    Ok(())
}

/// Scores the JSONL lines of `input` (named `source` in errors, with the line number).
pub(crate) fn score_lines(
    input: impl BufRead,
    source: &str,
    reward: &dyn Reward,
) -> anyhow::Result<Vec<RewardOutput>> {
    let (mut responses, mut truths, mut uids) = (Vec::new(), Vec::new(), Vec::new());
    for (i, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("{source}: line {}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(&line).with_context(|| {
            format!("{source}: line {}: expected {{\"response\", \"ground_truth\", \"uid\"}}", i + 1)
        })?;
        responses.push(parsed.response);
        truths.push(as_text(&parsed.ground_truth));
        uids.push(as_text(&parsed.uid));
    }
    if responses.is_empty() {
        bail!("{source}: no responses");
    }
    let r: Vec<&str> = responses.iter().map(String::as_str).collect();
    let t: Vec<&str> = truths.iter().map(String::as_str).collect();
    let u: Vec<&str> = uids.iter().map(String::as_str).collect();
    Ok(reward.score(&RewardBatch::new(&r, &t, &u)?)?)
}
