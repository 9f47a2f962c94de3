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

/// Attention scores one block may hold, [batch, heads, queries, keys]: 2^24 (64 MiB in f32), so
/// a long sequence's attention is computed a block of queries at a time.
pub const SCORES_PER_BLOCK: usize = 1 << 24;

impl Attention {
    /// Queries [batch, heads, time, head_dim] and keys and values [batch, kv_heads, time, head_dim]
    /// of `x` [batch, time, hidden], normed (Qwen3) and rotated.
    pub fn qkv(&self, x: Tensor<3>, ctx: &AttentionContext) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
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
        (apply_rope(q, &ctx.cos, &ctx.sin), apply_rope(k, &ctx.cos, &ctx.sin), v)
    }

    /// Queries per block whose scores against `keys` keys stay within `scores` values.
    pub fn query_block(&self, batch: usize, keys: usize, scores: usize) -> usize {
        (scores / (batch * self.num_heads * keys).max(1)).max(1)
    }

    /// `softmax(q k^T / sqrt(d) + mask) v` for queries `q` [batch, heads, n, head_dim] against keys
    /// and values [batch, kv_heads, keys, head_dim], with the mask's rows of those queries
    /// [batch or 1, 1, n, keys]: [batch, heads, n, head_dim].
    pub fn attend(&self, q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, mask: Tensor<4>) -> Tensor<4> {
        let [b, h, n, d] = q.dims();
        let (kvh, tk) = (self.num_kv_heads, k.dims()[2]);
        // Query heads of one group ride along the time axis, so keys/values are never repeated.
        let group = h / kvh;
        let q = q.reshape([b, kvh, group * n, d]);
        let scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (d as f64).sqrt());
        let scores = scores.reshape([b, kvh, group, n, tk]) + mask.unsqueeze_dim::<5>(1);
        let probs = softmax(scores, 4).reshape([b, kvh, group * n, tk]);
        probs.matmul(v).reshape([b, h, n, d])
    }

    /// [`Attention::attend`] of every query, `block` queries at a time (each query's softmax is its
    /// own, so the blocks give the whole): no score tensor holds more than `block` queries.
    pub fn attend_blocks(
        &self,
        q: Tensor<4>,
        k: Tensor<4>,
        v: Tensor<4>,
        mask: Tensor<4>,
        block: usize,
    ) -> Tensor<4> {
        let t = q.dims()[2];
        if t <= block {
            return self.attend(q, k, v, mask);
        }
        let blocks = (0..t).step_by(block).map(|start| {
            let n = block.min(t - start);
            self.attend(q.clone().narrow(2, start, n), k.clone(), v.clone(), mask.clone().narrow(2, start, n))
        });
        Tensor::cat(blocks.collect(), 2)
    }

    /// The output projection of attention outputs [batch, heads, time, head_dim]: [batch, time, hidden].
    pub fn output(&self, out: Tensor<4>) -> Tensor<3> {
        let [b, h, t, d] = out.dims();
        self.o_proj.forward(out.swap_dims(1, 2).reshape([b, t, h * d]))
    }

    /// Attends over [batch, time, hidden]; with a cache, over the cached positions as well.
    pub fn forward(
        &self,
        x: Tensor<3>,
        ctx: &AttentionContext,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Tensor<3> {
        let b = x.dims()[0];
        let (q, k, v) = self.qkv(x, ctx);
        let (k, v) = match cache {
            Some((cache, layer)) => cache.append(layer, k, v),
            None => (k, v),
        };
        let block = self.query_block(b, k.dims()[2], SCORES_PER_BLOCK);
        self.output(self.attend_blocks(q, k, v, ctx.mask.clone(), block))
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, Tolerance};

    use crate::model::init;

    #[test]
    fn attention_in_blocks_of_queries_is_the_whole() {
        let device = Device::flex().autodiff();
        device.seed(3);
        let model = init(&crate::task::model_config(), &device);
        let attn = &model.layers[0].self_attn;
        let (b, t) = (2, 7);
        let x = burn::tensor::Tensor::<3>::random(
            [b, t, model.config.hidden_size],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let ctx = model.context(b, t, &device);
        let (q, k, v) = attn.qkv(x, &ctx);
        let leaf = |t: burn::tensor::Tensor<4>| burn::tensor::Tensor::from_inner(t.inner());
        let (k, v) = (leaf(k), leaf(v));
        let grads_of = |block: usize| {
            let q = leaf(q.clone()).require_grad();
            let out = attn.attend_blocks(q.clone(), k.clone(), v.clone(), ctx.mask.clone(), block);
            let g = (out.clone() * out.clone()).sum().backward();
            (out.inner().into_data(), q.grad(&g).unwrap().into_data())
        };
        let (whole, whole_grad) = grads_of(t);
        for block in [1, 3] {
            let (out, grad) = grads_of(block);
            out.assert_approx_eq::<f32>(&whole, Tolerance::absolute(1e-6));
            grad.assert_approx_eq::<f32>(&whole_grad, Tolerance::absolute(1e-5));
        }
    }
}
