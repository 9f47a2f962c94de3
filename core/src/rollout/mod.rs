//! Generating training rollouts: G responses per prompt, batched across every row, optionally with
//! the Dynamic Truncated Rollout of spec section 2 (probe at each trigger word, exit when confident).
//! The same loop run at evaluation time is the DEER inference-time baseline; with probes off it is
//! plain sampling. The trainer reaches an engine through [`RolloutSource`].

mod config;
mod engine;
mod probe;
mod row;
mod source;
pub mod vllm;

pub use config::{RolloutConfig, TruncationConfig};
pub use engine::rollout;
pub use probe::{ExitType, ProbeRecord, close_text, confidence};
pub use row::Rollout;
pub use source::{
    LocalEngine, LocalFuture, RolloutRequest, RolloutSource, cache_bytes_per_row, prompts_per_slice,
};
