//! The options of `stepgrpo train`, and the configuration they make: built-in defaults, a TOML file
//! over them, `--quick`, then flags.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use stepgrpo_core::train::{Method, TrainConfig};

use crate::DeviceArgs;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// TOML file with any of the configuration's sections; flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Run directory (checkpoints, metrics, plot, results.json).
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// Seed of initialisation, problems and sampling.
    #[arg(long)]
    seed: Option<u64>,
    /// Start from this Hugging Face model directory instead of the built-in task's tiny model.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Training problems (JSONL) for --model.
    #[arg(long)]
    train_data: Option<PathBuf>,
    /// Held-out problems (JSONL).
    #[arg(long)]
    eval_data: Option<PathBuf>,
    /// Comma-separated methods: step_grpo, grpo, grpo_length_penalty, step_grpo_no_step_reward,
    /// step_grpo_no_truncation, step_grpo_all_mean; `all` for every one.
    #[arg(long)]
    methods: Option<String>,
    /// Supervised warm-start steps.
    #[arg(long)]
    sft_steps: Option<usize>,
    /// RL steps per method.
    #[arg(long)]
    rl_steps: Option<usize>,
    /// RL learning rate.
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Responses per prompt.
    #[arg(long)]
    num_generations: Option<usize>,
    /// Probe confidence threshold of the truncated rollout.
    #[arg(long)]
    delta: Option<f64>,
    /// Held-out problems to evaluate on.
    #[arg(long)]
    eval_problems: Option<usize>,
    /// A smoke run of a minute or two: few steps of everything (for tests).
    #[arg(long)]
    quick: bool,
    /// Continue from the newest checkpoints in the run directory.
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

impl Args {
    /// The configuration: built-in defaults, then the file, then `--quick`, then flags.
    pub fn config(&self) -> Result<TrainConfig> {
        let mut c = match &self.config {
            Some(path) => load_toml(path)?,
            None => TrainConfig::builtin(),
        };
        if self.quick {
            c.sft.max_steps = 40;
            c.sft.batch_size = 16;
            c.rl.max_steps = 2;
            c.rl.prompts_per_step = 4;
            c.rl.rollout.num_generations = 4;
            c.eval.num_problems = 16;
            c.eval.eval_steps = 0;
            c.save_steps = 1;
        }
        set(&mut c.output_dir, self.output_dir.clone());
        set(&mut c.seed, self.seed);
        c.model = self.model.clone().or(c.model);
        c.train_data = self.train_data.clone().or(c.train_data);
        c.eval_data = self.eval_data.clone().or(c.eval_data);
        if let Some(list) = &self.methods {
            c.methods = if list == "all" {
                Method::ALL.to_vec()
            } else {
                list.split(',').map(|m| Method::from_name(m.trim())).collect::<Result<_, _>>()?
            };
        }
        set(&mut c.sft.max_steps, self.sft_steps);
        set(&mut c.rl.max_steps, self.rl_steps);
        set(&mut c.rl.optim.learning_rate, self.learning_rate);
        set(&mut c.rl.rollout.num_generations, self.num_generations);
        set(&mut c.eval.num_problems, self.eval_problems);
        if let (Some(delta), Some(t)) = (self.delta, c.rl.rollout.truncation.as_mut()) {
            t.delta = delta;
        }
        c.validate()?;
        Ok(c)
    }
}

/// Reads a TOML configuration over the defaults: the built-in task's, or the general ones when the
/// file names a `model` directory.
fn load_toml(path: &Path) -> Result<TrainConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let over: toml::Table =
        toml::from_str(&text).with_context(|| format!("{}: invalid TOML", path.display()))?;
    let base = if over.contains_key("model") { TrainConfig::default() } else { TrainConfig::builtin() };
    let mut merged = toml::Table::try_from(&base)?;
    merge(&mut merged, over);
    toml::Value::Table(merged)
        .try_into()
        .with_context(|| format!("{}: invalid configuration", path.display()))
}

/// Overwrites `base` with `over`, recursing into tables so a file only names what it changes.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}
