//! The model config, read from a Hugging Face `config.json`.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::precision::Dtype;
use crate::error::{Error, Result};

/// The decoder families this crate builds; they differ only in a few switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Architecture {
    /// `Qwen3ForCausalLM`: per-head RMSNorm on queries and keys, no biases.
    Qwen3,
    /// `Qwen2ForCausalLM`: biases on the q/k/v projections.
    Qwen2,
    /// `LlamaForCausalLM`: optional attention and MLP biases.
    Llama,
}

impl Architecture {
    /// The `architectures` entry transformers writes for this family.
    pub fn hf_name(self) -> &'static str {
        match self {
            Architecture::Qwen3 => "Qwen3ForCausalLM",
            Architecture::Qwen2 => "Qwen2ForCausalLM",
            Architecture::Llama => "LlamaForCausalLM",
        }
    }

    fn from_hf(architectures: Option<&str>, model_type: Option<&str>) -> Option<Self> {
        match (architectures, model_type) {
            (Some("Qwen3ForCausalLM"), _) | (None, Some("qwen3")) => Some(Architecture::Qwen3),
            (Some("Qwen2ForCausalLM"), _) | (None, Some("qwen2")) => Some(Architecture::Qwen2),
            (Some("LlamaForCausalLM" | "MistralForCausalLM"), _) | (None, Some("llama" | "mistral")) => {
                Some(Architecture::Llama)
            }
            _ => None,
        }
    }
}

/// Rotary-embedding frequency scaling (`rope_scaling` / `rope_parameters.rope_type`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum RopeScaling {
    /// Plain RoPE.
    Default,
    /// Positions divided by `factor`.
    Linear {
        /// Position interpolation factor.
        factor: f64,
    },
    /// Llama 3's frequency-dependent scaling.
    Llama3 {
        /// Overall scaling factor.
        factor: f64,
        /// Wavelengths above `original / low_freq_factor` are fully scaled.
        low_freq_factor: f64,
        /// Wavelengths below `original / high_freq_factor` are kept.
        high_freq_factor: f64,
        /// Context length the model was pre-trained with.
        original_max_position_embeddings: f64,
    },
}

/// Everything the transformer needs to know about its shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Which family of decoder this is.
    pub architecture: Architecture,
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the SwiGLU hidden layer.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Number of query heads.
    pub num_attention_heads: usize,
    /// Number of key/value heads (grouped-query attention when fewer than query heads).
    pub num_key_value_heads: usize,
    /// Width of one head; may differ from hidden_size / num_attention_heads.
    pub head_dim: usize,
    /// Epsilon of every RMSNorm.
    pub rms_norm_eps: f64,
    /// Base of the rotary frequencies.
    pub rope_theta: f64,
    /// Frequency scaling of the rotary embedding.
    pub rope_scaling: RopeScaling,
    /// Longest context the position tables are built for.
    pub max_position_embeddings: usize,
    /// Whether the output projection shares the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Biases on the q/k/v projections (Qwen2 always; Llama when `attention_bias`).
    pub qkv_bias: bool,
    /// Bias on the attention output projection (Llama's `attention_bias`).
    pub o_bias: bool,
    /// Biases on the MLP projections (Llama's `mlp_bias`).
    pub mlp_bias: bool,
    /// Per-head RMSNorm on queries and keys (Qwen3).
    pub qk_norm: bool,
    /// Token ids that end a sequence, from the config.
    pub eos_token_ids: Vec<u32>,
    /// The dtype the checkpoint was saved in.
    pub dtype: Dtype,
    /// Standard deviation of freshly initialised weights (`initializer_range`; 0.02 when absent).
    #[serde(default = "default_initializer_range")]
    pub initializer_range: f64,
}

/// HF's default `initializer_range`, GPT-2's.
pub const INITIALIZER_RANGE: f64 = 0.02;

fn default_initializer_range() -> f64 {
    INITIALIZER_RANGE
}

fn field<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| v.get(*k)).filter(|x| !x.is_null())
}

impl ModelConfig {
    /// Reads `config.json`, accepting both the newer `rope_parameters` form and the hub's top-level
    /// `rope_theta` / `rope_scaling`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let raw: Value = crate::error::read_json(path)?;
        Self::from_hf_json(&raw).map_err(|message| Error::Config { path: path.into(), message })
    }

    /// Builds the config from parsed `config.json` contents; the error names the key at fault.
    pub fn from_hf_json(raw: &Value) -> std::result::Result<Self, String> {
        let arch_name = raw.get("architectures").and_then(|a| a.get(0)).and_then(Value::as_str);
        let model_type = raw.get("model_type").and_then(Value::as_str);
        let architecture = Architecture::from_hf(arch_name, model_type).ok_or_else(|| {
            format!(
                "unknown architecture {:?} (model_type {:?}); supported: Qwen3ForCausalLM, \
                 Qwen2ForCausalLM, LlamaForCausalLM",
                arch_name.unwrap_or("<missing>"),
                model_type.unwrap_or("<missing>")
            )
        })?;
        let usize_key = |key: &str| -> std::result::Result<usize, String> {
            let v = raw.get(key).ok_or_else(|| format!("missing key `{key}`"))?;
            v.as_u64()
                .filter(|n| *n > 0)
                .map(|n| n as usize)
                .ok_or_else(|| format!("`{key}` must be a positive integer, found {v}"))
        };
        let opt_usize = |key: &str| -> std::result::Result<Option<usize>, String> {
            match field(raw, &[key]) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .filter(|n| *n > 0)
                    .map(|n| Some(n as usize))
                    .ok_or_else(|| format!("`{key}` must be a positive integer, found {v}")),
            }
        };
        let opt_bool = |key: &str, default: bool| -> std::result::Result<bool, String> {
            match field(raw, &[key]) {
                None => Ok(default),
                Some(v) => v.as_bool().ok_or_else(|| format!("`{key}` must be true or false, found {v}")),
            }
        };

        let hidden_size = usize_key("hidden_size")?;
        let num_attention_heads = usize_key("num_attention_heads")?;
        let num_key_value_heads = opt_usize("num_key_value_heads")?.unwrap_or(num_attention_heads);
        if num_attention_heads % num_key_value_heads != 0 {
            return Err(format!(
                "`num_attention_heads` ({num_attention_heads}) must be a multiple of \
                 `num_key_value_heads` ({num_key_value_heads})"
            ));
        }
        let head_dim = match opt_usize("head_dim")? {
            Some(d) => d,
            None if hidden_size % num_attention_heads == 0 => hidden_size / num_attention_heads,
            None => {
                return Err(format!(
                    "no `head_dim`, and `hidden_size` ({hidden_size}) is not divisible by \
                     `num_attention_heads` ({num_attention_heads})"
                ));
            }
        };
        if head_dim % 2 != 0 {
            return Err(format!("`head_dim` must be even for rotary embeddings, found {head_dim}"));
        }
        if let Some(act) = field(raw, &["hidden_act", "hidden_activation"]).and_then(Value::as_str)
            && act != "silu"
            && act != "swish"
        {
            return Err(format!("`hidden_act` {act:?} is not supported (only silu)"));
        }
        if opt_bool("use_sliding_window", false)? {
            return Err("`use_sliding_window: true` is not supported".into());
        }

        let rope = field(raw, &["rope_parameters"]);
        let rope_theta = rope
            .and_then(|r| r.get("rope_theta"))
            .or_else(|| field(raw, &["rope_theta"]))
            .map(|v| v.as_f64().ok_or_else(|| format!("`rope_theta` must be a number, found {v}")))
            .transpose()?
            .unwrap_or(10_000.0);
        let rope_scaling = parse_rope_scaling(rope.or_else(|| field(raw, &["rope_scaling"])))?;

        let attention_bias = opt_bool("attention_bias", false)?;
        let (qkv_bias, o_bias, mlp_bias, qk_norm) = match architecture {
            Architecture::Qwen3 => (attention_bias, attention_bias, false, true),
            Architecture::Qwen2 => (true, false, false, false),
            Architecture::Llama => (attention_bias, attention_bias, opt_bool("mlp_bias", false)?, false),
        };
        let eos_token_ids = match field(raw, &["eos_token_id"]) {
            None => Vec::new(),
            Some(v) => token_ids(v)
                .ok_or_else(|| format!("`eos_token_id` must be a token id or a list of them, found {v}"))?,
        };

        let dtype = match field(raw, &["dtype", "torch_dtype"]).and_then(Value::as_str) {
            None => Dtype::F32,
            Some(name) => Dtype::from_hf(name)
                .ok_or_else(|| format!("`dtype` {name:?} is not supported (float32, bfloat16, float16)"))?,
        };
        Ok(ModelConfig {
            dtype,
            architecture,
            vocab_size: usize_key("vocab_size")?,
            hidden_size,
            intermediate_size: usize_key("intermediate_size")?,
            num_hidden_layers: usize_key("num_hidden_layers")?,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            rms_norm_eps: field(raw, &["rms_norm_eps"]).and_then(Value::as_f64).unwrap_or(1e-6),
            rope_theta,
            rope_scaling,
            max_position_embeddings: opt_usize("max_position_embeddings")?.unwrap_or(4096),
            tie_word_embeddings: opt_bool("tie_word_embeddings", false)?,
            qkv_bias,
            o_bias,
            mlp_bias,
            qk_norm,
            eos_token_ids,
            initializer_range: match field(raw, &["initializer_range"]) {
                None => default_initializer_range(),
                Some(v) => v
                    .as_f64()
                    .filter(|x| *x > 0.0 && x.is_finite())
                    .ok_or_else(|| format!("`initializer_range` must be a positive number, found {v}"))?,
            },
        })
    }

    /// The `config.json` contents transformers expects for this config, with the dtype the
    /// weights are saved in.
    pub fn to_hf_json(&self) -> Value {
        let model_type = match self.architecture {
            Architecture::Qwen3 => "qwen3",
            Architecture::Qwen2 => "qwen2",
            Architecture::Llama => "llama",
        };
        let rope_parameters = match self.rope_scaling {
            RopeScaling::Default => {
                serde_json::json!({"rope_type": "default", "rope_theta": self.rope_theta})
            }
            RopeScaling::Linear { factor } => {
                serde_json::json!({"rope_type": "linear", "factor": factor, "rope_theta": self.rope_theta})
            }
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => {
                serde_json::json!({
                    "rope_type": "llama3", "factor": factor, "low_freq_factor": low_freq_factor,
                    "high_freq_factor": high_freq_factor,
                    "original_max_position_embeddings": original_max_position_embeddings,
                    "rope_theta": self.rope_theta,
                })
            }
        };
        let mut v = serde_json::json!({
            "architectures": [self.architecture.hf_name()],
            "model_type": model_type,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "rms_norm_eps": self.rms_norm_eps,
            "initializer_range": self.initializer_range,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "rope_theta": self.rope_theta,
            "rope_parameters": rope_parameters,
            "torch_dtype": self.dtype.hf_name(),
            "dtype": self.dtype.hf_name(),
            "use_cache": true,
        });
        if self.architecture != Architecture::Qwen2 {
            v["attention_bias"] = self.qkv_bias.into();
        }
        if self.architecture == Architecture::Llama {
            v["mlp_bias"] = self.mlp_bias.into();
        }
        if self.architecture == Architecture::Llama {
            v["rope_scaling"] = match self.rope_scaling {
                RopeScaling::Default => Value::Null,
                _ => v["rope_parameters"].clone(),
            };
        }
        match self.eos_token_ids.as_slice() {
            [] => {}
            [one] => v["eos_token_id"] = (*one).into(),
            many => v["eos_token_id"] = many.into(),
        }
        v
    }
}

/// Token ids given as one integer or a list of integers (`eos_token_id` in HF configs); `None`
/// when any is not an integer in u32's range (rather than truncating it to another id).
pub(crate) fn token_ids(v: &Value) -> Option<Vec<u32>> {
    let id = |x: &Value| x.as_u64().and_then(|x| u32::try_from(x).ok());
    match v {
        Value::Array(a) => a.iter().map(id).collect(),
        v => id(v).map(|x| vec![x]),
    }
}

fn parse_rope_scaling(v: Option<&Value>) -> std::result::Result<RopeScaling, String> {
    let Some(v) = v else { return Ok(RopeScaling::Default) };
    let kind = v.get("rope_type").or_else(|| v.get("type")).and_then(Value::as_str).unwrap_or("default");
    let num = |key: &str| -> std::result::Result<f64, String> {
        v.get(key)
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("rope scaling `{kind}` needs a numeric `{key}`"))
    };
    match kind {
        "default" => Ok(RopeScaling::Default),
        "linear" => Ok(RopeScaling::Linear { factor: num("factor")? }),
        "llama3" => Ok(RopeScaling::Llama3 {
            factor: num("factor")?,
            low_freq_factor: num("low_freq_factor")?,
            high_freq_factor: num("high_freq_factor")?,
            original_max_position_embeddings: num("original_max_position_embeddings")?,
        }),
        other => Err(format!("rope scaling type {other:?} is not supported (default, linear, llama3)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Value {
        serde_json::json!({
            "architectures": ["Qwen3ForCausalLM"], "vocab_size": 10, "hidden_size": 8,
            "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
            "num_key_value_heads": 1,
        })
    }

    #[test]
    fn reads_hub_style_rope_theta_and_defaults() {
        let mut v = base();
        v["rope_theta"] = 500000.0.into();
        let c = ModelConfig::from_hf_json(&v).unwrap();
        assert_eq!(c.rope_theta, 500000.0);
        assert_eq!(c.head_dim, 4);
        assert!(c.qk_norm);
        assert!(!c.tie_word_embeddings);
        assert_eq!(c.initializer_range, 0.02);
    }

    #[test]
    fn rope_parameters_win_and_roundtrip() {
        let mut v = base();
        v["rope_parameters"] = serde_json::json!({"rope_theta": 1e6, "rope_type": "default"});
        v["head_dim"] = 6.into();
        v["torch_dtype"] = "bfloat16".into();
        v["initializer_range"] = 0.08.into();
        let c = ModelConfig::from_hf_json(&v).unwrap();
        assert_eq!(c.rope_theta, 1e6);
        assert_eq!(c.initializer_range, 0.08);
        assert_eq!(c.head_dim, 6);
        assert_eq!(c.dtype, Dtype::BF16);
        // The dtype is written back as it came: a bf16 model is saved as bf16.
        assert_eq!(ModelConfig::from_hf_json(&c.to_hf_json()).unwrap(), c);
    }

    #[test]
    fn errors_name_the_key() {
        let mut v = base();
        v["architectures"] = serde_json::json!(["GPT2LMHeadModel"]);
        v["model_type"] = "gpt2".into();
        assert!(ModelConfig::from_hf_json(&v).unwrap_err().contains("GPT2LMHeadModel"));
        let mut v = base();
        v["num_key_value_heads"] = 3.into();
        assert!(ModelConfig::from_hf_json(&v).unwrap_err().contains("num_key_value_heads"));
        let mut v = base();
        v.as_object_mut().unwrap().remove("vocab_size");
        assert!(ModelConfig::from_hf_json(&v).unwrap_err().contains("vocab_size"));
        let mut v = base();
        v["initializer_range"] = (-0.5).into();
        assert!(ModelConfig::from_hf_json(&v).unwrap_err().contains("initializer_range"));
    }

    #[test]
    fn regression_eos_ids_past_u32_are_an_error_not_another_id() {
        let mut v = base();
        v["eos_token_id"] = serde_json::json!([2, 4_294_967_298u64]);
        let err = ModelConfig::from_hf_json(&v).unwrap_err();
        assert!(err.contains("eos_token_id") && err.contains("4294967298"), "{err}");
        v["eos_token_id"] = serde_json::json!([2, 3]);
        assert_eq!(ModelConfig::from_hf_json(&v).unwrap().eos_token_ids, [2, 3]);
    }
}
