//! The decoder-only transformer (Qwen3 / Qwen2 / Llama), its key/value cache and HF checkpoints.

mod attention;
mod cache;
mod config;
mod hf;
mod init;
mod mlp;
mod rope;
mod transformer;
mod weights;

pub use attention::Attention;
pub use cache::KvCache;
pub(crate) use config::token_ids;
pub use config::{Architecture, Dtype, ModelConfig, RopeScaling};
pub use hf::{from_safetensors, load, save, to_hf_safetensors, write_atomic};
pub use init::init;
pub use mlp::Mlp;
pub use transformer::{CausalLm, DecoderLayer};
pub use weights::WeightFiles;
