//! The knobs a page passes to `Trainer.create`: a small, browser-sized subset of the CLI's
//! `TrainConfig`, in camelCase, turned into a full, validated `TrainConfig` for the built-in task.

use serde::{Deserialize, Serialize};
use stepgrpo_core::task;
use stepgrpo_core::train::{Method, TrainConfig};

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

/// A trainer's configuration as JavaScript passes it; every field is optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct WebConfig {
    /// The RL method: `step_grpo`, `grpo`, `grpo_length_penalty` or an ablation. Default `step_grpo`.
    pub method: String,
    /// Responses per prompt (the group size G). Default 8.
    pub num_generations: usize,
    /// Prompts per RL step. Default 4.
    pub prompts_per_step: usize,
    /// Supervised warm-start steps (0: start RL from the initial or imported weights). Default 150.
    pub sft_steps: usize,
    /// Traces per SFT step. Default 16.
    pub sft_batch_size: usize,
    /// Peak SFT learning rate (cosine schedule, a sixth of the steps warm-up). Default 2e-3.
    pub sft_learning_rate: f64,
    /// RL steps. Default 20.
    pub rl_steps: usize,
    /// RL learning rate (constant). Default 5e-5.
    pub learning_rate: f64,
    /// Probe confidence at which a truncating method stops thinking. Default 0.999 (the CLI's).
    pub delta: f64,
    /// Response tokens at most. Default 128.
    pub max_completion_length: usize,
    /// Held-out problems drawn for `evaluate` (and the evaluations during RL). Default 64.
    pub eval_problems: usize,
    /// During RL, evaluate every this many steps on the held-out problems; the step's metrics then
    /// carry `eval/accuracy`, `eval/mean_length`, `eval/steps_mean` (0 = never). Default 0.
    pub eval_steps: usize,
    /// Keep a checkpoint every this many steps of a phase (`checkpoint()` returns the newest;
    /// 0 = never). Default 0.
    pub save_steps: usize,
    /// Seed of initialisation, problems and sampling. Default 0.
    pub seed: u64,
    /// `auto`, `webgpu` or `cpu`. Default `auto`.
    pub device: DeviceChoice,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            method: Method::StepGrpo.name().into(),
            num_generations: 8,
            prompts_per_step: 4,
            sft_steps: 150,
            sft_batch_size: 16,
            sft_learning_rate: 2e-3,
            rl_steps: 20,
            learning_rate: 5e-5,
            delta: 0.999,
            max_completion_length: 128,
            eval_problems: 64,
            eval_steps: 0,
            save_steps: 0,
            seed: 0,
            device: DeviceChoice::Auto,
        }
    }
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
        let mut c = task::recipe();
        c.seed = self.seed;
        c.methods = vec![method];
        c.sft.max_steps = self.sft_steps;
        c.sft.batch_size = self.sft_batch_size;
        c.sft.optim.learning_rate = self.sft_learning_rate;
        // The CLI warms up for 100 of 600 steps; keep that share for shorter browser runs.
        c.sft.optim.warmup_steps = self.sft_steps / 6;
        c.rl.max_steps = self.rl_steps;
        c.rl.prompts_per_step = self.prompts_per_step;
        c.rl.optim.learning_rate = self.learning_rate;
        // Likewise the CLI's RL warm-up, 10 of 120 steps.
        c.rl.optim.warmup_steps = self.rl_steps / 12;
        c.rl.rollout.num_generations = self.num_generations;
        c.rl.rollout.max_completion_length = self.max_completion_length;
        c.eval.max_completion_length = self.max_completion_length;
        c.eval.num_problems = self.eval_problems;
        c.eval.eval_subset = self.eval_problems;
        c.eval.eval_steps = self.eval_steps;
        c.save_steps = self.save_steps;
        if let Some(t) = &mut c.rl.rollout.truncation {
            t.delta = self.delta;
        }
        c.validate()?;
        Ok(c)
    }
}
