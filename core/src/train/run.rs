//! A whole training run, the one driver behind `stepgrpo train` and the browser: the supervised
//! warm start (built-in task only), an evaluation of the starting point, then RL with each method
//! from that same point, each evaluated on the held-out problems. Phases advance one step at a
//! time ([`Phase::advance`]); [`Run::execute`] runs them all, `jobs` methods side by side.
//! Records and progress go to a [`RunSink`], checkpoints and models to a [`Store`]; with `resume`
//! every phase continues from its newest checkpoint and finished ones are reused.

use serde::{Deserialize, Serialize};

use burn::module::Module;

use super::checkpoint;
use super::config::TrainConfig;
use super::eval::{EvalReport, evaluate};
use super::phase::{Phase, PhaseKind};
use super::seeds;
use super::setup::RunData;
use super::sink::{Event, PhaseSummary, RunSink};
use super::store::Store;
use crate::data::Problem;
use crate::error::{Error, Result};
use crate::model::CausalLm;

/// One line of a run's results: a model and its held-out evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// `sft` or `base` (the starting point), or a method's name.
    pub label: String,
    /// Its evaluation on the held-out problems.
    pub report: EvalReport,
    /// Share of training rollouts a probe ended over the last 10 steps; none for the starting point.
    pub early_exit_rate: Option<f64>,
    /// Seconds it trained (0 for a starting point that was not trained).
    pub train_seconds: f64,
}

/// A run: its configuration, data, starting model, and where it keeps what it writes.
pub struct Run {
    /// The configuration (validated).
    pub config: TrainConfig,
    /// Tokenizer, problems, held-out problems.
    pub data: RunData,
    /// The model the run starts from, on the autodiff device.
    pub start: CausalLm,
    /// Whether to continue from what an earlier run of the same store wrote.
    pub resume: bool,
    store: Box<dyn Store>,
}

impl Run {
    /// A run of `config` over `data` from `start`; tells `sink` what the setup decided.
    pub fn new(
        config: TrainConfig,
        data: RunData,
        start: CausalLm,
        store: Box<dyn Store>,
        resume: bool,
        sink: &dyn RunSink,
    ) -> Result<Run> {
        config.validate()?;
        for note in &data.notes {
            sink.event("data", Event::Note(note))?;
        }
        Ok(Run { config, data, start, resume, store })
    }

    /// Where the run's checkpoints and models are kept.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Whether the run starts with the supervised warm start (the built-in task's).
    pub fn has_sft(&self) -> bool {
        self.config.model.is_none() && self.config.sft.max_steps > 0
    }

    /// The name of the starting point's row: `sft` after the warm start, `base` otherwise.
    pub fn base_label(&self) -> &'static str {
        if self.config.model.is_none() { "sft" } else { "base" }
    }

    /// A phase's model and summary when the run resumes and an earlier run finished it.
    pub fn finished(&self, kind: PhaseKind, sink: &dyn RunSink) -> Result<Option<(CausalLm, PhaseSummary)>> {
        let name = kind.name();
        let summary = self.store.read(&format!("{name}/train_summary.json"))?;
        let (Some(summary), true) = (summary, self.resume) else { return Ok(None) };
        let dir = format!("{name}/final");
        let model = checkpoint::load_model(self.store(), &dir, &self.start.device())?;
        let summary: PhaseSummary = serde_json::from_slice(&summary).map_err(|source| Error::Json {
            path: self.store.describe(&format!("{name}/train_summary.json")).into(),
            source,
        })?;
        sink.event(
            name,
            Event::Finished { summary: &summary, model: &self.store.describe(&dir), reused: true },
        )?;
        Ok(Some((model, summary)))
    }

    /// Trains phase `kind` from `base` to its end (or reuses it when resuming, see [`Run::finished`]).
    pub async fn train(
        &self,
        kind: PhaseKind,
        base: &CausalLm,
        sink: &dyn RunSink,
    ) -> Result<(CausalLm, PhaseSummary)> {
        if let Some(done) = self.finished(kind, sink)? {
            return Ok(done);
        }
        let mut phase = Phase::begin(self, kind, base, sink)?;
        while !phase.is_done() {
            phase.advance(self, sink).await?;
        }
        phase.finish(self, sink).await
    }

    /// Answers `problems` with `model` under the evaluation settings, sampling from `seed`.
    pub async fn evaluate_on(&self, model: &CausalLm, problems: &[Problem], seed: u64) -> Result<EvalReport> {
        let c = &self.config;
        let report = evaluate(
            &model.valid(),
            &self.data.tokenizer,
            &self.data.eos,
            problems,
            &c.eval.rollout(&c.rl.rollout, seed),
        )
        .await?;
        if report.stats.responses != problems.len() {
            return Err(Error::invalid(
                "evaluation",
                format!("answered {} of {} problems", report.stats.responses, problems.len()),
            ));
        }
        Ok(report)
    }

    /// The held-out evaluation of the model of row `label`, kept as `{label}/eval.json` (a resumed
    /// run reuses it).
    pub async fn evaluate(&self, label: &str, model: &CausalLm, sink: &dyn RunSink) -> Result<EvalReport> {
        let path = format!("{label}/eval.json");
        if let Some(bytes) = self.store.read(&path)?.filter(|_| self.resume) {
            return serde_json::from_slice(&bytes)
                .map_err(|source| Error::Json { path: self.store.describe(&path).into(), source });
        }
        sink.event(label, Event::Evaluating { problems: self.data.held_out.len() })?;
        let report =
            self.evaluate_on(model, &self.data.held_out, self.config.seed ^ seeds::EVAL_SAMPLING).await?;
        self.store.write(&path, &serde_json::to_vec_pretty(&report).expect("reports serialise"))?;
        sink.event(label, Event::Evaluated(&report))?;
        Ok(report)
    }

    /// The starting point of the methods: the warm start's model after SFT, else the start, with
    /// its row.
    pub async fn base(&self, sink: &dyn RunSink) -> Result<(CausalLm, Outcome)> {
        let (model, seconds) = if self.has_sft() {
            let (model, summary) = self.train(PhaseKind::Sft, &self.start, sink).await?;
            (model, summary.train_seconds)
        } else {
            (self.start.clone(), 0.0)
        };
        let label = self.base_label();
        let report = self.evaluate(label, &model, sink).await?;
        Ok((model, Outcome { label: label.into(), report, early_exit_rate: None, train_seconds: seconds }))
    }

    /// Trains method phase `kind` from `base` and evaluates it.
    pub async fn method(&self, kind: PhaseKind, base: &CausalLm, sink: &dyn RunSink) -> Result<Outcome> {
        let (model, summary) = self.train(kind, base, sink).await?;
        let report = self.evaluate(kind.name(), &model, sink).await?;
        Ok(Outcome {
            label: kind.name().into(),
            report,
            early_exit_rate: Some(summary.early_exit_rate),
            train_seconds: summary.train_seconds,
        })
    }

    /// The whole run: the starting point's row, then every method's, trained `jobs` at a time,
    /// each on its own thread (a method's results depend only on its own seeded streams).
    #[cfg(not(target_family = "wasm"))]
    pub fn execute(&self, sink: &(dyn RunSink + Sync)) -> Result<Vec<Outcome>> {
        use std::sync::Mutex;
        use std::sync::atomic::{AtomicUsize, Ordering};

        let (base, first) = pollster::block_on(self.base(sink))?;
        let methods = &self.config.methods;
        let next = AtomicUsize::new(0);
        let rows: Mutex<Vec<Option<Result<Outcome>>>> = Mutex::new(methods.iter().map(|_| None).collect());
        std::thread::scope(|scope| {
            for _ in 0..self.config.jobs.min(methods.len()) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(&method) = methods.get(i) else { break };
                        let row = pollster::block_on(self.method(PhaseKind::Rl(method), &base, sink));
                        let failed = row.is_err();
                        rows.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(row);
                        if failed {
                            // Start no further methods; the ones running finish their own.
                            next.store(methods.len(), Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        let rows = rows.into_inner().unwrap_or_else(|p| p.into_inner());
        std::iter::once(Ok(first)).chain(rows.into_iter().flatten()).collect()
    }
}
