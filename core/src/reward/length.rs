//! GRPO + the Kimi k1.5 length penalty (spec section 6), a baseline of the paper.

use serde::{Deserialize, Serialize};

use super::{Reward, RewardBatch, RewardError, RewardOutput, b, check_unit, group_step_means, judge_all};
use crate::steps::Triggers;

/// Configuration of [`LengthPenaltyReward`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LengthPenaltyConfig {
    /// Weight of accuracy against format in the base reward.
    pub alpha: f64,
    /// Multiplier of the length term added to the base reward (Kimi k1.5 adds it with weight 1).
    pub weight: f64,
    /// Trigger words, for the step statistics only.
    pub triggers: Triggers,
}

impl Default for LengthPenaltyConfig {
    fn default() -> Self {
        LengthPenaltyConfig { alpha: 0.9, weight: 1.0, triggers: Triggers::default() }
    }
}

impl LengthPenaltyConfig {
    /// Checks that alpha is in [0, 1] and the weight is finite and not negative.
    pub fn validate(&self) -> Result<(), RewardError> {
        check_unit("alpha", self.alpha)?;
        if !(self.weight.is_finite() && self.weight >= 0.0) {
            return Err(RewardError::InvalidConfig(format!(
                "weight = {} must be finite and >= 0",
                self.weight
            )));
        }
        Ok(())
    }
}

/// GRPO + the Kimi k1.5 length penalty (spec section 6). Per group,
/// `lambda = 0.5 - (len - min_len) / (max_len - min_len)`; a correct response gets `+lambda`, a wrong
/// one `+min(0, lambda)`, times `weight`, on top of `alpha * acc + (1 - alpha) * fmt`. When every
/// response of a group has the same length, lambda is 0 (the formula would divide by zero, and
/// there is no length to prefer). Lengths are token counts supplied by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct LengthPenaltyReward {
    config: LengthPenaltyConfig,
}

impl LengthPenaltyReward {
    /// A reward from a validated config.
    pub fn new(config: LengthPenaltyConfig) -> Result<Self, RewardError> {
        config.validate()?;
        Ok(LengthPenaltyReward { config })
    }

    /// The length term lambda of every response, per group.
    fn lambdas(batch: &RewardBatch<'_>, lengths: &[usize]) -> Vec<f64> {
        let mut out = vec![0.0; lengths.len()];
        for group in batch.groups() {
            let lens = group.iter().map(|&i| lengths[i]);
            let (min, max) = (lens.clone().min().unwrap_or(0), lens.max().unwrap_or(0));
            if max > min {
                for &i in &group {
                    out[i] = 0.5 - (lengths[i] - min) as f64 / (max - min) as f64;
                }
            }
        }
        out
    }
}

impl Reward for LengthPenaltyReward {
    fn name(&self) -> &'static str {
        "length_penalty"
    }

    fn score(&self, batch: &RewardBatch<'_>) -> Result<Vec<RewardOutput>, RewardError> {
        let lengths = batch.lengths().ok_or(RewardError::MissingLengths("the length-penalty reward"))?;
        let c = &self.config;
        let judged = judge_all(batch, &c.triggers);
        let means = group_step_means(batch, &judged, true);
        let lambdas = Self::lambdas(batch, lengths);
        Ok(judged
            .iter()
            .zip(means)
            .zip(lambdas)
            .map(|((j, mu), lambda)| {
                let (acc, fmt) = (b(j.correct), b(j.formatted));
                let bonus = if j.correct { lambda } else { lambda.min(0.0) };
                let overall = c.alpha * acc + (1.0 - c.alpha) * fmt + c.weight * bonus;
                RewardOutput { overall, accuracy: acc, format: fmt, steps: j.steps, step_mean: mu }
            })
            .collect())
    }
}
