//! The decoder-only transformer: embedding, decoder layers, final norm, language-model head.

use burn::module::Module;
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use stepgrpo_shaders::matmul_nt;

use super::attention::{Attention, AttentionContext, MASKED};
use super::cache::KvCache;
use super::config::ModelConfig;
use super::linear;
use super::lora::Projection;
use super::mlp::Mlp;
use super::rope::Rope;

/// One pre-norm decoder layer.
#[derive(Module, Debug)]
pub struct DecoderLayer {
    /// Norm before attention.
    pub input_layernorm: RmsNorm,
    /// Self-attention.
    pub self_attn: Attention,
    /// Norm before the MLP.
    pub post_attention_layernorm: RmsNorm,
    /// Feed-forward block.
    pub mlp: Mlp,
}

impl DecoderLayer {
    /// The layer's projections under their Hugging Face names (`self_attn.q_proj` ...), in the
    /// order of [`super::lora::PROJECTIONS`].
    pub fn projections(&self) -> [(&'static str, &Projection); 7] {
        let (a, m) = (&self.self_attn, &self.mlp);
        [
            ("self_attn.q_proj", &a.q_proj),
            ("self_attn.k_proj", &a.k_proj),
            ("self_attn.v_proj", &a.v_proj),
            ("self_attn.o_proj", &a.o_proj),
            ("mlp.gate_proj", &m.gate_proj),
            ("mlp.up_proj", &m.up_proj),
            ("mlp.down_proj", &m.down_proj),
        ]
    }

    /// [`DecoderLayer::projections`], mutably.
    pub fn projections_mut(&mut self) -> [(&'static str, &mut Projection); 7] {
        let (a, m) = (&mut self.self_attn, &mut self.mlp);
        [
            ("self_attn.q_proj", &mut a.q_proj),
            ("self_attn.k_proj", &mut a.k_proj),
            ("self_attn.v_proj", &mut a.v_proj),
            ("self_attn.o_proj", &mut a.o_proj),
            ("mlp.gate_proj", &mut m.gate_proj),
            ("mlp.up_proj", &mut m.up_proj),
            ("mlp.down_proj", &mut m.down_proj),
        ]
    }

    fn forward(
        &self,
        x: Tensor<3>,
        ctx: &AttentionContext,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Tensor<3> {
        let x = x.clone() + self.self_attn.forward(self.input_layernorm.forward(x), ctx, cache);
        x.clone() + self.mlp.forward(self.post_attention_layernorm.forward(x))
    }
}

/// A causal language model (Qwen3, Qwen2 or Llama family).
#[derive(Module, Debug)]
pub struct CausalLm {
    /// Token embedding [vocab, hidden].
    pub embed_tokens: Embedding,
    /// Decoder layers.
    pub layers: Vec<DecoderLayer>,
    /// Final norm.
    pub norm: RmsNorm,
    /// Output projection; `None` when tied to the embedding.
    pub lm_head: Option<Linear>,
    /// Shape and family of the model.
    #[module(skip)]
    pub config: ModelConfig,
    #[module(skip)]
    rope: Rope,
}

impl CausalLm {
    /// Assembles a model from its parts (see [`super::load`] and [`super::init`]).
    pub fn from_parts(
        config: ModelConfig,
        embed_tokens: Embedding,
        layers: Vec<DecoderLayer>,
        norm: RmsNorm,
        lm_head: Option<Linear>,
    ) -> Self {
        let rope = Rope::new(&config);
        CausalLm { embed_tokens, layers, norm, lm_head, config, rope }
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.embed_tokens.weight.val().device()
    }

    /// The embeddings of `ids` [batch, time], in f32 whatever dtype the table is kept in.
    pub fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        self.embed_tokens.forward(ids).cast(DType::F32)
    }

    /// Logits [batch, time, vocab] from final hidden states (see [`CausalLm::hidden`]). The tied
    /// weight is the [vocab, hidden] embedding, the layout `stepgrpo_shaders::matmul_nt` streams in
    /// place on the CPU when decoding (a few rows); an untied head goes through `linear` like
    /// every other projection.
    pub fn head(&self, h: Tensor<3>) -> Tensor<3> {
        match &self.lm_head {
            Some(head) => linear(head, h),
            None => {
                let [b, t, hidden] = h.dims();
                let w = self.embed_tokens.weight.val();
                matmul_nt(h.reshape([b * t, hidden]), w).reshape([b, t, self.config.vocab_size])
            }
        }
    }

    /// Logits [batch, time, vocab] for whole sequences (training and scoring): causal attention,
    /// positions from 0, no cache. Right padding needs no mask: padded positions come last.
    pub fn forward(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        self.head(self.hidden(ids))
    }

    /// The final (normed) hidden states [batch, time, hidden] of whole sequences, which
    /// [`CausalLm::head`] turns into logits: a caller can take the logits of a few positions at a
    /// time instead of all at once.
    pub fn hidden(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let [b, t] = ids.dims();
        let ctx = self.context(b, t, &ids.device());
        let mut x = self.embed(ids);
        for layer in &self.layers {
            x = layer.forward(x, &ctx, None);
        }
        self.norm.forward(x)
    }

    /// Rotary angles and causal mask of whole sequences [batch, time] from position 0.
    pub fn context(&self, b: usize, t: usize, device: &Device) -> AttentionContext {
        let positions = vec![(0..t).collect::<Vec<_>>(); b];
        let (cos, sin) = self.rope.cos_sin(&positions, device);
        AttentionContext { cos, sin, mask: causal_mask(t, device) }
    }

    /// Decoder layer `i` on [batch, time, hidden] without a cache: with [`CausalLm::context`],
    /// the pieces [`CausalLm::hidden`] is made of, for recomputing one layer at a time.
    pub fn layer_forward(&self, i: usize, x: Tensor<3>, ctx: &AttentionContext) -> Tensor<3> {
        self.layers[i].forward(x, ctx, None)
    }

    /// Feeds `ids` [batch, new] after what `cache` holds and returns the logits of the last new
    /// position, [batch, vocab]. Each row continues at its own position (see [`KvCache`]).
    pub fn forward_cached(&self, ids: Tensor<2, Int>, cache: &mut KvCache) -> Tensor<2> {
        let [b, t] = ids.dims();
        let device = ids.device();
        let (positions, mask) = cache.reserve(t, &device);
        let (cos, sin) = self.rope.cos_sin(&positions, &device);
        let ctx = AttentionContext { cos, sin, mask };
        let mut x = self.embed(ids);
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x, &ctx, Some((cache, i)));
        }
        let last = x.narrow(1, t - 1, 1);
        self.head(self.norm.forward(last)).reshape([b, self.config.vocab_size])
    }
}

/// Additive causal mask [1, 1, t, t]: query `i` sees keys `0..=i`. Every query sees itself, so on
/// the CPU the masked scores can be -inf: the softmax's exp gives 0 for them either way, but glibc's
/// `expf` answers -inf at once and takes a slow path (errno and all) for each finite underflow,
/// which was a seventh of an SFT step. Elsewhere a shader's exp may not honour infinities.
fn causal_mask(t: usize, device: &Device) -> Tensor<4> {
    let masked = if crate::device::is_cpu(device) { f32::NEG_INFINITY } else { MASKED };
    let m: Vec<f32> = (0..t).flat_map(|i| (0..t).map(move |j| if j > i { masked } else { 0.0 })).collect();
    Tensor::from_data(TensorData::new(m, [1, 1, t, t]), device)
}
