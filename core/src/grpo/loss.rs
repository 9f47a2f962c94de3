//! The clipped policy-gradient loss with dual clip and KL penalty, on burn tensors (autodiff flows
//! into `log_probs`). Follows the reference library's `compute_policy_loss` and `kl_penalty`.

use burn::tensor::Tensor;

use super::config::{GrpoConfig, ImportanceSamplingLevel, KlEstimator, LossType};

/// Per-token inputs of one mini-batch, all `[responses, tokens]` except `advantages` `[responses]`.
pub struct PolicyBatch {
    /// Log-probs of the sampled tokens under the policy being trained (gradients flow here).
    pub log_probs: Tensor<2>,
    /// Log-probs under the policy that sampled the responses.
    pub old_log_probs: Tensor<2>,
    /// Log-probs under the frozen reference model; `None` when beta = 0.
    pub ref_log_probs: Option<Tensor<2>>,
    /// One advantage per response, broadcast to its tokens.
    pub advantages: Tensor<1>,
    /// 1 on response tokens, 0 on padding.
    pub mask: Tensor<2>,
    /// The policy's entropy at each position, for the metric; `None`: estimated by the sampled
    /// tokens' negative log-probs (the reference library's `entropy_loss`).
    pub entropy: Option<Tensor<2>>,
    /// The whole mini-batch's size when this is one micro-batch of it; `None`: this is all of it.
    pub mini_batch: Option<MiniBatchSize>,
    /// Per-token weights of the policy-gradient term for rollouts of another engine (see
    /// [`engine_weights`](super::engine_weights)); `None`: the trainer sampled them.
    pub engine_weights: Option<Tensor<2>>,
}

/// Response tokens and responses of a whole mini-batch. Averages of a micro-batch divide by these,
/// so the micro-batches' losses and metrics add up to the mini-batch's exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MiniBatchSize {
    /// Response tokens (the mask's ones).
    pub tokens: usize,
    /// Responses.
    pub responses: usize,
    /// Response tokens a rollout may have (`max_completion_length`), `dr_grpo`'s normaliser.
    pub max_completion_length: usize,
}

/// The loss and the metrics of spec section 7, as scalar tensors (`[1]`) to read back asynchronously.
pub struct GrpoLoss {
    /// pg_loss + beta * kl_loss: the quantity to minimise.
    pub loss: Tensor<1>,
    /// The clipped surrogate alone.
    pub pg_loss: Tensor<1>,
    /// The KL penalty (before beta); zero without a reference.
    pub kl_loss: Tensor<1>,
    /// Mean of old - new log-prob over tokens (how far the policy moved).
    pub ppo_kl: Tensor<1>,
    /// The policy's mean entropy over response tokens (see [`PolicyBatch::entropy`]).
    pub entropy: Tensor<1>,
    /// Fraction of tokens whose ratio fell below 1 - epsilon with a negative advantage, so the
    /// clip holds their push (TRL: clip_ratio/low_mean).
    pub clip_ratio_low: Tensor<1>,
    /// Fraction of tokens whose ratio rose above 1 + epsilon_high with a positive advantage
    /// (TRL: clip_ratio/high_mean). Low + high is the reference library's `pg_clipfrac`.
    pub clip_ratio_high: Tensor<1>,
    /// Fraction of tokens held by the dual clip: negative advantage, ratio above `dual_clip`
    /// (the reference library's `pg_clipfrac_lower`).
    pub clip_ratio_dual: Tensor<1>,
}

/// Mean over response tokens; over the whole mini-batch's tokens when `whole` is given.
fn masked_mean(x: Tensor<2>, mask: &Tensor<2>, whole: Option<MiniBatchSize>) -> Tensor<1> {
    let sum = (x * mask.clone()).sum();
    match whole {
        Some(w) => sum / w.tokens.max(1) as f64,
        None => sum / mask.clone().sum().clamp_min(1.0),
    }
}

/// Averages per-token values the configured way: over all tokens, or per response then over responses.
fn average(x: Tensor<2>, mask: &Tensor<2>, mode: LossType, whole: Option<MiniBatchSize>) -> Tensor<1> {
    match mode {
        LossType::Token => masked_mean(x, mask, whole),
        LossType::DrGrpo => {
            let [rows, time] = x.dims();
            let (responses, budget) = whole.map_or((rows, time), |w| (w.responses, w.max_completion_length));
            (x * mask.clone()).sum() / (responses.max(1) * budget.max(1)) as f64
        }
        LossType::Seq => {
            let per_seq = (x * mask.clone()).sum_dim(1) / mask.clone().sum_dim(1).clamp_min(1.0);
            match whole {
                Some(w) => per_seq.sum() / w.responses.max(1) as f64,
                None => per_seq.mean(),
            }
        }
    }
}

/// Computes the GRPO loss of a mini-batch.
pub fn grpo_loss(batch: PolicyBatch, config: &GrpoConfig) -> GrpoLoss {
    let PolicyBatch {
        log_probs,
        old_log_probs,
        ref_log_probs,
        advantages,
        mask,
        entropy,
        mini_batch,
        engine_weights,
    } = batch;
    let adv = advantages.unsqueeze_dim::<2>(1);
    let token_log_ratio = (log_probs.clone() - old_log_probs).clamp(-20.0, 20.0);
    let log_ratio = match config.importance_sampling_level {
        ImportanceSamplingLevel::Token => token_log_ratio.clone(),
        ImportanceSamplingLevel::Sequence => {
            // GSPO: every token carries its sequence's mean log-ratio; the gradient is per token.
            let diff = token_log_ratio.clone().detach() * mask.clone();
            let seq = diff.sum_dim(1) / mask.clone().sum_dim(1).clamp_min(1.0);
            (log_probs.clone() - log_probs.clone().detach() + seq).clamp(-20.0, 20.0)
        }
    };
    let ratio = log_ratio.clone().exp();
    let clipped_ratio =
        log_ratio.clone().clamp((1.0 - config.epsilon).ln(), (1.0 + config.epsilon_high).ln()).exp();

    let pg = adv.clone().neg() * ratio;
    let pg_clipped = adv.clone().neg() * clipped_ratio;
    let pg_dual = adv.clone().neg() * config.dual_clip;
    // max(pg, pg_clipped): PPO's pessimistic bound; the clip binds where pg < pg_clipped, which is
    // a ratio past 1 + epsilon_high for a positive advantage, below 1 - epsilon for a negative one.
    let clipped = pg.clone().lower(pg_clipped.clone());
    let pg_max = pg.mask_where(clipped.clone(), pg_clipped);
    // For negative advantages the loss is further capped at -A * dual_clip.
    let negative = adv.clone().lower_elem(0.0);
    let clipped_low = clipped.clone().bool_and(negative.clone());
    let clipped_high = clipped.bool_and(adv.greater_elem(0.0));
    let dual_hit = pg_max.clone().greater(pg_dual.clone()).bool_and(negative.clone());
    let mut pg_final = pg_max.mask_where(dual_hit.clone(), pg_dual);
    if let Some(w) = engine_weights {
        pg_final = pg_final * w;
    }

    let pg_loss = average(pg_final, &mask, config.loss_type, mini_batch);
    let kl_loss = match ref_log_probs {
        Some(ref_lp) if config.beta > 0.0 => {
            let kl = match config.kl_estimator {
                KlEstimator::K1 => log_probs.clone() - ref_lp,
                KlEstimator::K3 => {
                    let d = (ref_lp - log_probs.clone()).clamp(-20.0, 20.0);
                    (d.clone().exp() - d - 1.0).clamp(-10.0, 10.0)
                }
            };
            average(kl, &mask, config.loss_type, mini_batch)
        }
        _ => pg_loss.zeros_like(),
    };
    GrpoLoss {
        loss: pg_loss.clone() + kl_loss.clone() * config.beta,
        ppo_kl: masked_mean(token_log_ratio.neg().detach(), &mask, mini_batch),
        entropy: average(
            entropy.unwrap_or_else(|| log_probs.neg()).detach(),
            &mask,
            config.loss_type,
            mini_batch,
        ),
        clip_ratio_low: masked_mean(clipped_low.float(), &mask, mini_batch),
        clip_ratio_high: masked_mean(clipped_high.float(), &mask, mini_batch),
        clip_ratio_dual: masked_mean(dual_hit.float(), &mask, mini_batch),
        pg_loss,
        kl_loss,
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Tensor};

    use super::*;

    /// Each averaging of one micro-batch's tokens against the mini-batch it belongs to.
    #[test]
    fn loss_types_divide_by_their_mini_batch_normalisers() {
        let device = Device::flex();
        let x = || Tensor::<2>::from_floats([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], &device);
        let mask = Tensor::<2>::from_floats([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]], &device);
        let whole = Some(MiniBatchSize { tokens: 10, responses: 4, max_completion_length: 8 });
        let value = |mode| -> f32 { average(x(), &mask, mode, whole).into_scalar() };
        // 18 is the masked sum; rows' token means 1.5 and 5.
        assert!((value(LossType::Token) - 18.0 / 10.0).abs() < 1e-6);
        assert!((value(LossType::Seq) - (1.5 + 5.0) / 4.0).abs() < 1e-6);
        assert!((value(LossType::DrGrpo) - 18.0 / (4.0 * 8.0)).abs() < 1e-6);
    }
}
