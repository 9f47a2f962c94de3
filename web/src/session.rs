//! One training session in a page, step by step: the supervised warm start, then RL with one method,
//! the way `stepgrpo train` drives the same core trainers. Plain Rust (no JavaScript types), so the
//! same flow also runs natively.

use burn::module::Module;
use burn::tensor::Device;
use serde::Serialize;
use stepgrpo_core::data::Problem;
use stepgrpo_core::model::{self, CausalLm};
use stepgrpo_core::rollout::rollout;
use stepgrpo_core::steps::Triggers;
use stepgrpo_core::task;
use stepgrpo_core::text::Tokenizer;
use stepgrpo_core::train::{Method, ProblemSet, RlTrainer, SftTrainer, TrainConfig, evaluate};
use web_time::Instant;

use crate::config::WebConfig;
use crate::device::{self, DeviceInfo};
use crate::error::{WebError, WebResult};
use crate::view::{RolloutView, parse_chain};

/// The phase a session is in; SFT comes first (it may have zero steps), RL follows.
enum Phase {
    Sft(Box<SftTrainer>),
    Rl(Box<RlTrainer>),
}

/// Which model answers a `generate` or `evaluate` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Which {
    /// The model being trained now.
    #[default]
    Current,
    /// The model RL started from (after SFT, or as imported): the "before" of a before/after.
    WarmStart,
}

/// Options of `generate`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct GenerateOptions {
    /// Which model answers. Default the current one.
    pub model: Which,
    /// Sampling temperature; 0 (the default) decodes greedily.
    pub temperature: f32,
    /// Probe at every `Wait` and stop thinking when confident (DEER at inference time). Default false.
    pub deer: bool,
    /// Seed of the sampling stream. Default 0.
    pub seed: u64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions { model: Which::Current, temperature: 0.0, deer: false, seed: 0 }
    }
}

/// What one training step produced.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    /// `sft` or `rl`.
    pub phase: &'static str,
    /// Step of the phase, from 1.
    pub step: usize,
    /// Steps the phase has.
    pub total_steps: usize,
    /// Wall-clock seconds of the step, readback included.
    pub seconds: f64,
    /// The record `stepgrpo train` writes to the phase's `metrics.jsonl`, under the same names
    /// (`loss`, `reward`, `accuracy`, `completions/mean_length`, `steps/mean`, `early_exit/rate`, ...).
    pub metrics: serde_json::Value,
    /// RL steps: the responses of the step's first group.
    pub group: Vec<RolloutView>,
    /// Whether every SFT and RL step has run.
    pub done: bool,
}

/// Where a session stands.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// `sft` or `rl`.
    pub phase: &'static str,
    /// The RL method.
    pub method: &'static str,
    /// SFT steps done (the configured number once RL started).
    pub sft_step: usize,
    /// SFT steps configured.
    pub sft_steps: usize,
    /// RL steps done.
    pub rl_step: usize,
    /// RL steps configured.
    pub rl_steps: usize,
    /// Whether every step has run.
    pub done: bool,
}

/// Held-out accuracy and lengths of one model.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvalSummary {
    /// Problems answered.
    pub problems: usize,
    /// Share answered correctly.
    pub accuracy: f64,
    /// Mean response tokens.
    pub mean_tokens: f64,
    /// Mean semantic steps.
    pub mean_steps: f64,
    /// Response tokens per correct answer (none without a correct one).
    pub tokens_per_correct: Option<f64>,
    /// Share of responses a probe ended (DEER only).
    pub early_exit_rate: f64,
    /// Seconds the evaluation took.
    pub seconds: f64,
}

/// A training session: device, task, trainers and the warm-start model.
pub struct Session {
    config: WebConfig,
    train: TrainConfig,
    method: Method,
    device: Device,
    device_info: DeviceInfo,
    tokenizer: Tokenizer,
    eos: Vec<u32>,
    problems: ProblemSet,
    held_out: Vec<Problem>,
    triggers: Triggers,
    phase: Phase,
    warm_start: Option<CausalLm>,
}

impl Session {
    /// Picks the device, builds the tiny model and the task's problems.
    pub async fn new(config: WebConfig) -> WebResult<Session> {
        let train = config.train_config()?;
        let method = config.method()?;
        let picked = device::pick(config.device).await?;
        let device = picked.device.autodiff();
        device.seed(train.seed);
        let initial = model::init(&task::model_config(), &device);
        let (problems, held_out) = ProblemSet::builtin(&train.task, train.seed, train.eval.num_problems);
        let tokenizer = task::tokenizer();
        let sft =
            SftTrainer::new(initial, tokenizer.clone(), problems.clone(), train.sft.clone(), train.seed)?;
        Ok(Session {
            eos: tokenizer.eos_token_ids().to_vec(),
            triggers: train.rl.rollout.triggers.clone(),
            config,
            train,
            method,
            device,
            device_info: picked.info,
            tokenizer,
            problems,
            held_out,
            phase: Phase::Sft(Box::new(sft)),
            warm_start: None,
        })
    }

    /// The device in use.
    pub fn device_info(&self) -> &DeviceInfo {
        &self.device_info
    }

    /// The configuration, every default filled in.
    pub fn config(&self) -> &WebConfig {
        &self.config
    }

    /// Where the session stands.
    pub fn status(&self) -> Status {
        let (phase, sft_step, rl_step) = match &self.phase {
            Phase::Sft(t) => ("sft", t.step, 0),
            Phase::Rl(t) => ("rl", self.train.sft.max_steps, t.step),
        };
        Status {
            phase,
            method: self.method.name(),
            sft_step,
            sft_steps: self.train.sft.max_steps,
            rl_step,
            rl_steps: self.train.rl.max_steps,
            done: self.is_done(),
        }
    }

    /// Whether every SFT and RL step has run.
    pub fn is_done(&self) -> bool {
        match &self.phase {
            Phase::Sft(_) => self.train.rl.max_steps == 0 && self.sft_done(),
            Phase::Rl(t) => t.is_done(),
        }
    }

    fn sft_done(&self) -> bool {
        matches!(&self.phase, Phase::Sft(t) if t.is_done())
    }

    /// The next step of the run: SFT until its steps are done, then RL.
    pub async fn step(&mut self) -> WebResult<StepReport> {
        match &self.phase {
            Phase::Sft(t) if !t.is_done() => self.sft_step().await,
            _ => self.rl_step().await,
        }
    }

    /// One supervised step.
    pub async fn sft_step(&mut self) -> WebResult<StepReport> {
        let Phase::Sft(trainer) = &mut self.phase else {
            return Err(WebError::Phase("SFT is over: RL has started".into()));
        };
        if trainer.is_done() {
            return Err(WebError::Phase(format!("all {} SFT steps have run", self.train.sft.max_steps)));
        }
        let start = Instant::now();
        let m = trainer.step().await?;
        let done = self.train.rl.max_steps == 0 && trainer.is_done();
        Ok(StepReport {
            phase: "sft",
            step: m.step,
            total_steps: self.train.sft.max_steps,
            seconds: start.elapsed().as_secs_f64(),
            metrics: serde_json::to_value(&m).expect("metrics serialise"),
            group: Vec::new(),
            done,
        })
    }

    /// One RL step; the first one ends SFT (early, if its steps have not all run) and starts RL from
    /// the SFT model.
    pub async fn rl_step(&mut self) -> WebResult<StepReport> {
        if let Phase::Sft(sft) = &self.phase {
            let base = sft.model.clone();
            self.begin_rl(base)?;
        }
        let Phase::Rl(trainer) = &mut self.phase else { unreachable!("RL began above") };
        if trainer.is_done() {
            return Err(WebError::Phase(format!("all {} RL steps have run", self.train.rl.max_steps)));
        }
        let start = Instant::now();
        let out = trainer.step().await?;
        let done = trainer.is_done();
        let group = out
            .group
            .iter()
            .map(|s| RolloutView::scored(&self.tokenizer, &self.triggers, s))
            .collect::<WebResult<Vec<_>>>()?;
        Ok(StepReport {
            phase: "rl",
            step: out.metrics.step,
            total_steps: self.train.rl.max_steps,
            seconds: start.elapsed().as_secs_f64(),
            metrics: serde_json::to_value(&out.metrics).expect("metrics serialise"),
            group,
            done,
        })
    }

    /// Starts RL from `base` (on the autodiff device), which becomes the warm start.
    fn begin_rl(&mut self, base: CausalLm) -> WebResult<()> {
        let trainer = RlTrainer::new(
            self.method,
            base.clone(),
            self.tokenizer.clone(),
            self.eos.clone(),
            self.problems.clone(),
            self.train.rl.clone(),
            self.train.seed,
        )?;
        self.warm_start = Some(base.valid());
        self.phase = Phase::Rl(Box::new(trainer));
        Ok(())
    }

    fn model(&self, which: Which) -> WebResult<CausalLm> {
        match which {
            Which::Current => Ok(match &self.phase {
                Phase::Sft(t) => t.model.valid(),
                Phase::Rl(t) => t.model.valid(),
            }),
            Which::WarmStart => self.warm_start.clone().ok_or_else(|| {
                WebError::Phase("there is no warm start yet: it is the model RL starts from".into())
            }),
        }
    }

    /// Answers one problem of the task (e.g. `37+8-6`) with the chosen model.
    pub async fn generate(&self, problem: &str, options: &GenerateOptions) -> WebResult<RolloutView> {
        let chain = parse_chain(problem)?;
        let model = self.model(options.model)?;
        let mut eval = self.train.eval.clone();
        eval.temperature = options.temperature;
        eval.deer = options.deer;
        let config = eval.rollout(&self.train.rl.rollout, options.seed);
        let prompt = self.tokenizer.encode(&chain.prompt())?;
        let out = rollout(&model, &self.tokenizer, &[prompt], &self.eos, &config).await?;
        let first = out.first().ok_or_else(|| WebError::Phase("the rollout returned no response".into()))?;
        RolloutView::new(&self.tokenizer, &self.triggers, &chain, first)
    }

    /// Accuracy and lengths of the chosen model on the first `n` held-out problems (the paper's
    /// protocol: temperature 0.6, top-p 0.9, no probes unless `deer`).
    pub async fn evaluate(&self, n: usize, which: Which, deer: bool) -> WebResult<EvalSummary> {
        let start = Instant::now();
        let n = n.clamp(1, self.held_out.len());
        let model = self.model(which)?;
        let mut eval = self.train.eval.clone();
        eval.deer = deer;
        let config = eval.rollout(&self.train.rl.rollout, self.train.seed ^ 0xe7a1);
        let report = evaluate(&model, &self.tokenizer, &self.eos, &self.held_out[..n], &config).await?;
        let s = report.stats;
        Ok(EvalSummary {
            problems: s.responses,
            accuracy: s.accuracy,
            mean_tokens: s.mean_tokens,
            mean_steps: s.mean_steps,
            tokens_per_correct: s.tokens_per_correct,
            early_exit_rate: s.early_exit_rate,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// A held-out problem of the task (for a before/after comparison on a problem never trained on).
    pub fn held_out_problem(&self, index: usize) -> String {
        let p = &self.held_out[index % self.held_out.len()];
        p.prompt.trim_end_matches("\n<think>\n").to_string()
    }

    /// The current model as a Hugging Face `model.safetensors` file (f32).
    pub async fn export_checkpoint(&self) -> WebResult<Vec<u8>> {
        Ok(model::to_hf_safetensors(&self.model(Which::Current)?).await?)
    }

    /// Loads a `model.safetensors` of the task's model (exported here or written by `stepgrpo train`)
    /// as the new warm start: SFT ends and RL starts over from these weights.
    pub fn import_checkpoint(&mut self, bytes: Vec<u8>) -> WebResult<()> {
        let model = model::from_safetensors(&task::model_config(), bytes, &self.device)?;
        self.begin_rl(model)
    }
}
