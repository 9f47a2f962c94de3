//! Knobs of the GRPO objective, named after TRL's `GRPOConfig` where one exists.

use serde::{Deserialize, Serialize};

use super::correction::EngineCorrectionMode;
use crate::error::{Error, Result};

/// How rewards are scaled into advantages (TRL: `scale_rewards`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ScaleRewards {
    /// Divide by the group's standard deviation (GRPO).
    #[default]
    Group,
    /// Divide by the batch's standard deviation.
    Batch,
    /// Do not divide (Dr. GRPO).
    None,
}

/// How per-token losses are averaged (TRL: `loss_type`, with TRL's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum LossType {
    /// `dapo`: mean over every response token of the optimizer step's mini-batch (the reference
    /// library's `token`). TRL's `bnpo` normalises by the tokens of the batch a gradient is
    /// computed on, which here is the same: the micro-batches a step is cut into add up to the
    /// mini-batch's gradient.
    #[default]
    #[serde(rename = "dapo", alias = "bnpo", alias = "token")]
    Token,
    /// `grpo`: mean over responses of each response's token mean (the original GRPO; the
    /// reference library's `seq`).
    #[serde(rename = "grpo", alias = "seq")]
    Seq,
    /// `dr_grpo`: the sum over response tokens divided by responses x `max_completion_length`, a
    /// constant, so a response's length does not scale its tokens' weight (Dr. GRPO).
    #[serde(rename = "dr_grpo")]
    DrGrpo,
}

/// Whether the importance ratio is per token or per sequence (TRL: `importance_sampling_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ImportanceSamplingLevel {
    /// One ratio per token (GRPO).
    #[default]
    Token,
    /// The geometric-mean ratio of the whole response, applied to each token (GSPO).
    Sequence,
}

/// Estimator of the KL divergence to the reference model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum KlEstimator {
    /// k3 ("low_var_kl"): exp(ref - logp) - (ref - logp) - 1, clamped to [-10, 10].
    #[default]
    #[serde(alias = "low_var_kl")]
    K3,
    /// k1: logp - ref.
    #[serde(alias = "kl")]
    K1,
}

/// The policy-loss configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpoConfig {
    /// Lower clip range: ratios below 1 - epsilon stop pushing. Default 0.2.
    pub epsilon: f64,
    /// Upper clip range: ratios above 1 + epsilon_high stop pushing. Default 0.28 (DAPO).
    pub epsilon_high: f64,
    /// Dual clip: for negative advantages the loss is capped at -A * dual_clip. Default 3.0.
    pub dual_clip: f64,
    /// KL coefficient; 0 disables the penalty and the reference model. Default 0.01.
    pub beta: f64,
    /// KL estimator. Default k3.
    pub kl_estimator: KlEstimator,
    /// Loss aggregation. Default `dapo`.
    pub loss_type: LossType,
    /// Token- or sequence-level importance ratio. Default token.
    pub importance_sampling_level: ImportanceSamplingLevel,
    /// Advantage scaling. Default group.
    pub scale_rewards: ScaleRewards,
    /// Weight the loss by the trainer/engine probability ratio when the rollouts come from
    /// another engine (vLLM), whose numerics and weights lag the trainer's. Default true.
    pub vllm_importance_sampling_correction: bool,
    /// Token or sequence ratios, truncated or masked past the cap. Default sequence_mask.
    pub vllm_importance_sampling_mode: EngineCorrectionMode,
    /// The cap of those ratios. Default 3.0.
    pub vllm_importance_sampling_cap: f64,
}

impl Default for GrpoConfig {
    fn default() -> Self {
        GrpoConfig {
            epsilon: 0.2,
            epsilon_high: 0.28,
            dual_clip: 3.0,
            beta: 0.01,
            kl_estimator: KlEstimator::K3,
            loss_type: LossType::Token,
            importance_sampling_level: ImportanceSamplingLevel::Token,
            scale_rewards: ScaleRewards::Group,
            vllm_importance_sampling_correction: true,
            vllm_importance_sampling_mode: EngineCorrectionMode::SequenceMask,
            vllm_importance_sampling_cap: 3.0,
        }
    }
}

impl GrpoConfig {
    /// Checks every knob's range, naming the one at fault.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.epsilon) {
            return Err(Error::invalid("epsilon", format!("{} must be in [0, 1)", self.epsilon)));
        }
        if !(self.epsilon_high >= 0.0 && self.epsilon_high.is_finite()) {
            return Err(Error::invalid("epsilon_high", format!("{} must be >= 0", self.epsilon_high)));
        }
        if self.dual_clip.is_nan() || self.dual_clip <= 1.0 {
            return Err(Error::invalid("dual_clip", format!("{} must be > 1", self.dual_clip)));
        }
        if !(self.beta >= 0.0 && self.beta.is_finite()) {
            return Err(Error::invalid("beta", format!("{} must be >= 0", self.beta)));
        }
        let cap = self.vllm_importance_sampling_cap;
        if !(cap.is_finite() && cap >= 1.0) {
            return Err(Error::invalid("vllm_importance_sampling_cap", format!("{cap} must be >= 1")));
        }
        Ok(())
    }
}
