//! `stepgrpo`: train reasoning models to stop thinking once they are confident (Step-GRPO).

mod bench;
mod bench_engines;
mod bench_memory;
mod eval;
mod export;
#[cfg(test)]
mod fuzz;
mod generate;
mod merge;
mod recipe;
mod report;
mod score;
mod segment;
mod tokenize;
mod train;
mod train_args;

use clap::{Parser, Subcommand};
use stepgrpo_core::device::{self, Backend, SelectedDevice};
use stepgrpo_core::model::Dtype;

/// Step-GRPO trainer for reasoning language models, on any wgpu GPU or the CPU.
#[derive(Parser)]
#[command(name = "stepgrpo", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train: supervised warm start, then Step-GRPO and the baselines, evaluated side by side.
    /// With no arguments, runs the built-in overthinking task end to end.
    Train(train_args::Args),
    /// Evaluate a model directory: accuracy, tokens, steps, tokens per correct answer.
    Eval(eval::Args),
    /// Generate a continuation of a prompt with a key/value cache.
    Generate(generate::Args),
    /// Print the token ids of a text.
    Tokenize(tokenize::Args),
    /// Measure prefill and decode throughput and the time of one training step.
    Bench(bench::Args),
    /// Score grouped responses with the Step-Aware Relative Reward (JSONL in, JSONL out).
    Score(score::Args),
    /// Cut a response into semantic steps at its trigger words.
    Segment(segment::Args),
    /// Write a run's starting model as a directory a vLLM server can serve (--rollout-engine vllm).
    Export(export::Args),
    /// Fold a LoRA adapter (PEFT format, as `train --lora-r` writes) into its base model.
    Merge(merge::Args),
    /// Print a recipe (`train --recipe NAME`) as TOML, to read or to start a --config file from.
    Recipe(recipe::Args),
}

/// The `--device` option shared by every command that runs a model.
#[derive(clap::Args, Debug, Clone)]
pub struct DeviceArgs {
    /// auto (a hardware wgpu adapter, else the CPU), wgpu (any Vulkan/Metal/DX12 adapter, software
    /// ones included; the CPU when none exists) or cpu.
    #[arg(long, default_value = "auto")]
    device: Backend,
    /// The dtype a loaded model's matrices are kept in: float32, bfloat16 or float16 (f32, bf16,
    /// f16). Default: the checkpoint's, where the device supports it (bf16 becomes f16 on wgpu,
    /// either becomes f32 without `shader-f16`). Activations are f32 either way.
    #[arg(long)]
    pub dtype: Option<Dtype>,
}

impl DeviceArgs {
    /// Starts the chosen device and says on stderr which one runs.
    pub fn select(&self) -> SelectedDevice {
        let selected = device::select(self.device);
        log::info!("device: {}", selected.description);
        selected
    }
}

/// Flags of the previous release, still accepted for this one: (old, new).
const RENAMED_FLAGS: [(&str, &str); 2] =
    [("--delta", "--probe-threshold"), ("--vllm-url", "--vllm-server-base-url")];

fn warn_renamed_flags(args: impl Iterator<Item = String>) {
    for arg in args {
        let flag = arg.split('=').next().unwrap_or_default();
        if let Some((old, new)) = RENAMED_FLAGS.iter().find(|(old, _)| *old == flag) {
            log::warn!("{old} is now {new}; the old name goes in the next release");
        }
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn,stepgrpo=info"))
        .format_timestamp(None)
        .init();
    warn_renamed_flags(std::env::args());
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Tokenize(args) => tokenize::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Score(args) => score::run(args),
        Command::Segment(args) => segment::run(args),
        Command::Export(args) => export::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Recipe(args) => recipe::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
