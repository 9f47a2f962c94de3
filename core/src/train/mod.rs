//! Training: the run driver and its phases (the supervised warm start, RL with Step-GRPO or a
//! baseline), evaluation, checkpoints, and where records and files go.
//!
//! Each trainer advances one optimizer step per `step().await`, and a [`Phase`] adds the run's
//! cadence around it, so the command line drives a [`Run`] on threads and the browser from a
//! worker, with the same code.

mod batch;
pub mod checkpoint;
mod config;
mod eval;
mod generation;
mod guard;
mod method;
mod metrics;
mod optim;
mod phase;
mod problems;
pub mod recipe;
mod recompute;
mod renamed;
mod rl;
mod run;
pub mod seeds;
mod setup;
mod sft;
mod sink;
mod store;
mod update;

pub use batch::{Sequence, TokenBatch, gradient_shards, length_buckets, nll_gradients, token_log_probs};
pub use config::{EvalConfig, RlConfig, SftConfig, TrainConfig};
pub use eval::{EvalReport, Sample, evaluate, evaluate_with};
pub use generation::{Generation, Groups};
pub use guard::{Fault, NanGuard};
pub use method::{Method, RewardConfig};
pub use metrics::{RlMetrics, RolloutStats, group_spread};
pub use optim::{OptimConfig, Optimizer, Schedule};
pub use phase::{Phase, PhaseKind, PhaseStep};
pub use problems::ProblemSet;
pub use recipe::{builtin as builtin_recipe, recipe};
pub use rl::{RlStep, RlTrainer, ScoredRollout};
pub use run::{Outcome, Run};
pub use setup::{RunData, prepare};
pub use sft::{SftMetrics, SftTrainer};
pub use sink::{Event, PhaseSummary, RunSink};
pub use store::{DirStore, MemoryStore, Store};
