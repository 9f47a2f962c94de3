//! The RL methods of the comparison: Step-GRPO and its baselines, which differ only in the reward and
//! in whether rollouts are truncated.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::reward::{
    AccuracyConfig, AccuracyReward, LengthPenaltyConfig, LengthPenaltyReward, Reward, StepAwareConfig,
    StepAwareReward,
};
use crate::rollout::RolloutConfig;

/// The RL methods of the paper's comparison, all on the same code path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Step-aware reward + truncated rollout.
    StepGrpo,
    /// Accuracy + format reward, plain sampling.
    Grpo,
    /// GRPO + the Kimi k1.5 length penalty.
    GrpoLengthPenalty,
    /// Step-GRPO without the step reward (truncated rollout only).
    StepGrpoNoStepReward,
    /// Step-GRPO without the truncated rollout (step reward only).
    StepGrpoNoTruncation,
    /// Step-GRPO with mu over all responses of a group, not only the correct ones.
    StepGrpoAllMean,
}

impl Method {
    /// Every method, in the order of the results table.
    pub const ALL: [Method; 6] = [
        Method::Grpo,
        Method::GrpoLengthPenalty,
        Method::StepGrpo,
        Method::StepGrpoNoStepReward,
        Method::StepGrpoNoTruncation,
        Method::StepGrpoAllMean,
    ];

    /// The name used in tables and file names.
    pub fn name(self) -> &'static str {
        match self {
            Method::StepGrpo => "step_grpo",
            Method::Grpo => "grpo",
            Method::GrpoLengthPenalty => "grpo_length_penalty",
            Method::StepGrpoNoStepReward => "step_grpo_no_step_reward",
            Method::StepGrpoNoTruncation => "step_grpo_no_truncation",
            Method::StepGrpoAllMean => "step_grpo_all_mean",
        }
    }

    /// Parses [`Method::name`].
    pub fn from_name(name: &str) -> Result<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name).ok_or_else(|| {
            let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
            Error::invalid("method", format!("`{name}` is not one of {}", names.join(", ")))
        })
    }

    /// Whether training rollouts are truncated by probes.
    pub fn truncates(self) -> bool {
        matches!(self, Method::StepGrpo | Method::StepGrpoNoStepReward | Method::StepGrpoAllMean)
    }

    /// The method's reward function.
    pub fn reward(self, config: &RewardConfig, rollout: &RolloutConfig) -> Result<Box<dyn Reward>> {
        let triggers = rollout.triggers.clone();
        let step = |step_reward: bool, correct_mean: bool| StepAwareConfig {
            alpha: config.alpha,
            beta: config.step_beta,
            correct_mean,
            step_reward,
            triggers: triggers.clone(),
        };
        let bad = |e: crate::reward::RewardError| Error::invalid("reward", e.to_string());
        Ok(match self {
            Method::StepGrpo | Method::StepGrpoNoTruncation => {
                Box::new(StepAwareReward::new(step(true, true)).map_err(bad)?)
            }
            Method::StepGrpoAllMean => Box::new(StepAwareReward::new(step(true, false)).map_err(bad)?),
            Method::Grpo | Method::StepGrpoNoStepReward => Box::new(
                AccuracyReward::new(AccuracyConfig { alpha: config.alpha, triggers: triggers.clone() })
                    .map_err(bad)?,
            ),
            Method::GrpoLengthPenalty => Box::new(
                LengthPenaltyReward::new(LengthPenaltyConfig {
                    alpha: config.alpha,
                    weight: config.length_weight,
                    triggers: triggers.clone(),
                })
                .map_err(bad)?,
            ),
        })
    }
}

/// Reward weights shared by the methods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardConfig {
    /// Weight of accuracy against format. Default 0.9.
    pub alpha: f64,
    /// Strength of the step efficiency factor (the paper's beta). Default 0.5.
    pub step_beta: f64,
    /// Weight of the Kimi length term. Default 1.0.
    pub length_weight: f64,
}

impl Default for RewardConfig {
    fn default() -> Self {
        RewardConfig { alpha: 0.9, step_beta: 0.5, length_weight: 1.0 }
    }
}
