//! A model directory as transformers writes it: weights, config, tokenizer, generation config.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::error::{Result, read_json};
use crate::model::{self, CausalLm, Dtype, token_ids};
use crate::text::Tokenizer;

/// A loaded model directory.
#[derive(Debug)]
pub struct Pretrained {
    /// The network.
    pub model: CausalLm,
    /// Its tokenizer, when the directory has a `tokenizer.json`.
    pub tokenizer: Option<Tokenizer>,
    /// Ids that end generation: config.json, generation_config.json and the tokenizer's EOS.
    pub eos_token_ids: Vec<u32>,
    /// Where it was loaded from.
    pub dir: PathBuf,
}

impl Pretrained {
    /// Loads everything in `dir` onto `device`, the matrices in the checkpoint's dtype (see
    /// [`model::load`]).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        Self::load_as(dir, device, None)
    }

    /// [`Pretrained::load`] with the matrices kept in `dtype` (`None`: the checkpoint's).
    pub fn load_as(dir: &Path, device: &Device, dtype: Option<Dtype>) -> Result<Self> {
        let model = model::load_as(dir, device, dtype)?;
        let tokenizer =
            if dir.join("tokenizer.json").exists() { Some(Tokenizer::from_dir(dir)?) } else { None };
        let mut eos_token_ids = model.config.eos_token_ids.clone();
        let generation = dir.join("generation_config.json");
        if generation.exists() {
            let v: serde_json::Value = read_json(&generation)?;
            eos_token_ids.extend(v.get("eos_token_id").and_then(token_ids).unwrap_or_default());
        }
        if let Some(tok) = &tokenizer {
            eos_token_ids.extend_from_slice(tok.eos_token_ids());
        }
        eos_token_ids.sort_unstable();
        eos_token_ids.dedup();
        Ok(Pretrained { model, tokenizer, eos_token_ids, dir: dir.into() })
    }

    /// Writes the model in the Hugging Face layout to `dir` (weights and config atomically) and
    /// copies the tokenizer and generation files it was loaded with, so transformers opens it.
    pub async fn save(&self, dir: &Path) -> Result<()> {
        model::save(&self.model, dir).await?;
        for name in ["tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
            let from = self.dir.join(name);
            if from.exists() && from != dir.join(name) {
                let bytes = crate::error::read_file(&from)?;
                model::write_atomic(&dir.join(name), &bytes)?;
            }
        }
        Ok(())
    }
}
