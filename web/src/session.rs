//! One training session in a page: the core run driver ([`Run`]) stepped one optimizer step per
//! call, the supervised warm start and then RL with one method, exactly as `stepgrpo train` runs
//! them (same phases, cadence of records, evaluations and checkpoints). Checkpoints stay in memory
//! for the page to take. Plain Rust (no JavaScript types), so the same flow also runs natively.

use std::cell::RefCell;

use burn::module::Module;
use burn::tensor::Device;
use serde::Serialize;
use stepgrpo_core::model::{self, CausalLm};
use stepgrpo_core::rollout::rollout;
use stepgrpo_core::task;
use stepgrpo_core::train::{
    Event, MemoryStore, Method, Phase, PhaseKind, Run, RunSink, checkpoint, prepare, seeds,
};
use web_time::Instant;

use crate::config::WebConfig;
use crate::device::{self, DeviceInfo};
use crate::error::{WebError, WebResult};
use crate::view::{RolloutView, parse_chain};

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
    /// What the run reported during the step besides the metrics, e.g. `{ "kind": "saved",
    /// "step": 50 }` for a checkpoint (take it with `checkpoint()`).
    pub events: Vec<serde_json::Value>,
    /// Whether every SFT and RL step has run.
    pub done: bool,
}

/// The newest checkpoint a session saved (every `saveSteps` steps).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedCheckpoint {
    /// `sft` or the method.
    pub phase: &'static str,
    /// Its optimizer step.
    pub step: usize,
    /// Its weights as a Hugging Face `model.safetensors` file.
    #[serde(skip)]
    pub model: Vec<u8>,
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

/// The page's sink: the events of the step being run, as messages for its report.
#[derive(Default)]
struct Messages {
    events: RefCell<Vec<serde_json::Value>>,
}

impl RunSink for Messages {
    fn event(&self, phase: &str, event: Event<'_>) -> stepgrpo_core::Result<()> {
        let message = match event {
            Event::Saved { step, .. } => serde_json::json!({ "kind": "saved", "phase": phase, "step": step }),
            Event::Note(note) => serde_json::json!({ "kind": "note", "phase": phase, "text": note }),
            Event::Record(record) => {
                serde_json::json!({ "kind": "record", "phase": phase, "record": record })
            }
            // Progress is the step report itself.
            _ => return Ok(()),
        };
        self.events.borrow_mut().push(message);
        Ok(())
    }
}

/// A training session: the run, its current phase and the warm-start model.
pub struct Session {
    config: WebConfig,
    method: Method,
    device: Device,
    device_info: DeviceInfo,
    run: Run,
    sink: Messages,
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
        let (data, start) = prepare(&train, &device)?;
        let sink = Messages::default();
        let run = Run::new(train, data, start, Box::new(MemoryStore::default()), false, &sink)?;
        let phase = Phase::begin(&run, PhaseKind::Sft, &run.start, &sink)?;
        Ok(Session { config, method, device, device_info: picked.info, run, sink, phase, warm_start: None })
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
        let c = &self.run.config;
        let (phase, sft_step, rl_step) = match self.phase.kind() {
            PhaseKind::Sft => ("sft", self.phase.step(), 0),
            PhaseKind::Rl(_) => ("rl", c.sft.max_steps, self.phase.step()),
        };
        Status {
            phase,
            method: self.method.name(),
            sft_step,
            sft_steps: c.sft.max_steps,
            rl_step,
            rl_steps: c.rl.max_steps,
            done: self.is_done(),
        }
    }

    /// Whether every SFT and RL step has run.
    pub fn is_done(&self) -> bool {
        match self.phase.kind() {
            PhaseKind::Sft => self.run.config.rl.max_steps == 0 && self.phase.is_done(),
            PhaseKind::Rl(_) => self.phase.is_done(),
        }
    }

    /// The next step of the run: SFT until its steps are done, then RL.
    pub async fn step(&mut self) -> WebResult<StepReport> {
        if self.phase.kind() == PhaseKind::Sft && !self.phase.is_done() {
            self.sft_step().await
        } else {
            self.rl_step().await
        }
    }

    /// One supervised step.
    pub async fn sft_step(&mut self) -> WebResult<StepReport> {
        if self.phase.kind() != PhaseKind::Sft {
            return Err(WebError::Phase("SFT is over: RL has started".into()));
        }
        if self.phase.is_done() {
            return Err(WebError::Phase(format!("all {} SFT steps have run", self.phase.total())));
        }
        self.advance("sft").await
    }

    /// One RL step; the first one ends SFT (early, if its steps have not all run) and starts RL from
    /// the SFT model.
    pub async fn rl_step(&mut self) -> WebResult<StepReport> {
        if self.phase.kind() == PhaseKind::Sft {
            let (base, _) = self.phase.finish(&self.run, &self.sink).await?;
            self.begin_rl(base)?;
        }
        if self.phase.is_done() {
            return Err(WebError::Phase(format!("all {} RL steps have run", self.phase.total())));
        }
        self.advance("rl").await
    }

    /// Runs the current phase's next step and reports it.
    async fn advance(&mut self, phase: &'static str) -> WebResult<StepReport> {
        let start = Instant::now();
        let out = self.phase.advance(&self.run, &self.sink).await?;
        let group = out
            .group
            .iter()
            .map(|s| RolloutView::scored(&self.run.data.tokenizer, &self.run.config.rl.rollout.triggers, s))
            .collect::<WebResult<Vec<_>>>()?;
        Ok(StepReport {
            phase,
            step: out.step,
            total_steps: self.phase.total(),
            seconds: start.elapsed().as_secs_f64(),
            metrics: out.record,
            group,
            events: self.sink.events.take(),
            done: self.is_done(),
        })
    }

    /// Starts RL from `base` (on the autodiff device), which becomes the warm start.
    fn begin_rl(&mut self, base: CausalLm) -> WebResult<()> {
        self.phase = Phase::begin(&self.run, PhaseKind::Rl(self.method), &base, &self.sink)?;
        self.warm_start = Some(base.valid());
        Ok(())
    }

    fn model(&self, which: Which) -> WebResult<CausalLm> {
        match which {
            Which::Current => Ok(self.phase.model().valid()),
            Which::WarmStart => self.warm_start.clone().ok_or_else(|| {
                WebError::Phase("there is no warm start yet: it is the model RL starts from".into())
            }),
        }
    }

    /// Answers one problem of the task (e.g. `37+8-6`) with the chosen model.
    pub async fn generate(&self, problem: &str, options: &GenerateOptions) -> WebResult<RolloutView> {
        let chain = parse_chain(problem)?;
        let model = self.model(options.model)?;
        let c = &self.run.config;
        let mut eval = c.eval.clone();
        eval.temperature = options.temperature;
        eval.deer = options.deer;
        let config = eval.rollout(&c.rl.rollout, options.seed);
        let (tokenizer, eos) = (&self.run.data.tokenizer, &self.run.data.eos);
        let prompt = tokenizer.encode(&chain.prompt())?;
        let out = rollout(&model, tokenizer, &[prompt], eos, &config).await?;
        let first = out.first().ok_or_else(|| WebError::Phase("the rollout returned no response".into()))?;
        RolloutView::new(tokenizer, &c.rl.rollout.triggers, &chain, first)
    }

    /// Accuracy and lengths of the chosen model on the first `n` held-out problems (the paper's
    /// protocol: temperature 0.6, top-p 0.9, no probes unless `deer`).
    pub async fn evaluate(&self, n: usize, which: Which, deer: bool) -> WebResult<EvalSummary> {
        let start = Instant::now();
        let held_out = &self.run.data.held_out;
        let n = n.clamp(1, held_out.len());
        let model = self.model(which)?;
        let c = &self.run.config;
        let mut eval = c.eval.clone();
        eval.deer = deer;
        let config = eval.rollout(&c.rl.rollout, c.seed ^ seeds::EVAL_SAMPLING);
        let (tokenizer, eos) = (&self.run.data.tokenizer, &self.run.data.eos);
        let report = stepgrpo_core::train::evaluate(&model, tokenizer, eos, &held_out[..n], &config).await?;
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
        let held_out = &self.run.data.held_out;
        let p = &held_out[index % held_out.len()];
        p.prompt.trim_end_matches("\n<think>\n").to_string()
    }

    /// The current model as a Hugging Face `model.safetensors` file (f32).
    pub async fn export_checkpoint(&self) -> WebResult<Vec<u8>> {
        Ok(model::to_hf_safetensors(&self.model(Which::Current)?).await?)
    }

    /// The newest checkpoint of the current phase (saved every `saveSteps` steps), if any.
    pub fn latest_checkpoint(&self) -> WebResult<Option<SavedCheckpoint>> {
        let store = self.run.store();
        let phase = self.phase.kind().name();
        let Some(dir) = checkpoint::latest(store, phase)? else { return Ok(None) };
        let step = dir.rsplit('-').next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let model = store.read(&format!("{dir}/model.safetensors"))?.unwrap_or_default();
        Ok(Some(SavedCheckpoint { phase, step, model }))
    }

    /// Loads a `model.safetensors` of the task's model (exported here or written by `stepgrpo train`)
    /// as the new warm start: SFT ends and RL starts over from these weights.
    pub fn import_checkpoint(&mut self, bytes: Vec<u8>) -> WebResult<()> {
        let model = model::from_safetensors(&task::model_config(), bytes, &self.device)?;
        self.begin_rl(model)
    }
}
