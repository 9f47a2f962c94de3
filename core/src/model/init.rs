//! A freshly initialised model (the built-in task trains one from scratch).

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::{EmbeddingConfig, Initializer, LinearConfig, RmsNormConfig};
use burn::tensor::{Device, Tensor};

use super::attention::Attention;
use super::config::ModelConfig;
use super::mlp::Mlp;
use super::transformer::{CausalLm, DecoderLayer};

/// A model with GPT-2-style initialisation: normal(0, `initializer_range`) weights, output
/// projections scaled down by the depth so the residual stream starts small. Seed the device for
/// reproducibility.
pub fn init(config: &ModelConfig, device: &Device) -> CausalLm {
    let std = config.initializer_range;
    let out_std = std / (2.0 * config.num_hidden_layers as f64).sqrt();
    let linear = |d_in: usize, d_out: usize, bias: bool, std: f64| {
        let mut l = LinearConfig::new(d_in, d_out)
            .with_bias(bias)
            .with_initializer(Initializer::Normal { mean: 0.0, std })
            .init(device);
        if let Some(b) = l.bias.take() {
            l.bias = Some(Param::from_tensor(b.val().zeros_like()));
        }
        l
    };
    let norm = |n: usize| RmsNormConfig::new(n).with_epsilon(config.rms_norm_eps).init(device);
    let (h, hd) = (config.hidden_size, config.head_dim);
    let (q_out, kv_out) = (config.num_attention_heads * hd, config.num_key_value_heads * hd);
    let layers = (0..config.num_hidden_layers)
        .map(|_| DecoderLayer {
            input_layernorm: norm(h),
            self_attn: Attention {
                q_proj: linear(h, q_out, config.qkv_bias, std).into(),
                k_proj: linear(h, kv_out, config.qkv_bias, std).into(),
                v_proj: linear(h, kv_out, config.qkv_bias, std).into(),
                o_proj: linear(q_out, h, config.o_bias, out_std).into(),
                q_norm: config.qk_norm.then(|| norm(hd)),
                k_norm: config.qk_norm.then(|| norm(hd)),
                num_heads: config.num_attention_heads,
                num_kv_heads: config.num_key_value_heads,
                head_dim: hd,
            },
            post_attention_layernorm: norm(h),
            mlp: Mlp {
                gate_proj: linear(h, config.intermediate_size, config.mlp_bias, std).into(),
                up_proj: linear(h, config.intermediate_size, config.mlp_bias, std).into(),
                down_proj: linear(config.intermediate_size, h, config.mlp_bias, out_std).into(),
            },
        })
        .collect();
    let embed_tokens = EmbeddingConfig::new(config.vocab_size, h)
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device);
    let lm_head = (!config.tie_word_embeddings).then(|| linear(h, config.vocab_size, false, std));
    let model = CausalLm::from_parts(config.clone(), embed_tokens, layers, norm(h), lm_head);
    // burn draws a parameter at its first use, on the device it then has: drawn here, the seed
    // alone decides the weights, and the model moves to another device as drawn.
    model.visit(&mut Draw);
    model
}

/// Draws every lazily initialised parameter.
struct Draw;

impl ModuleVisitor for Draw {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        param.val();
    }
}
