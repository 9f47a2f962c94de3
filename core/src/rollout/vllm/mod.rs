//! Rollouts on running vLLM servers: the Dynamic Truncated Rollout over vLLM's HTTP API, with the
//! policy's weights reloaded into the servers after every optimizer step. The servers are the
//! user's (`vllm serve ...`, see docs/vllm.md); the configuration is always available, the engine
//! only with the `vllm` feature (native builds; a browser has no server to talk to).

mod config;

pub use config::{RolloutEngineKind, VllmConfig};

#[cfg(feature = "vllm")]
mod client;
#[cfg(feature = "vllm")]
mod engine;
#[cfg(all(test, feature = "vllm"))]
mod faults;
#[cfg(feature = "vllm")]
mod remote_row;

#[cfg(feature = "vllm")]
pub use engine::VllmEngine;
