//! The decoder-only transformer (Qwen3 / Qwen2 / Llama), its key/value cache and HF checkpoints.

use burn::nn::Linear;
use burn::tensor::Tensor;

mod attention;
mod cache;
mod config;
mod hf;
mod init;
mod lora;
mod mlp;
mod peft;
mod precision;
mod rope;
mod transformer;
mod weights;

pub use attention::{Attention, AttentionContext, SCORES_PER_BLOCK};
pub use cache::KvCache;
pub(crate) use config::token_ids;
pub use config::{Architecture, INITIALIZER_RANGE, ModelConfig, RopeScaling};
pub use hf::{
    from_safetensors, hf_files, hf_files_untied, load, load_as, save, to_hf_safetensors, write_atomic,
};
pub use init::init;
pub use lora::{Lora, LoraConfig, PROJECTIONS, Projection};
pub use mlp::Mlp;
pub use peft::{
    ADAPTER_CONFIG, ADAPTER_WEIGHTS, adapter_files, load_adapter, load_adapter_bytes, parse_adapter_config,
};
pub use precision::{Dtype, storage_dtype};
pub use transformer::{CausalLm, DecoderLayer};
pub use weights::WeightFiles;

/// `layer` applied to [batch, time, in] as one [batch * time, in] product. Its weight, [in, out],
/// is a transposed view of the checkpoint's [out, in] rows (see `hf.rs`): the layout
/// `stepgrpo_shaders::matmul_nt` streams in place on the CPU for a few rows (decoding). Elsewhere,
/// and once an optimizer step has rewritten the weight as a plain [in, out], it is burn's matmul;
/// on the CPU one 2-D matmul is also faster than `Linear::forward` on [batch, time, in] (prefill of
/// 8 x 64 tokens: 1.35x).
pub(crate) fn linear(layer: &Linear, x: Tensor<3>) -> Tensor<3> {
    let [b, t, d] = x.dims();
    let y = stepgrpo_shaders::matmul_nt(x.reshape([b * t, d]), layer.weight.val().transpose());
    let y = match &layer.bias {
        Some(bias) => y + bias.val().unsqueeze(),
        None => y,
    };
    let [_, out] = y.dims();
    y.reshape([b, t, out])
}
