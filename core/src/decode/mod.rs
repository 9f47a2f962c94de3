//! Batched autoregressive decoding with a key/value cache.

mod generate;
mod sampler;

pub(crate) use generate::check_context;
pub use generate::{FinishReason, GenerateConfig, Generation, feed, generate, prefill, read_rows};
pub use sampler::{Draws, SamplingConfig, draw, uniform};
