//! The knobs a page passes to `Trainer.create`: a small, browser-sized subset of the CLI's
//! `TrainConfig`, in camelCase, turned into a full, validated `TrainConfig` for the built-in task.

use serde::{Deserialize, Serialize};
use stepgrpo_core::train::{Method, TrainConfig, recipe};

use crate::error::{WebError, WebResult};

/// Which device to train on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// WebGPU when the browser offers an adapter, else the CPU.
    #[default]
    Auto,
    /// WebGPU only: creating the trainer fails without an adapter.
    Webgpu,
    /// burn's CPU backend compiled to WebAssembly.
    Cpu,
}

/// A trainer's configuration as JavaScript passes it; every field is optional, and its default is
/// the browser recipe's (`recipes/browser.toml`, which `Trainer.defaults()` reports).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct WebConfig {
    /// The RL method: `step_grpo`, `grpo`, `grpo_length_penalty` or an ablation.
    pub method: String,
    /// Responses per prompt (the group size G).
    pub num_generations: usize,
    /// Prompts per RL step.
    pub prompts_per_step: usize,
    /// Supervised warm-start steps (0: start RL from the initial or imported weights).
    pub sft_steps: usize,
    /// Traces per SFT step.
    pub sft_batch_size: usize,
    /// Peak SFT learning rate (the recipe's schedule and share of warm-up steps).
    pub sft_learning_rate: f64,
    /// RL steps.
    pub rl_steps: usize,
    /// RL learning rate (the recipe's share of warm-up steps).
    pub learning_rate: f64,
    /// Probe confidence at which a truncating method stops thinking (the paper's delta).
    pub delta: f64,
    /// Response tokens at most.
    pub max_completion_length: usize,
    /// Held-out problems drawn for `evaluate` (and the evaluations during RL).
    pub eval_problems: usize,
    /// During RL, evaluate every this many steps on the held-out problems; the step's metrics then
    /// carry `eval/accuracy`, `eval/mean_length`, `eval/steps_mean` (0 = never).
    pub eval_steps: usize,
    /// Keep a checkpoint every this many steps of a phase (`checkpoint()` returns the newest;
    /// 0 = never).
    pub save_steps: usize,
    /// Seed of initialisation, problems and sampling.
    pub seed: u64,
    /// `auto`, `webgpu` or `cpu`. Default `auto`.
    pub device: DeviceChoice,
}

/// The browser recipe (`recipes/browser.toml` over `recipes/builtin.toml`).
fn browser_recipe() -> TrainConfig {
    recipe("browser").expect("recipes/browser.toml is a valid configuration (tested in core)")
}

impl Default for WebConfig {
    fn default() -> Self {
        let c = browser_recipe();
        WebConfig {
            method: c.methods.first().copied().unwrap_or(Method::StepGrpo).name().into(),
            num_generations: c.rl.rollout.num_generations,
            prompts_per_step: c.rl.prompts_per_step,
            sft_steps: c.sft.max_steps,
            sft_batch_size: c.sft.batch_size,
            sft_learning_rate: c.sft.optim.learning_rate,
            rl_steps: c.rl.max_steps,
            learning_rate: c.rl.optim.learning_rate,
            delta: c.rl.rollout.truncation.as_ref().map_or(0.0, |t| t.probe_threshold),
            max_completion_length: c.rl.rollout.max_completion_length,
            eval_problems: c.eval.num_problems,
            eval_steps: c.eval.eval_steps,
            save_steps: c.save_steps,
            seed: c.seed,
            device: DeviceChoice::Auto,
        }
    }
}

/// `steps` with the share of warm-up steps `recipe` gives its own `recipe_steps`.
fn warmup_share(recipe: usize, recipe_steps: usize, steps: usize) -> usize {
    (recipe * steps).checked_div(recipe_steps).unwrap_or(0)
}

impl WebConfig {
    /// The method named by `method`.
    pub fn method(&self) -> WebResult<Method> {
        Ok(Method::from_name(&self.method)?)
    }

    /// The full training configuration: the CLI's built-in-task settings with these knobs applied,
    /// validated (errors name the camelCase knob where it is one of ours).
    pub fn train_config(&self) -> WebResult<TrainConfig> {
        let method = self.method()?;
        for (name, v) in [
            ("numGenerations", self.num_generations),
            ("promptsPerStep", self.prompts_per_step),
            ("sftBatchSize", self.sft_batch_size),
            ("maxCompletionLength", self.max_completion_length),
            ("evalProblems", self.eval_problems),
        ] {
            if v == 0 {
                return Err(WebError::Config(format!("{name} must be at least 1")));
            }
        }
        let mut c = browser_recipe();
        let (sft_warmup, sft_steps) = (c.sft.optim.warmup_steps, c.sft.max_steps);
        let (rl_warmup, rl_steps) = (c.rl.optim.warmup_steps, c.rl.max_steps);
        c.seed = self.seed;
        c.methods = vec![method];
        c.sft.max_steps = self.sft_steps;
        c.sft.batch_size = self.sft_batch_size;
        c.sft.optim.learning_rate = self.sft_learning_rate;
        c.sft.optim.warmup_steps = warmup_share(sft_warmup, sft_steps, self.sft_steps);
        c.rl.max_steps = self.rl_steps;
        c.rl.prompts_per_step = self.prompts_per_step;
        c.rl.optim.learning_rate = self.learning_rate;
        c.rl.optim.warmup_steps = warmup_share(rl_warmup, rl_steps, self.rl_steps);
        c.rl.rollout.num_generations = self.num_generations;
        c.rl.rollout.max_completion_length = self.max_completion_length;
        c.eval.max_completion_length = self.max_completion_length;
        c.eval.num_problems = self.eval_problems;
        c.eval.eval_subset = self.eval_problems;
        c.eval.eval_steps = self.eval_steps;
        c.save_steps = self.save_steps;
        if let Some(t) = &mut c.rl.rollout.truncation {
            t.probe_threshold = self.delta;
        }
        c.validate()?;
        Ok(c)
    }
}
