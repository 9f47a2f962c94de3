//! Every knob of a training run. Names follow TRL's `GRPOConfig` / transformers' `TrainingArguments`
//! where one exists; every struct validates itself before any work starts.
//!
//! The defaults are the paper's release setting for Hugging Face models (Qwen3 and kin, real
//! problem sets; `recipes/release.toml` lists them). The built-in task's tiny model trains with its
//! own recipe, `recipes/builtin.toml` ([`super::recipe`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::method::{Method, RewardConfig};
use super::optim::OptimConfig;
use crate::error::{Error, Result};
use crate::grpo::GrpoConfig;
use crate::model::{Dtype, LoraConfig};
use crate::rollout::vllm::{RolloutEngineKind, VllmConfig};
use crate::rollout::{RolloutConfig, TruncationConfig};
use crate::task::TaskConfig;

/// The supervised warm start on the built-in task's traces (a model directory starts RL as it is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SftConfig {
    /// Optimizer steps (0 skips the warm start). Default 0.
    pub max_steps: usize,
    /// Examples per step. Default 32.
    pub batch_size: usize,
    /// Default: the [`OptimConfig`] defaults.
    pub optim: OptimConfig,
    /// Every this many steps, a probe-free evaluation on the first `eval.eval_subset` held-out
    /// problems (`eval/accuracy` in the step's record): the curve that shows the warm start is past
    /// the point where it learns the task. 0 = none. Default 0.
    pub eval_steps: usize,
    /// Steps on full traces only before the cut examples (`task.probe_example_rate`) join: an
    /// answer given before the lines that compute it can only be estimated, and learnt before the
    /// arithmetic it slows the arithmetic down. Default 0 (cut examples from the start).
    pub probe_examples_after: usize,
}

impl Default for SftConfig {
    fn default() -> Self {
        SftConfig {
            max_steps: 0,
            batch_size: 32,
            optim: OptimConfig::default(),
            eval_steps: 0,
            probe_examples_after: 0,
        }
    }
}

/// The RL phase. Its defaults are the paper's release: generations of 512 prompts x 5 responses of
/// up to 16,384 tokens, trained in 4 mini-batches of 128 prompts, for 100 generations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RlConfig {
    /// Optimizer steps per method. Default 400 (100 generations of 4 steps).
    pub max_steps: usize,
    /// Prompts per optimizer step (its mini-batch); each gets `rollout.num_generations` responses.
    /// Default 128.
    pub prompts_per_step: usize,
    /// Optimizer steps that share one generation of rollouts (TRL: `steps_per_generation`): each
    /// generation samples `steps_per_generation x prompts_per_step` prompts, and every step after
    /// the first trains on rollouts of an older policy, which the clipped ratio corrects. Default 4.
    pub steps_per_generation: usize,
    /// Passes over each generation (TRL: `num_iterations`, the algorithm's mu). Default 1.
    pub num_iterations: usize,
    /// Micro-batches per optimizer step at least (TRL: `gradient_accumulation_steps`). Default 1.
    pub gradient_accumulation_steps: usize,
    /// Padded tokens per micro-batch at most (0 = no cap). Responses are sorted by length and cut
    /// into micro-batches of similar lengths, so padding every row to the batch's longest costs
    /// little; the update is the same as one batch's. Default 8192.
    pub micro_batch_tokens: usize,
    /// Default: the [`OptimConfig`] defaults.
    pub optim: OptimConfig,
    /// The policy loss.
    pub grpo: GrpoConfig,
    /// Rollout generation; `rollout.truncation` holds the probe settings of the truncating methods.
    pub rollout: RolloutConfig,
    /// Reward weights.
    pub reward: RewardConfig,
    /// LoRA adapters on the policy (`[rl.lora]`, PEFT's names): only they train, and the
    /// reference model is the base without them. Default none: every weight trains.
    pub lora: Option<LoraConfig>,
    /// Keep only each decoder layer's input for the backward and recompute the layer there
    /// (TRL's `gradient_checkpointing`); the log-probs' backward also runs a chunk of positions at
    /// a time, never holding [tokens, vocab] logits. Less memory for a second forward pass.
    /// Default false.
    pub gradient_checkpointing: bool,
}

impl Default for RlConfig {
    fn default() -> Self {
        RlConfig {
            max_steps: 400,
            prompts_per_step: 128,
            steps_per_generation: 4,
            num_iterations: 1,
            gradient_accumulation_steps: 1,
            micro_batch_tokens: 8192,
            optim: OptimConfig::default(),
            grpo: GrpoConfig::default(),
            rollout: RolloutConfig {
                num_generations: 5,
                max_completion_length: 16384,
                ..RolloutConfig::default()
            },
            reward: RewardConfig::default(),
            lora: None,
            gradient_checkpointing: false,
        }
    }
}

impl RlConfig {
    /// Optimizer steps trained on each generation of rollouts.
    pub fn steps_per_rollout(&self) -> usize {
        self.steps_per_generation * self.num_iterations
    }
}

/// Held-out evaluation (the paper's: temperature 0.6, top-p 0.9, one response, no probes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// Held-out problems: drawn from the built-in task, or split off the training file when no
    /// `eval_data` is given (a file given as `eval_data` is used whole). Default 500.
    pub num_problems: usize,
    /// Default 0.6.
    pub temperature: f32,
    /// Default 0.9.
    pub top_p: f32,
    /// Response tokens at most. Default 16,384 (the training budget).
    pub max_completion_length: usize,
    /// Run the probe loop while evaluating (the DEER baseline), with `rl.rollout.truncation`'s
    /// probes. Default false.
    pub deer: bool,
    /// The probe confidence at which DEER stops thinking. Default 0.95 (the paper's).
    pub deer_threshold: f64,
    /// During RL, evaluate every this many steps on the first `eval_subset` problems (0 = never).
    /// Default 100.
    pub eval_steps: usize,
    /// Problems of the evaluations during RL. Default 100.
    pub eval_subset: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            num_problems: 500,
            temperature: 0.6,
            top_p: 0.9,
            max_completion_length: 16384,
            deer: false,
            deer_threshold: 0.95,
            eval_steps: 100,
            eval_subset: 100,
        }
    }
}

/// A whole run: where the model and problems come from, SFT, RL for each method, evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Run directory: checkpoints, metrics, plot, results. Default `runs/stepgrpo`.
    pub output_dir: PathBuf,
    /// Seed of model initialisation, problems and sampling. Default 0.
    pub seed: u64,
    /// A Hugging Face model directory to start from; `None` trains the built-in task's tiny model.
    pub model: Option<PathBuf>,
    /// The dtype `model`'s matrices are kept in (`float32`, `bfloat16`, `float16`); `None`: the
    /// checkpoint's, so a bf16 checkpoint stays bf16 where the device supports it. Only frozen
    /// weights stay in half precision (a LoRA run's base, the KL reference): what trains, and
    /// every activation, is f32.
    pub dtype: Option<Dtype>,
    /// Training problems as JSONL (needed with `model`); the built-in task draws its own.
    pub train_data: Option<PathBuf>,
    /// Held-out problems as JSONL, excluded from training; `None`: `eval.num_problems` problems
    /// split off `train_data` (seeded), or drawn from the built-in task.
    pub eval_data: Option<PathBuf>,
    /// The built-in task.
    pub task: TaskConfig,
    /// Supervised warm start (built-in task only).
    pub sft: SftConfig,
    /// The RL phase.
    pub rl: RlConfig,
    /// The methods to train, each from the same starting point. Default `[step_grpo]`.
    pub methods: Vec<Method>,
    /// Evaluation.
    pub eval: EvalConfig,
    /// Write a checkpoint every this many optimizer steps (0 = only at the end). Default 100.
    pub save_steps: usize,
    /// Write a metrics record every this many optimizer steps. Default 1.
    pub logging_steps: usize,
    /// Methods trained at the same time, each on its own thread (results do not depend on it), at
    /// most 2. Default 1.
    pub jobs: usize,
    /// What samples the training rollouts: `local` (this process) or `vllm` (the servers of
    /// `vllm`). Evaluations run in this process either way. Default local.
    pub rollout_engine: RolloutEngineKind,
    /// The vLLM servers, with `rollout_engine = "vllm"`.
    pub vllm: VllmConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            output_dir: PathBuf::from("runs/stepgrpo"),
            seed: 0,
            model: None,
            dtype: None,
            train_data: None,
            eval_data: None,
            task: TaskConfig::default(),
            sft: SftConfig::default(),
            rl: RlConfig::default(),
            methods: vec![Method::StepGrpo],
            eval: EvalConfig::default(),
            save_steps: 100,
            logging_steps: 1,
            jobs: 1,
            rollout_engine: RolloutEngineKind::Local,
            vllm: VllmConfig::default(),
        }
    }
}

impl TrainConfig {
    /// Checks the whole configuration, naming the option at fault.
    pub fn validate(&self) -> Result<()> {
        self.task.validate()?;
        self.sft.optim.validate("sft.optim")?;
        self.rl.optim.validate("rl.optim")?;
        self.rl.grpo.validate()?;
        self.rl.rollout.validate()?;
        if let Some(lora) = &self.rl.lora {
            lora.validate("rl.lora")?;
            if self.rl.gradient_checkpointing && lora.lora_dropout > 0.0 {
                // The recomputed forward would draw other dropout masks than the first one.
                return Err(Error::invalid(
                    "rl.lora.lora_dropout",
                    "must be 0 with rl.gradient_checkpointing",
                ));
            }
        }
        if self.dtype.is_some() && self.model.is_none() {
            return Err(Error::invalid("dtype", "applies to a loaded `model`; the built-in model is f32"));
        }
        if self.rollout_engine == RolloutEngineKind::Vllm {
            self.vllm.validate()?;
            if self.jobs > 1 {
                return Err(Error::invalid(
                    "jobs",
                    "must be 1 with rollout_engine vllm: the methods would share the servers' weights",
                ));
            }
        }
        if self.sft.batch_size == 0 {
            return Err(Error::invalid("sft.batch_size", "must be at least 1"));
        }
        for (name, v) in [
            ("rl.prompts_per_step", self.rl.prompts_per_step),
            ("rl.steps_per_generation", self.rl.steps_per_generation),
            ("rl.num_iterations", self.rl.num_iterations),
            ("logging_steps", self.logging_steps),
        ] {
            if v == 0 {
                return Err(Error::invalid(name, "must be at least 1"));
            }
        }
        // Checked: a file may give any integer, and an overflow here was a panic (found by fuzzing).
        let too_large = |name: &str| Error::invalid(name, "is too large: the step sizes overflow");
        let rows = (self.rl.prompts_per_step.checked_mul(self.rl.rollout.num_generations))
            .ok_or_else(|| too_large("rl.rollout.num_generations"))?;
        (rows.checked_mul(self.rl.steps_per_generation))
            .ok_or_else(|| too_large("rl.steps_per_generation"))?;
        (self.rl.steps_per_generation.checked_mul(self.rl.num_iterations))
            .ok_or_else(|| too_large("rl.num_iterations"))?;
        let ga = self.rl.gradient_accumulation_steps;
        if ga == 0 || ga > rows {
            return Err(Error::invalid(
                "rl.gradient_accumulation_steps",
                format!("{ga} must be at least 1 and at most the responses per step ({rows})"),
            ));
        }
        if self.jobs == 0 {
            return Err(Error::invalid("jobs", "must be at least 1"));
        }
        if self.jobs > 2 {
            // Seen: three methods at once hang in their first RL step, inside burn-autodiff's
            // graph locking (a backward's cleanup against two other threads' registrations).
            return Err(Error::invalid(
                "jobs",
                format!(
                    "{} is more than 2: three concurrent autodiff graphs deadlock in burn-autodiff",
                    self.jobs
                ),
            ));
        }
        if self.methods.is_empty() {
            return Err(Error::invalid("methods", "name at least one method"));
        }
        if self.methods.iter().any(|m| m.truncates()) || self.eval.deer {
            self.truncation()?;
        }
        for m in &self.methods {
            m.reward(&self.rl.reward, &self.rl.rollout)?;
        }
        match (&self.model, &self.train_data) {
            (Some(_), None) => {
                return Err(Error::invalid("train_data", "a model directory needs a JSONL problem file"));
            }
            (None, Some(_)) => {
                return Err(Error::invalid(
                    "train_data",
                    "needs a model directory (`model`, --model): the built-in task draws its own problems",
                ));
            }
            _ => {}
        }
        if self.model.is_some() && self.sft.max_steps > 0 {
            return Err(Error::invalid(
                "sft.max_steps",
                "the supervised warm start trains on the built-in task's traces; a model directory starts RL as it is (set it to 0)",
            ));
        }
        if self.eval.num_problems == 0 && self.eval_data.is_none() {
            return Err(Error::invalid("eval.num_problems", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.eval.deer_threshold) {
            let v = self.eval.deer_threshold;
            return Err(Error::invalid("eval.deer_threshold", format!("{v} must be in [0, 1]")));
        }
        if self.eval.max_completion_length == 0 {
            return Err(Error::invalid("eval.max_completion_length", "must be at least 1"));
        }
        Ok(())
    }

    /// The probe settings of the truncating methods and of DEER evaluation.
    pub fn truncation(&self) -> Result<&TruncationConfig> {
        self.rl.rollout.truncation.as_ref().ok_or_else(|| {
            Error::invalid("rl.rollout.truncation", "the truncating methods and DEER need probe settings")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_option() {
        let mut c = crate::train::builtin_recipe();
        c.validate().unwrap();
        c.rl.gradient_accumulation_steps = 129;
        assert!(c.validate().unwrap_err().to_string().contains("rl.gradient_accumulation_steps"));
        c.rl.gradient_accumulation_steps = 1;
        c.jobs = 3;
        assert!(c.validate().unwrap_err().to_string().contains("jobs"));
        c.jobs = 2;
        c.rl.rollout.truncation = None;
        assert!(c.validate().unwrap_err().to_string().contains("rl.rollout.truncation"));
        c.methods = vec![Method::Grpo];
        c.validate().unwrap();
        c.sft.optim.learning_rate = -1.0;
        assert!(c.validate().unwrap_err().to_string().contains("sft.optim.learning_rate"));
        c.sft.optim.learning_rate = 1e-3;
        c.rl.num_iterations = 0;
        assert!(c.validate().unwrap_err().to_string().contains("rl.num_iterations"));
        let mut hf = TrainConfig {
            model: Some("m".into()),
            train_data: Some("t.jsonl".into()),
            ..TrainConfig::default()
        };
        hf.validate().unwrap();
        hf.sft.max_steps = 5;
        assert!(hf.validate().unwrap_err().to_string().contains("sft.max_steps"));
        assert_eq!(Method::from_name("grpo").unwrap(), Method::Grpo);
        assert!(Method::from_name("ppo").unwrap_err().to_string().contains("step_grpo"));
    }
}
