//! Where a run's records and progress go: files and progress bars on the command line, messages
//! to the page in a browser. The run driver only ever talks to a [`RunSink`].

use serde::{Deserialize, Serialize};

use super::eval::EvalReport;
use crate::error::Result;

/// What a finished phase reports besides its model (`train_summary.json`, read back on resume).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseSummary {
    /// Share of training rollouts a probe ended, over the last 10 steps (0 for SFT).
    pub early_exit_rate: f64,
    /// Seconds the phase trained (in the process that finished it, when resumed).
    pub train_seconds: f64,
}

/// Something that happened in a phase (`sft` or a method's name) of a run.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// The phase starts at optimizer step `step` of `total`: past 0 when it resumed from the
    /// checkpoint `resumed_from`, and records of later steps written before are void.
    Started {
        /// Steps already done.
        step: usize,
        /// Steps the phase has.
        total: usize,
        /// The checkpoint it continues from.
        resumed_from: Option<&'a str>,
    },
    /// An optimizer step is done; `summary` is a one-line digest for a progress display.
    Stepped {
        /// Steps done.
        step: usize,
        /// e.g. `reward 0.52 acc 0.58 tokens 41 steps 1.9 exit 0.25`.
        summary: &'a str,
    },
    /// One metrics record: a line of the phase's `metrics.jsonl` (every `logging_steps` steps).
    Record(&'a serde_json::Value),
    /// A checkpoint was written.
    Saved {
        /// Its step.
        step: usize,
        /// Where it is.
        path: &'a str,
    },
    /// A held-out evaluation of `problems` problems starts.
    Evaluating {
        /// Problems it answers.
        problems: usize,
    },
    /// It finished.
    Evaluated(&'a EvalReport),
    /// The phase is over: trained now, or found finished when resuming (`reused`).
    Finished {
        /// What it reports.
        summary: &'a PhaseSummary,
        /// Where its model is.
        model: &'a str,
        /// Whether it had finished in an earlier run.
        reused: bool,
    },
    /// Something the user should know (e.g. how the held-out problems were chosen).
    Note(&'a str),
}

/// The receiver of a run's events. Takes `&self`: methods trained side by side share one sink
/// (a sink that is `Sync`).
pub trait RunSink {
    /// Handles one event of `phase`; an error (a full disk, say) stops the run.
    fn event(&self, phase: &str, event: Event<'_>) -> Result<()>;
}
