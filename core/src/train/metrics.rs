//! Per-step metrics under the names of spec section 7 (TRL's where one exists), and the statistics
//! of a set of rollouts they are computed from.

use serde::{Deserialize, Serialize};

use crate::reward::RewardOutput;
use crate::rollout::{ExitType, Rollout};

/// One optimizer step of RL, as one JSONL record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RlMetrics {
    /// The method trained.
    pub method: String,
    /// Optimizer step, from 1.
    pub step: usize,
    /// Mean reward.
    pub reward: f64,
    /// Mean over groups of the reward's standard deviation.
    pub reward_std: f64,
    /// Share of groups whose rewards are all equal (no learning signal).
    pub frac_reward_zero_std: f64,
    /// Mean response length in tokens.
    #[serde(rename = "completions/mean_length")]
    pub mean_length: f64,
    /// Share of responses that hit `max_completion_length`.
    #[serde(rename = "completions/clipped_ratio")]
    pub clipped_ratio: f64,
    /// The KL penalty (before beta).
    pub kl: f64,
    /// Share of tokens whose ratio fell below 1 - epsilon with a negative advantage (clipped).
    #[serde(rename = "clip_ratio/low_mean")]
    pub clip_ratio_low: f64,
    /// Share of tokens whose ratio rose above 1 + epsilon_high with a positive advantage (clipped).
    #[serde(rename = "clip_ratio/high_mean")]
    pub clip_ratio_high: f64,
    /// Share of tokens the clip holds at all: low + high.
    #[serde(rename = "clip_ratio/region_mean")]
    pub clip_ratio_region: f64,
    /// Share of tokens held by the dual clip (negative advantage, ratio above `dual_clip`).
    #[serde(rename = "clip_ratio/dual_mean")]
    pub clip_ratio_dual: f64,
    /// The policy's mean entropy over response tokens (of the tempered distribution it sampled).
    pub entropy: f64,
    /// Mean step count of the responses.
    #[serde(rename = "steps/mean")]
    pub steps_mean: f64,
    /// Share of responses whose thinking a probe ended.
    #[serde(rename = "early_exit/rate")]
    pub early_exit_rate: f64,
    /// Probes per response.
    #[serde(rename = "early_exit/mean_probes")]
    pub mean_probes: f64,
    /// Mean confidence over every probe (0 when none ran).
    #[serde(rename = "early_exit/mean_confidence")]
    pub mean_confidence: f64,
    /// Share of correct answers among the responses a probe ended: the probe's precision, to set
    /// against `accuracy` (near it, the probe is sure of wrong answers too); none when no probe ended one.
    #[serde(rename = "early_exit/accuracy")]
    pub early_exit_accuracy: Option<f64>,
    /// Share of correct responses.
    pub accuracy: f64,
    /// Response tokens per correct response (all tokens / correct count); none without a correct one.
    pub tokens_per_correct: Option<f64>,
    /// The loss minimised.
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate of the step.
    pub learning_rate: f64,
    /// Seconds spent generating rollouts (0 on a step that reuses its generation's).
    pub rollout_seconds: f64,
    /// Seconds of the whole step.
    pub step_seconds: f64,
    /// Mean |log p_engine - log p_trainer| over the sampled tokens, when another engine (vLLM)
    /// sampled them.
    #[serde(rename = "engine/mismatch_mean", default, skip_serializing_if = "Option::is_none")]
    pub engine_mismatch_mean: Option<f64>,
    /// The largest of those differences.
    #[serde(rename = "engine/mismatch_max", default, skip_serializing_if = "Option::is_none")]
    pub engine_mismatch_max: Option<f64>,
    /// Updates skipped so far in the phase for a NaN or an infinity in the rewards, the loss or
    /// the gradients.
    pub nan_skipped: usize,
}

/// Statistics of scored rollouts shared by training steps and evaluation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RolloutStats {
    /// Responses.
    pub responses: usize,
    /// Share of correct responses.
    pub accuracy: f64,
    /// Mean response tokens.
    pub mean_tokens: f64,
    /// Mean steps.
    pub mean_steps: f64,
    /// Response tokens per correct response; none when no response is correct.
    pub tokens_per_correct: Option<f64>,
    /// Share of responses ended by a probe.
    pub early_exit_rate: f64,
    /// Probes per response.
    pub mean_probes: f64,
    /// Mean probe confidence.
    pub mean_confidence: f64,
    /// Share of correct answers among the responses a probe ended; none when no probe ended one.
    pub early_exit_accuracy: Option<f64>,
    /// Share of responses that hit the length limit.
    pub clipped_ratio: f64,
}

impl RolloutStats {
    /// Statistics of `rollouts` and their scores.
    pub fn new(rollouts: &[Rollout], scores: &[RewardOutput]) -> RolloutStats {
        let n = rollouts.len().max(1) as f64;
        let tokens: usize = rollouts.iter().map(|r| r.ids.len()).sum();
        let correct = scores.iter().filter(|s| s.accuracy > 0.0).count();
        let probes: Vec<f64> = rollouts.iter().flat_map(|r| r.probes.iter().map(|p| p.confidence)).collect();
        let exited: Vec<bool> = rollouts
            .iter()
            .zip(scores)
            .filter(|(r, _)| r.exit == ExitType::EarlyExit)
            .map(|(_, s)| s.accuracy > 0.0)
            .collect();
        RolloutStats {
            responses: rollouts.len(),
            accuracy: correct as f64 / n,
            mean_tokens: tokens as f64 / n,
            mean_steps: scores.iter().map(|s| s.steps as f64).sum::<f64>() / n,
            tokens_per_correct: (correct > 0).then(|| tokens as f64 / correct as f64),
            early_exit_rate: exited.len() as f64 / n,
            mean_probes: probes.len() as f64 / n,
            mean_confidence: if probes.is_empty() {
                0.0
            } else {
                probes.iter().sum::<f64>() / probes.len() as f64
            },
            early_exit_accuracy: (!exited.is_empty())
                .then(|| exited.iter().filter(|&&c| c).count() as f64 / exited.len() as f64),
            clipped_ratio: rollouts.iter().filter(|r| r.clipped).count() as f64 / n,
        }
    }
}

/// Mean over groups of the reward's unbiased standard deviation, and the share of groups with zero
/// spread. `groups` lists each group's response indices.
pub fn group_spread(rewards: &[f64], groups: &[Vec<usize>]) -> (f64, f64) {
    if groups.is_empty() {
        return (0.0, 0.0);
    }
    let mut std_sum = 0.0;
    let mut zero = 0;
    for g in groups {
        let m = g.iter().map(|&i| rewards[i]).sum::<f64>() / g.len() as f64;
        let var = g.iter().map(|&i| (rewards[i] - m).powi(2)).sum::<f64>() / (g.len().max(2) - 1) as f64;
        std_sum += var.sqrt();
        zero += usize::from(var < 1e-12);
    }
    (std_sum / groups.len() as f64, zero as f64 / groups.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(exit: ExitType, tokens: usize) -> Rollout {
        Rollout {
            prompt: 0,
            ids: vec![1; tokens],
            log_probs: vec![None; tokens],
            step_starts: vec![0],
            exit,
            probes: Vec::new(),
            clipped: false,
            policy_version: 0,
        }
    }

    fn score(correct: bool) -> RewardOutput {
        let acc = if correct { 1.0 } else { 0.0 };
        RewardOutput { overall: acc, accuracy: acc, format: 1.0, steps: 1, step_mean: None }
    }

    #[test]
    fn early_exit_accuracy_counts_only_the_responses_a_probe_ended() {
        let rollouts = [
            rollout(ExitType::EarlyExit, 4),
            rollout(ExitType::EarlyExit, 4),
            rollout(ExitType::Natural, 8),
            rollout(ExitType::Natural, 8),
        ];
        let stats = RolloutStats::new(&rollouts, &[score(true), score(false), score(true), score(true)]);
        assert_eq!(stats.early_exit_rate, 0.5);
        assert_eq!(stats.early_exit_accuracy, Some(0.5));
        assert_eq!(stats.accuracy, 0.75);
        assert_eq!(stats.tokens_per_correct, Some(8.0));
        let none = RolloutStats::new(&rollouts[2..], &[score(true), score(false)]);
        assert_eq!(none.early_exit_accuracy, None, "no probe ended a response");
    }
}
