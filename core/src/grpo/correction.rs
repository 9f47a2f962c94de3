//! Truncated importance sampling for rollouts sampled by another engine (vLLM): its numerics and
//! weights differ from the trainer's, so each token's loss is weighted by how much likelier the
//! trainer's policy at sampling time found it than the engine did (TRL's
//! `vllm_importance_sampling_*`), with the weight capped or the sequence masked past a cap.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// How the engine's importance weights are formed (TRL: `vllm_importance_sampling_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EngineCorrectionMode {
    /// Per token, capped: min(rho_t, cap).
    TokenTruncate,
    /// Per token, dropped past the cap: rho_t, or 0 where rho_t > cap.
    TokenMask,
    /// One weight per response, the product of its tokens' ratios, capped.
    SequenceTruncate,
    /// One weight per response, 0 for the whole response past the cap (TRL's default).
    #[default]
    SequenceMask,
}

/// The weights and the mismatch of one batch, all [responses, tokens].
pub struct EngineWeights {
    /// The importance weight of each token's policy-gradient term (detached).
    pub weights: Tensor<2>,
    /// |log p_trainer - log p_engine| on sampled tokens, 0 elsewhere.
    pub mismatch: Tensor<2>,
}

/// The weights for tokens of log-prob `trainer` under the trainer's sampling-time policy and
/// `engine` under the engine that drew them. `sampled` is 1 where the engine drew the token and 0
/// on tokens the rollout inserted (the closing text after an exit) and on padding: an inserted
/// token has no behaviour probability, so it adds nothing to a response's ratio and its own weight
/// is 1 (the trainer's policy stands for the behaviour one there).
pub fn engine_weights(
    trainer: Tensor<2>,
    engine: Tensor<2>,
    sampled: Tensor<2>,
    mode: EngineCorrectionMode,
    cap: f64,
) -> EngineWeights {
    let delta = (trainer - engine) * sampled;
    let mismatch = delta.clone().abs();
    let log_cap = cap.ln();
    let [b, t] = delta.dims();
    let log_rho = match mode {
        EngineCorrectionMode::TokenTruncate | EngineCorrectionMode::TokenMask => delta,
        EngineCorrectionMode::SequenceTruncate | EngineCorrectionMode::SequenceMask => {
            delta.sum_dim(1).expand([b, t])
        }
    }
    .clamp(-20.0, 20.0);
    let weights = match mode {
        EngineCorrectionMode::TokenTruncate | EngineCorrectionMode::SequenceTruncate => {
            log_rho.clamp_max(log_cap).exp()
        }
        EngineCorrectionMode::TokenMask | EngineCorrectionMode::SequenceMask => {
            let past = log_rho.clone().greater_elem(log_cap);
            log_rho.exp().mask_fill(past, 0.0)
        }
    };
    EngineWeights { weights: weights.detach(), mismatch: mismatch.detach() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t(rows: [[f32; 3]; 2], device: &Device) -> Tensor<2> {
        Tensor::from_data(TensorData::new(rows.concat(), [2, 3]), device)
    }

    fn weights(mode: EngineCorrectionMode) -> Vec<f32> {
        let device = Device::flex();
        // Response 0: ratios 2, 0.5 and an inserted token; response 1: ratios 4, 1, 1.
        let ln = |x: f32| x.ln();
        let trainer = t([[ln(0.4), ln(0.1), ln(0.9)], [ln(0.8), ln(0.5), ln(0.3)]], &device);
        let engine = t([[ln(0.2), ln(0.2), 0.0], [ln(0.2), ln(0.5), ln(0.3)]], &device);
        let sampled = t([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]], &device);
        let w = engine_weights(trainer, engine, sampled, mode, 3.0);
        w.weights.into_data().try_to_vec::<f32>().unwrap()
    }

    fn close(a: &[f32], b: &[f32]) {
        assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5), "{a:?} != {b:?}");
    }

    #[test]
    fn weights_by_hand() {
        use EngineCorrectionMode::*;
        close(&weights(TokenTruncate), &[2.0, 0.5, 1.0, 3.0, 1.0, 1.0]);
        close(&weights(TokenMask), &[2.0, 0.5, 1.0, 0.0, 1.0, 1.0]);
        // Sequence ratios: 2 * 0.5 = 1 (the inserted token adds nothing), and 4.
        close(&weights(SequenceTruncate), &[1.0, 1.0, 1.0, 3.0, 3.0, 3.0]);
        close(&weights(SequenceMask), &[1.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
    }
}
