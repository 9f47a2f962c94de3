//! The policy gradients of one RL step: the GRPO loss over the step's responses in micro-batches of
//! similar length, with the sampling policy's and the reference model's log-probs.

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Tensor, TensorData};

use super::batch::{Sequence, TokenBatch, length_buckets, token_log_probs};
use super::config::RlConfig;
use super::generation::Generation;
use super::recompute::Recompute;
use crate::decode::read_rows;
use crate::error::Result;
use crate::grpo::{EngineWeights, MiniBatchSize, PolicyBatch, engine_weights, grpo_loss};
use crate::logprobs::TokenLogProbs;
use crate::model::CausalLm;

/// Loss terms each micro-batch reads back: loss, KL, clip low, clip high, dual clip, entropy, and
/// the engine's mismatch: its sum and largest value over sampled tokens, and their count.
pub(super) const LOSS_TERMS: usize = 9;

/// The temperature the loss divides logits by: the sampling one (TRL's convention), 1 for greedy
/// rollouts, which have no tempered distribution.
fn temperature(c: &RlConfig) -> f64 {
    match c.rollout.sampling.temperature {
        t if t > 0.0 => t as f64,
        _ => 1.0,
    }
}

/// The training sequences of `rows`.
fn sequences<'a>(generation: &'a Generation, rows: &[usize]) -> Vec<Sequence<'a>> {
    rows.iter()
        .map(|&i| {
            let r = &generation.rollouts[i];
            Sequence { prompt: &generation.prompts[r.prompt], completion: &r.ids, trained: None }
        })
        .collect()
}

fn slices(rows: &[Vec<f32>]) -> Vec<&[f32]> {
    rows.iter().map(Vec::as_slice).collect()
}

/// Micro-batches of `rows` of similar length (see [`length_buckets`]).
fn micro_batches(c: &RlConfig, generation: &Generation, rows: &[usize], min_parts: usize) -> Vec<Vec<usize>> {
    let lengths: Vec<usize> = rows
        .iter()
        .map(|&i| generation.prompts[generation.rollouts[i].prompt].len() + generation.rollouts[i].ids.len())
        .collect();
    length_buckets(&lengths, min_parts, c.micro_batch_tokens)
        .into_iter()
        .map(|part| part.into_iter().map(|j| rows[j]).collect())
        .collect()
}

/// Every response token's log-prob under `model` as it is now (before any update on the
/// generation): the old policy of the generation's later steps.
pub(super) async fn sampling_log_probs(
    model: &CausalLm,
    c: &RlConfig,
    generation: &Generation,
    pad: u32,
) -> Result<Vec<Vec<f32>>> {
    let model = model.valid();
    let all: Vec<usize> = (0..generation.rollouts.len()).collect();
    let mut out = vec![Vec::new(); all.len()];
    for rows in micro_batches(c, generation, &all, 1) {
        let tokens = TokenBatch::new(&sequences(generation, &rows), pad, &model.device());
        let log_probs = token_log_probs(&model, &tokens, temperature(c)).log_probs;
        let read = read_rows(log_probs).await?;
        for (&i, values) in rows.iter().zip(tokens.take(&read)) {
            out[i] = values;
        }
    }
    Ok(out)
}

/// The gradients of one optimizer step on the responses `rows` of `generation`, in micro-batches
/// of rows of similar length, each averaged over the whole mini-batch's size so that their
/// gradients add up to the mini-batch's. Returns them and, to read back, [`LOSS_TERMS`] values
/// per micro-batch.
pub(super) fn policy_gradients(
    model: &CausalLm,
    reference: Option<&CausalLm>,
    c: &RlConfig,
    generation: &Generation,
    rows: &[usize],
    pad: u32,
) -> (GradientsParams, Vec<Tensor<1>>) {
    let device = model.device();
    let whole = MiniBatchSize {
        tokens: rows.iter().map(|&i| generation.rollouts[i].ids.len()).sum(),
        responses: rows.len(),
        max_completion_length: c.rollout.max_completion_length,
    };
    let mut accumulator = GradientsAccumulator::new();
    let mut parts: Vec<Tensor<1>> = Vec::new();
    for part in micro_batches(c, generation, rows, c.gradient_accumulation_steps) {
        let tokens = TokenBatch::new(&sequences(generation, &part), pad, &device);
        // With checkpointing the log-probs are a leaf: the loss's gradient stops there, and the
        // recompute carries it into the model.
        let (recompute, policy) = match c.gradient_checkpointing {
            true => {
                let (pass, out) = Recompute::forward(model, &tokens, temperature(c));
                let log_probs = Tensor::from_inner(out.log_probs).require_grad();
                (Some(pass), TokenLogProbs { log_probs, entropy: Tensor::from_inner(out.entropy) })
            }
            false => (None, token_log_probs(model, &tokens, temperature(c))),
        };
        let policy_log_probs = policy.log_probs.clone();
        let ref_log_probs = reference
            .map(|r| Tensor::from_inner(token_log_probs(r, &tokens.inner(), temperature(c)).log_probs));
        let old_log_probs = match &generation.old_log_probs {
            Some(old) => tokens.place(&part.iter().map(|&i| old[i].as_slice()).collect::<Vec<_>>()),
            // The generation trains this one step: the sampling policy is the current one, so the
            // old log-probs are these very log-probs, detached (the ratio is 1).
            None => policy.log_probs.clone().detach(),
        };
        let engine = generation.engine_corrected.then(|| {
            let rollouts: Vec<_> = part.iter().map(|&i| &generation.rollouts[i]).collect();
            let engine: Vec<Vec<f32>> =
                rollouts.iter().map(|r| r.log_probs.iter().map(|p| p.unwrap_or(0.0)).collect()).collect();
            let sampled: Vec<Vec<f32>> = rollouts
                .iter()
                .map(|r| r.log_probs.iter().map(|p| if p.is_some() { 1.0 } else { 0.0 }).collect())
                .collect();
            let (engine, sampled) = (tokens.place(&slices(&engine)), tokens.place(&slices(&sampled)));
            let g = &c.grpo;
            let w = engine_weights(
                old_log_probs.clone(),
                engine,
                sampled.clone(),
                g.vllm_importance_sampling_mode,
                g.vllm_importance_sampling_cap,
            );
            (w, sampled.sum())
        });
        let advantages: Vec<f32> = part.iter().map(|&i| generation.advantages[i]).collect();
        let loss = grpo_loss(
            PolicyBatch {
                log_probs: policy.log_probs,
                old_log_probs,
                ref_log_probs,
                advantages: Tensor::from_data(TensorData::new(advantages, [part.len()]), &device),
                mask: tokens.mask.clone(),
                entropy: Some(policy.entropy),
                mini_batch: Some(whole),
                engine_weights: engine.as_ref().map(|(w, _)| w.weights.clone()),
            },
            &c.grpo,
        );
        let grads = loss.loss.backward();
        let grads = match recompute {
            Some(pass) => {
                pass.backward(model, policy_log_probs.grad(&grads).expect("the log-probs are tracked"))
            }
            None => GradientsParams::from_grads(grads, model),
        };
        accumulator.accumulate(model, grads);
        parts.extend(
            [
                loss.loss,
                loss.kl_loss,
                loss.clip_ratio_low,
                loss.clip_ratio_high,
                loss.clip_ratio_dual,
                loss.entropy,
            ]
            .map(|t| t.inner()),
        );
        let mismatch = match engine {
            Some((EngineWeights { mismatch, .. }, sampled)) => {
                [mismatch.clone().sum(), mismatch.max(), sampled].map(|t| t.inner())
            }
            None => [0.0; 3].map(|_| parts[0].zeros_like()),
        };
        parts.extend(mismatch);
    }
    (accumulator.grads(), parts)
}
