//! Grouped-query self-attention with optional Qwen3 q/k norms and Qwen2 biases.

use burn::module::Module;
use burn::nn::RmsNorm;
use burn::tensor::{Tensor, activation::softmax};

use super::cache::KvCache;
use super::lora::Projection;
use super::rope::apply_rope;

/// Additive mask value: finite so fully masked (padding) queries stay NaN-free.
pub(crate) const MASKED: f32 = -1e9;

/// Multi-head attention where `num_heads / num_kv_heads` query heads share each key/value head.
#[derive(Module, Debug)]
pub struct Attention {
    /// Query projection.
    pub q_proj: Projection,
    /// Key projection.
    pub k_proj: Projection,
    /// Value projection.
    pub v_proj: Projection,
    /// Output projection.
    pub o_proj: Projection,
    /// Per-head RMSNorm of queries (Qwen3).
    pub q_norm: Option<RmsNorm>,
    /// Per-head RMSNorm of keys (Qwen3).
    pub k_norm: Option<RmsNorm>,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
}

/// What every layer of one forward pass shares: rotary angles and the additive attention mask.
pub struct AttentionContext {
    /// cos of the rotary angles, [batch, 1, time, head_dim].
    pub cos: Tensor<4>,
    /// sin of the rotary angles, [batch, 1, time, head_dim].
    pub sin: Tensor<4>,
    /// Additive mask [batch or 1, 1, time, keys]: 0 where attending is allowed, large negative elsewhere.
    pub mask: Tensor<4>,
}

impl Attention {
    /// Attends over [batch, time, hidden]; with a cache, over the cached positions as well.
    pub fn forward(
        &self,
        x: Tensor<3>,
        ctx: &AttentionContext,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Tensor<3> {
        let [b, t, _] = x.dims();
        let (h, kvh, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let heads = |y: Tensor<3>, n: usize| y.reshape([b, t, n, d]).swap_dims(1, 2);
        let mut q = heads(self.q_proj.forward(x.clone()), h);
        let mut k = heads(self.k_proj.forward(x.clone()), kvh);
        let v = heads(self.v_proj.forward(x), kvh);
        if let (Some(qn), Some(kn)) = (&self.q_norm, &self.k_norm) {
            q = qn.forward(q);
            k = kn.forward(k);
        }
        let q = apply_rope(q, &ctx.cos, &ctx.sin);
        let k = apply_rope(k, &ctx.cos, &ctx.sin);
        let (k, v) = match cache {
            Some((cache, layer)) => cache.append(layer, k, v),
            None => (k, v),
        };
        let tk = k.dims()[2];
        // Query heads of one group ride along the time axis, so keys/values are never repeated.
        let group = h / kvh;
        let q = q.reshape([b, kvh, group * t, d]);
        let scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (d as f64).sqrt());
        let scores = scores.reshape([b, kvh, group, t, tk]) + ctx.mask.clone().unsqueeze_dim::<5>(1);
        let probs = softmax(scores, 4).reshape([b, kvh, group * t, tk]);
        let out = probs.matmul(v).reshape([b, h, t, d]).swap_dims(1, 2).reshape([b, t, h * d]);
        self.o_proj.forward(out)
    }
}
