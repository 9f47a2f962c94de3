//! Training: the supervised warm start, RL with Step-GRPO or a baseline, evaluation, checkpoints.
//!
//! Each phase is a trainer that advances one optimizer step per `step().await`, so the command line
//! drives it with a progress bar and the browser from a worker, with the same code.

mod batch;
pub mod checkpoint;
mod config;
mod eval;
mod method;
mod metrics;
mod optim;
mod problems;
mod rl;
mod sft;

pub use batch::{Sequence, TokenBatch, gradient_shards, nll_gradients, token_log_probs};
pub use config::{EvalConfig, OptimConfig, RlConfig, Schedule, SftConfig, TrainConfig};
pub use eval::{EvalReport, Sample, evaluate};
pub use method::{Method, RewardConfig};
pub use metrics::{RlMetrics, RolloutStats, group_spread};
pub use optim::Optimizer;
pub use problems::ProblemSet;
pub use rl::{RlStep, RlTrainer, ScoredRollout};
pub use sft::{SftMetrics, SftTrainer};
