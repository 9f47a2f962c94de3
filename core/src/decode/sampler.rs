//! Choosing the next token from logits, on the device: greedy, temperature, top-k, top-p.

use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};
use stepgrpo_shaders::SamplingParams;

use super::generate::read_rows;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// How the next token is chosen. `temperature == 0` means greedy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingConfig {
    /// Softmax temperature; 0 picks the most likely token (greedy).
    pub temperature: f32,
    /// Keep only the tokens at least as likely as the k-th most likely (0 = all).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches top_p (1.0 = all).
    pub top_p: f32,
    /// Seed of the per-row random streams.
    pub seed: u64,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig { temperature: 1.0, top_k: 0, top_p: 1.0, seed: 0 }
    }
}

impl SamplingConfig {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        SamplingConfig { temperature: 0.0, ..Default::default() }
    }

    /// Whether this config always picks the most likely token.
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0 || self.top_k == 1
    }

    /// Checks the ranges of every knob.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(Error::invalid("temperature", format!("{} must be >= 0", self.temperature)));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(Error::invalid("top_p", format!("{} must be in (0, 1]", self.top_p)));
        }
        Ok(())
    }

    /// The kernel's parameters, drawing only ids below `vocab_limit` (see [`draw`]).
    fn params(&self, vocab_limit: Option<usize>) -> SamplingParams {
        SamplingParams { temperature: self.temperature, top_k: self.top_k, top_p: self.top_p, vocab_limit }
    }
}

/// What leaves the device each decoding step: one id and its log-prob per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Draws {
    /// The chosen id of each row.
    pub ids: Vec<u32>,
    /// Its log-probability under the model (before temperature and filtering).
    pub log_probs: Vec<f32>,
}

/// The random number a row draws with: from its own stream, or -1 (greedy) under a greedy config.
pub fn uniform(config: &SamplingConfig, rng: &mut Rng) -> f32 {
    if config.is_greedy() {
        return -1.0;
    }
    // Rounding up to 1.0 is harmless: the sampler then takes the last kept token.
    rng.uniform() as f32
}

/// Draws the next token of every row of `logits` [rows, vocab] on the device (a WGSL kernel on
/// wgpu): `uniforms[r]` is row r's random number, negative for greedy. Ids at or past
/// `vocab_limit` (the tokenizer's [`id_limit`](crate::text::Tokenizer::id_limit), when the
/// embedding has padding rows) are never drawn. Only ids and log-probs are read back,
/// asynchronously (safe in browsers).
pub async fn draw(
    logits: Tensor<2>,
    uniforms: Vec<f32>,
    config: &SamplingConfig,
    vocab_limit: Option<usize>,
) -> Result<Draws> {
    let rows = uniforms.len();
    let u = Tensor::<1>::from_data(TensorData::new(uniforms, [rows]), &logits.device());
    let drawn = stepgrpo_shaders::sample(logits, u, config.params(vocab_limit));
    // Ids travel as floats (exact below 2^24) so that one readback brings both.
    let read = read_rows(Tensor::cat(vec![drawn.ids.float(), drawn.log_probs], 0).reshape([2, rows])).await?;
    let (ids, log_probs) = read.split_at(rows);
    Ok(Draws { ids: ids.iter().map(|&x| x as u32).collect(), log_probs: log_probs.to_vec() })
}

#[cfg(test)]
mod tests {
    use burn::tensor::Device;

    use super::*;

    fn draw_rows(logits: &[[f32; 4]], config: &SamplingConfig, rng: &mut Rng) -> Draws {
        let flat: Vec<f32> = logits.iter().flatten().copied().collect();
        let t = Tensor::<2>::from_data(TensorData::new(flat, [logits.len(), 4]), &Device::flex());
        let u = logits.iter().map(|_| uniform(config, rng)).collect();
        pollster::block_on(draw(t, u, config, None)).unwrap()
    }

    #[test]
    fn greedy_and_filters() {
        let logits = [[0.0, 3.0, 1.0, 2.9]; 200];
        let mut rng = Rng::new(0);
        let greedy = draw_rows(&logits[..1], &SamplingConfig::greedy(), &mut rng);
        assert_eq!(greedy.ids, [1]);
        let top2 = SamplingConfig { top_k: 2, ..Default::default() };
        assert!(draw_rows(&logits, &top2, &mut rng).ids.iter().all(|id| matches!(id, 1 | 3)));
        // top_p small enough keeps only the best token.
        let top_p = SamplingConfig { top_p: 0.3, ..Default::default() };
        assert!(draw_rows(&logits, &top_p, &mut rng).ids.iter().all(|&id| id == 1));
    }

    #[test]
    fn sampling_follows_the_distribution() {
        let logits = [[0.0f32, (3.0f32).ln(), f32::NEG_INFINITY, f32::NEG_INFINITY]; 4000];
        let drawn = draw_rows(&logits, &SamplingConfig::default(), &mut Rng::new(5));
        let ones = drawn.ids.iter().filter(|&&id| id == 1).count();
        assert!((ones as f64 / 4000.0 - 0.75).abs() < 0.03, "{ones}");
        let at = drawn.ids.iter().position(|&id| id == 1).unwrap();
        assert!((drawn.log_probs[at] - 0.75f32.ln()).abs() < 1e-6);
    }

    #[test]
    fn validation_names_the_option() {
        let bad = SamplingConfig { top_p: 0.0, ..Default::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("top_p"));
    }
}
