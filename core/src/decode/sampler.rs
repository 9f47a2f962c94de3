//! Choosing the next token from logits: greedy, temperature, top-k, top-p.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::Rng;

/// How the next token is chosen. `temperature == 0` means greedy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingConfig {
    /// Softmax temperature; 0 picks the most likely token (greedy).
    pub temperature: f32,
    /// Keep only the k most likely tokens (0 = all).
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
}

/// The index of the largest logit (the first one on ties, like `torch.argmax`).
pub fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in logits.iter().enumerate() {
        if x > logits[best] {
            best = i;
        }
    }
    best
}

/// Log-softmax of one row at index `id`, computed stably.
pub fn log_prob(logits: &[f32], id: usize) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&x| ((x - max) as f64).exp()).sum();
    (logits[id] - max) - sum.ln() as f32
}

/// Picks a token from one row of logits, drawing from `rng` unless greedy.
pub fn sample(logits: &[f32], config: &SamplingConfig, rng: &mut Rng) -> usize {
    if config.is_greedy() {
        return argmax(logits);
    }
    let t = config.temperature;
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    // Candidates sorted by probability, most likely first; truncated by top-k then top-p.
    let mut cand: Vec<(usize, f64)> =
        logits.iter().enumerate().map(|(i, &x)| (i, (((x - max) / t) as f64).exp())).collect();
    let filtered = config.top_k > 0 && config.top_k < cand.len() || config.top_p < 1.0;
    if filtered {
        cand.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if config.top_k > 0 {
            cand.truncate(config.top_k);
        }
        if config.top_p < 1.0 {
            let total: f64 = cand.iter().map(|c| c.1).sum();
            let mut acc = 0.0;
            let mut keep = cand.len();
            for (i, c) in cand.iter().enumerate() {
                acc += c.1 / total;
                if acc >= config.top_p as f64 {
                    keep = i + 1;
                    break;
                }
            }
            cand.truncate(keep);
        }
    }
    let total: f64 = cand.iter().map(|c| c.1).sum();
    let mut u = rng.uniform() * total;
    for &(i, p) in &cand {
        u -= p;
        if u < 0.0 {
            return i;
        }
    }
    cand.last().map(|c| c.0).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_and_filters() {
        let logits = [0.0, 3.0, 1.0, 2.9];
        assert_eq!(sample(&logits, &SamplingConfig::greedy(), &mut Rng::new(0)), 1);
        let top2 = SamplingConfig { top_k: 2, ..Default::default() };
        let mut rng = Rng::new(1);
        for _ in 0..200 {
            assert!(matches!(sample(&logits, &top2, &mut rng), 1 | 3));
        }
        // top_p small enough keeps only the best token.
        let top_p = SamplingConfig { top_p: 0.3, ..Default::default() };
        for _ in 0..50 {
            assert_eq!(sample(&logits, &top_p, &mut rng), 1);
        }
    }

    #[test]
    fn sampling_follows_the_distribution() {
        let logits = [0.0f32, (3.0f32).ln()];
        let mut rng = Rng::new(5);
        let ones = (0..4000).filter(|_| sample(&logits, &SamplingConfig::default(), &mut rng) == 1).count();
        assert!((ones as f64 / 4000.0 - 0.75).abs() < 0.03, "{ones}");
        assert!((log_prob(&logits, 1) - 0.75f32.ln()).abs() < 1e-6);
    }

    #[test]
    fn validation_names_the_option() {
        let bad = SamplingConfig { top_p: 0.0, ..Default::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("top_p"));
    }
}
