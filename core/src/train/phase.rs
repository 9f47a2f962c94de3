//! One phase of a run, advanced one optimizer step at a time by whichever face drives it (a loop
//! on the command line, a worker message in the browser): the trainer, and the cadence of
//! metrics records, evaluations during RL and checkpoints around it.

use web_time::Instant;

use super::checkpoint::{self, TrainerState};
use super::guard::NanGuard;
use super::method::Method;
use super::optim::Optimizer;
use super::rl::{RlTrainer, ScoredRollout};
use super::run::Run;
use super::sft::SftTrainer;
use super::sink::{Event, PhaseSummary, RunSink};
use crate::error::{Error, Result};
use crate::model::CausalLm;
use crate::rollout::vllm::RolloutEngineKind;
use crate::rollout::{LocalEngine, RolloutSource};

/// Which phase: the supervised warm start, or RL with one method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseKind {
    /// SFT on the built-in task's traces.
    Sft,
    /// RL with a method.
    Rl(Method),
}

impl PhaseKind {
    /// The phase's name: `sft` or the method's (its directory in the run's store).
    pub fn name(self) -> &'static str {
        match self {
            PhaseKind::Sft => "sft",
            PhaseKind::Rl(m) => m.name(),
        }
    }
}

enum Trainer {
    Sft(Box<SftTrainer>),
    Rl(Box<RlTrainer>),
}

impl Trainer {
    fn model(&self) -> &CausalLm {
        match self {
            Trainer::Sft(t) => &t.model,
            Trainer::Rl(t) => &t.model,
        }
    }

    fn optim(&self) -> &Optimizer {
        match self {
            Trainer::Sft(t) => &t.optim,
            Trainer::Rl(t) => &t.optim,
        }
    }

    fn guard(&self) -> NanGuard {
        match self {
            Trainer::Sft(t) => t.guard,
            Trainer::Rl(t) => t.guard,
        }
    }
}

/// Early-exit rates the phase's summary averages (its last RL steps).
const SUMMARY_STEPS: usize = 10;

/// What one step of a phase produced.
#[derive(Debug, Clone)]
pub struct PhaseStep {
    /// Optimizer steps done.
    pub step: usize,
    /// The step's metrics record (`metrics.jsonl`'s names; RL steps at `eval.eval_steps` also
    /// carry `eval/accuracy`, `eval/mean_length` and `eval/steps_mean`).
    pub record: serde_json::Value,
    /// RL: the first group of the step's responses.
    pub group: Vec<ScoredRollout>,
}

/// The engine the RL phases of `run` sample with.
fn rollout_source(run: &Run, sink: &dyn RunSink) -> Result<Box<dyn RolloutSource>> {
    let (tokenizer, eos) = (run.data.tokenizer.clone(), run.data.eos.clone());
    match run.config.rollout_engine {
        RolloutEngineKind::Local => Ok(Box::new(LocalEngine::new(tokenizer, eos))),
        #[cfg(all(feature = "vllm", not(target_family = "wasm")))]
        RolloutEngineKind::Vllm => {
            let c = &run.config;
            let dir = c.vllm.weights_dir.clone().unwrap_or_else(|| c.output_dir.join("vllm-weights"));
            let engine = crate::rollout::vllm::VllmEngine::connect(&c.vllm, &dir, tokenizer, eos)?;
            sink.event("rl", Event::Note(&format!("rollouts on vLLM: {}", engine.describe())))?;
            Ok(Box::new(engine))
        }
        #[cfg(not(all(feature = "vllm", not(target_family = "wasm"))))]
        RolloutEngineKind::Vllm => {
            let _ = sink;
            Err(crate::error::Error::invalid(
                "rollout_engine",
                "this build has no vLLM engine (the `vllm` feature of stepgrpo-core)",
            ))
        }
    }
}

/// A phase in progress.
pub struct Phase {
    kind: PhaseKind,
    trainer: Trainer,
    total: usize,
    started: Instant,
    /// Early-exit rate of each RL step: the last ones of the checkpoint resumed from, then each of
    /// this process.
    exits: Vec<f64>,
}

impl Phase {
    /// Starts phase `kind` of `run` from `base` (on the autodiff device); when the run resumes,
    /// from the phase's newest checkpoint.
    pub fn begin(run: &Run, kind: PhaseKind, base: &CausalLm, sink: &dyn RunSink) -> Result<Phase> {
        let c = &run.config;
        let (mut trainer, total) = match kind {
            PhaseKind::Sft => {
                let t = SftTrainer::new(base.clone(), &run.data, c.sft.clone(), c.seed)?;
                (Trainer::Sft(Box::new(t)), c.sft.max_steps)
            }
            PhaseKind::Rl(method) => {
                let source = rollout_source(run, sink)?;
                let t = RlTrainer::new(method, base.clone(), &run.data, c.rl.clone(), c.seed, source)?;
                (Trainer::Rl(Box::new(t)), c.rl.max_steps)
            }
        };
        let mut exits = Vec::new();
        let resumed = match checkpoint::latest(run.store(), kind.name())?.filter(|_| run.resume) {
            Some(dir) => {
                // The trainer's own model is the template: it has the record's adapters, if any.
                let restored = checkpoint::load(run.store(), &dir, trainer.model().clone())?;
                exits = restored.state.recent_exit_rates.clone();
                match &mut trainer {
                    Trainer::Sft(t) => t.restore(restored)?,
                    Trainer::Rl(t) => t.restore(restored)?,
                }
                Some(run.store().describe(&dir))
            }
            None => None,
        };
        let phase = Phase { kind, trainer, total, started: Instant::now(), exits };
        let event = Event::Started { step: phase.step(), total, resumed_from: resumed.as_deref() };
        sink.event(kind.name(), event)?;
        Ok(phase)
    }

    /// Which phase this is.
    pub fn kind(&self) -> PhaseKind {
        self.kind
    }

    /// Optimizer steps done.
    pub fn step(&self) -> usize {
        match &self.trainer {
            Trainer::Sft(t) => t.step,
            Trainer::Rl(t) => t.step,
        }
    }

    /// Optimizer steps the phase has.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Whether every step has run.
    pub fn is_done(&self) -> bool {
        self.step() >= self.total
    }

    /// The model being trained.
    pub fn model(&self) -> &CausalLm {
        self.trainer.model()
    }

    /// Runs one optimizer step, then what its cadence asks for: an evaluation on the first
    /// `eval.eval_subset` held-out problems (RL, every `eval.eval_steps`), a metrics record (every
    /// `logging_steps`, and the last step), a checkpoint (every `save_steps`, before the last).
    pub async fn advance(&mut self, run: &Run, sink: &dyn RunSink) -> Result<PhaseStep> {
        let c = &run.config;
        let name = self.kind.name();
        let (step, mut record, group, summary) = match &mut self.trainer {
            Trainer::Sft(t) => {
                let m = t.step().await?;
                let summary = format!("loss {:.3} lr {:.1e}", m.loss, m.learning_rate);
                (m.step, serde_json::to_value(&m).expect("metrics serialise"), Vec::new(), summary)
            }
            Trainer::Rl(t) => {
                let out = t.step().await?;
                let m = &out.metrics;
                self.exits.push(m.early_exit_rate);
                let summary = format!(
                    "reward {:.2} acc {:.2} tokens {:.0} steps {:.1} exit {:.2}",
                    m.reward, m.accuracy, m.mean_length, m.steps_mean, m.early_exit_rate
                );
                (m.step, serde_json::to_value(m).expect("metrics serialise"), out.group, summary)
            }
        };
        let done = step >= self.total;
        let eval_steps = match self.kind {
            PhaseKind::Sft => c.sft.eval_steps,
            PhaseKind::Rl(_) => c.eval.eval_steps,
        };
        if eval_steps > 0 && step % eval_steps == 0 {
            // Probe-free held-out numbers: in SFT, the learning curve; in RL, next to the
            // rollouts', whether shorter rollouts are internalised.
            let n = c.eval.eval_subset.min(run.data.held_out.len());
            let r = run.evaluate_on(self.model(), &run.data.held_out[..n], c.seed).await?;
            record["eval/accuracy"] = r.stats.accuracy.into();
            record["eval/mean_length"] = r.stats.mean_tokens.into();
            record["eval/steps_mean"] = r.stats.mean_steps.into();
        }
        sink.event(name, Event::Stepped { step, summary: &summary })?;
        let guard = self.trainer.guard();
        if let Some(fault) = guard.fault {
            let note = format!(
                "{name}: step {step}: update skipped, {fault} ({} in a row, {} in the phase)",
                guard.in_a_row, guard.skipped
            );
            sink.event(name, Event::Note(&note))?;
        }
        if step % c.logging_steps == 0 || done {
            sink.event(name, Event::Record(&record))?;
        }
        let limit = self.trainer.optim().max_nan_skips();
        if guard.exhausted(limit) {
            return Err(self.diverged(run, sink, step, limit).await);
        }
        if c.save_steps > 0 && step % c.save_steps == 0 && !done {
            self.save(run, sink, step, guard).await?;
        }
        Ok(PhaseStep { step, record, group })
    }

    /// Writes checkpoint `{phase}/checkpoint-{step}` of the trainer's state after `step` steps,
    /// with `guard`'s counts.
    async fn save(&self, run: &Run, sink: &dyn RunSink, step: usize, guard: NanGuard) -> Result<()> {
        let name = self.kind.name();
        // The rates of the steps up to `step` (fewer than this process ran, after faults).
        let ran = self.exits.len() - (self.step() - step).min(self.exits.len());
        let recent_exit_rates = self.exits[ran.saturating_sub(SUMMARY_STEPS)..ran].to_vec();
        let state = TrainerState { phase: name.into(), step, nan_guard: guard, recent_exit_rates };
        let generation = match &self.trainer {
            Trainer::Sft(_) => None,
            Trainer::Rl(t) => t.generation_for(step),
        };
        let data = &run.data;
        let dir = checkpoint::save(
            run.store(),
            self.model(),
            self.trainer.optim(),
            &state,
            &data.files,
            &data.base_model,
            generation,
        )
        .await?;
        sink.event(name, Event::Saved { step, path: &run.store().describe(&dir) })
    }

    /// The error that stops the phase after more than `limit` skipped updates in a row at `step`,
    /// once the last good state is checkpointed: the weights and optimizer state are those after
    /// the last applied update, saved as that step's checkpoint (replacing any later one, which
    /// held the same weights), so that `--resume` continues from there.
    async fn diverged(&self, run: &Run, sink: &dyn RunSink, step: usize, limit: usize) -> Error {
        let name = self.kind.name();
        let guard = self.trainer.guard();
        let good = step - guard.in_a_row;
        let fault = guard.fault.map(|f| f.to_string()).unwrap_or_default();
        let saved = async {
            checkpoint::discard_after(run.store(), name, good)?;
            self.save(run, sink, good, guard.before_faults()).await?;
            Ok::<_, Error>(run.store().describe(&format!("{name}/checkpoint-{good}")))
        };
        let kept = match saved.await {
            Ok(dir) => format!("the last good state (step {good}) is saved in {dir}"),
            Err(e) => format!("saving the last good state (step {good}) failed: {e}"),
        };
        Error::Diverged {
            phase: name.into(),
            message: format!(
                "steps {}-{step} each had a NaN or an infinity ({fault} at step {step}), more skipped \
                 updates in a row than max_nan_skips = {limit}; {kept}. Resuming repeats these steps: \
                 change what made them diverge (a lower learning_rate, say) first",
                good + 1
            ),
        }
    }

    /// Ends the phase (after its last step, or early): writes its model directory `{phase}/final`
    /// and `train_summary.json`, and returns the model and the summary.
    pub async fn finish(&mut self, run: &Run, sink: &dyn RunSink) -> Result<(CausalLm, PhaseSummary)> {
        let name = self.kind.name();
        let tail = &self.exits[self.exits.len().saturating_sub(SUMMARY_STEPS)..];
        let early_exit_rate =
            if tail.is_empty() { 0.0 } else { tail.iter().sum::<f64>() / tail.len() as f64 };
        let summary = PhaseSummary { early_exit_rate, train_seconds: self.started.elapsed().as_secs_f64() };
        let model = self.model().clone();
        let dir = format!("{name}/final");
        run.store().write_dir(
            &dir,
            &checkpoint::model_files(&model, &run.data.files, &run.data.base_model).await?,
        )?;
        run.store().write(
            &format!("{name}/train_summary.json"),
            &serde_json::to_vec(&summary).expect("serialises"),
        )?;
        let event = Event::Finished { summary: &summary, model: &run.store().describe(&dir), reused: false };
        sink.event(name, event)?;
        Ok((model, summary))
    }
}
