//! stepgrpo core: a Step-GRPO trainer that runs on any burn device (wgpu or CPU).
//!
//! Data flows one way: prompts -> batched decoding with a key/value cache ([`decode`]) ->
//! responses cut into semantic steps -> graded and rewarded -> GRPO update of the [`model`].
// Every public item carries a doc line (clippy -D warnings makes this an error).
#![warn(missing_docs)]

pub mod data;
pub mod decode;
pub mod device;
pub mod error;
pub mod grade;
pub mod grpo;
pub mod logprobs;
pub mod model;
pub mod pretrained;
pub mod reward;
pub mod rng;
pub mod rollout;
pub mod steps;
pub mod task;
pub mod text;
pub mod train;

#[cfg(test)]
mod sum_order_tests;

pub use error::{Error, Result};
