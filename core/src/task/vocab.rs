//! The built-in task's tokenizer (a real `tokenizers` tokenizer, so every path is the one HF models
//! take) and its tiny Qwen3-architecture model.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::model::{Architecture, Dtype, ModelConfig, RopeScaling};
use crate::text::Tokenizer;

/// End of sequence (also the padding token).
pub const EOS: &str = "<|endoftext|>";

/// The vocabulary: special tokens, the markers of the reasoning format, and one token per symbol.
const VOCAB: [&str; 24] = [
    EOS, "<unk>", "<think>", "</think>", "\\boxed{", "}", "Wait", ",", " ", "\n", "=", "?", "+", "-", "0",
    "1", "2", "3", "4", "5", "6", "7", "8", "9",
];

/// Splits text into the vocabulary's pieces: markers whole, everything else one character each.
const SPLIT: &str = r"\\boxed\{|</?think>|Wait|<\|endoftext\|>|\s|.";

fn tokenizer_json() -> serde_json::Value {
    let vocab: serde_json::Map<String, serde_json::Value> =
        VOCAB.iter().enumerate().map(|(i, t)| (t.to_string(), json!(i))).collect();
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [{
            "id": 0, "content": EOS, "single_word": false, "lstrip": false, "rstrip": false,
            "normalized": false, "special": true
        }],
        "normalizer": null,
        "pre_tokenizer": {
            "type": "Split", "pattern": { "Regex": SPLIT }, "behavior": "Isolated", "invert": false
        },
        "post_processor": null,
        "decoder": { "type": "Fuse" },
        "model": { "type": "WordLevel", "vocab": vocab, "unk_token": "<unk>" }
    })
}

/// The files a model directory of the task carries besides weights and config.
pub fn tokenizer_files() -> Vec<(String, Vec<u8>)> {
    // transformers (and vLLM through it) would take a qwen3 model's tokenizer for Qwen2's
    // byte-level one and drop tokens; the class says it is this tokenizer.json as it is.
    let config = json!({
        "eos_token": EOS,
        "pad_token": EOS,
        "model_max_length": 512,
        "tokenizer_class": "PreTrainedTokenizerFast",
    });
    let generation = json!({ "eos_token_id": 0, "pad_token_id": 0 });
    [
        ("tokenizer.json", tokenizer_json()),
        ("tokenizer_config.json", config),
        ("generation_config.json", generation),
    ]
    .into_iter()
    .map(|(name, v)| (name.to_string(), serde_json::to_vec_pretty(&v).expect("JSON values serialise")))
    .collect()
}

/// The task's tokenizer, with `<|endoftext|>` as its end of sequence.
pub fn tokenizer() -> Tokenizer {
    let bytes = serde_json::to_vec(&tokenizer_json()).expect("JSON values serialise");
    let inner = tokenizers::Tokenizer::from_bytes(bytes).expect("the built-in tokenizer is valid");
    Tokenizer::from_inner(inner, vec![0])
}

/// The shape of the task's tiny Qwen3 (`[task.model]`); the rest of its configuration is fixed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TinyModel {
    /// Width of the residual stream. Default 128.
    pub hidden_size: usize,
    /// Width of the MLP. Default 384.
    pub intermediate_size: usize,
    /// Decoder layers. Default 4.
    pub num_hidden_layers: usize,
    /// Query heads. Default 4.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention). Default 2.
    pub num_key_value_heads: usize,
    /// Width of one head. Default 32.
    pub head_dim: usize,
    /// Standard deviation of the initial weights (HF's `initializer_range`). Default 0.02.
    pub initializer_range: f64,
}

impl Default for TinyModel {
    fn default() -> Self {
        TinyModel {
            hidden_size: 128,
            intermediate_size: 384,
            num_hidden_layers: 4,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            head_dim: 32,
            initializer_range: crate::model::INITIALIZER_RANGE,
        }
    }
}

impl TinyModel {
    /// The model's configuration: a Qwen3 of this shape over the task's vocabulary.
    pub fn config(&self) -> ModelConfig {
        ModelConfig {
            architecture: Architecture::Qwen3,
            vocab_size: VOCAB.len(),
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: self.num_key_value_heads,
            head_dim: self.head_dim,
            rms_norm_eps: 1e-6,
            rope_theta: 10_000.0,
            rope_scaling: RopeScaling::Default,
            max_position_embeddings: 512,
            tie_word_embeddings: true,
            qkv_bias: false,
            o_bias: false,
            mlp_bias: false,
            qk_norm: true,
            eos_token_ids: vec![0],
            dtype: Dtype::F32,
            initializer_range: self.initializer_range,
        }
    }

    /// Checks the shape, naming the knob at fault.
    pub fn validate(&self) -> crate::error::Result<()> {
        let bad =
            |name: &str, why: &str| Err(crate::error::Error::invalid(format!("task.model.{name}"), why));
        for (name, v) in [
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("head_dim", self.head_dim),
        ] {
            if v == 0 || v > 16_384 {
                return bad(name, "must be in 1..=16384");
            }
        }
        if !self.num_attention_heads.is_multiple_of(self.num_key_value_heads) {
            return bad("num_key_value_heads", "must divide num_attention_heads");
        }
        if !(self.initializer_range > 0.0 && self.initializer_range <= 1.0) {
            return bad("initializer_range", "must be in (0, 1]");
        }
        if !self.head_dim.is_multiple_of(2) {
            return bad("head_dim", "must be even (rotary embeddings)");
        }
        Ok(())
    }
}

/// The tiny Qwen3 of the default shape (4 layers, width 128, 0.8 M parameters), sized for a laptop
/// CPU or a browser tab.
pub fn model_config() -> ModelConfig {
    TinyModel::default().config()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_markers_whole() {
        let tok = tokenizer();
        let text = "12+7=?\n<think>\n12+7=19\nWait, 19-7=12\n</think>\n\n\\boxed{19}<|endoftext|>";
        let ids = tok.encode(text).unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), text);
        assert!(!ids.contains(&1), "no unknown pieces: {ids:?}");
        for marker in ["<think>", "</think>", "\\boxed{", "Wait", EOS] {
            assert_eq!(tok.encode(marker).unwrap().len(), 1, "{marker}");
        }
        assert_eq!(tok.id_limit(), VOCAB.len());
        assert_eq!(tok.eos_token_ids(), &[0]);
    }

    #[test]
    fn the_files_load_as_a_model_directory_tokenizer() {
        let dir = std::env::temp_dir().join(format!("stepgrpo-task-tok-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in tokenizer_files() {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        let tok = Tokenizer::from_dir(&dir).unwrap();
        assert_eq!(tok.eos_token_ids(), &[0]);
        assert_eq!(tok.encode("Wait, 3").unwrap(), tokenizer().encode("Wait, 3").unwrap());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
