//! Sequences padded into one batch, and the log-probabilities a model gives their tokens.

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::logprobs::{self, TokenLogProbs};
use crate::model::CausalLm;

/// One training sequence: a prompt, its completion, and which completion tokens carry loss.
pub struct Sequence<'a> {
    /// Prompt ids (never trained).
    pub prompt: &'a [u32],
    /// Completion ids.
    pub completion: &'a [u32],
    /// Per completion id whether it is trained; `None` trains all of them.
    pub trained: Option<&'a [bool]>,
}

/// Right-padded sequences: inputs are positions 0..T-1, targets 1..T; right padding never changes
/// the logits of earlier positions under a causal mask.
pub struct TokenBatch {
    /// Input ids [B, T-1].
    pub inputs: Tensor<2, Int>,
    /// Target ids [B, T-1] (the next token at every input position).
    pub targets: Tensor<2, Int>,
    /// 1 where the target is a trained completion token, else 0 [B, T-1].
    pub mask: Tensor<2>,
    /// Trained tokens in the batch.
    pub tokens: usize,
    /// Per sequence, the column of its first completion target and its completion's length.
    completions: Vec<(usize, usize)>,
}

impl TokenBatch {
    /// Pads `sequences` with `pad` onto `device`.
    pub fn new(sequences: &[Sequence], pad: u32, device: &Device) -> TokenBatch {
        let t = sequences.iter().map(|s| s.prompt.len() + s.completion.len()).max().unwrap_or(1).max(2);
        let b = sequences.len();
        let mut ids = vec![pad as i64; b * t];
        let mut mask = vec![0f32; b * (t - 1)];
        for (i, s) in sequences.iter().enumerate() {
            let row = &mut ids[i * t..(i + 1) * t];
            for (j, &id) in s.prompt.iter().chain(s.completion).enumerate() {
                row[j] = id as i64;
            }
            for j in 0..s.completion.len() {
                if s.trained.is_none_or(|m| m[j]) {
                    // Completion token j sits at position prompt + j, predicted from the one before.
                    mask[i * (t - 1) + s.prompt.len() + j - 1] = 1.0;
                }
            }
        }
        let tokens = mask.iter().filter(|&&m| m > 0.0).count();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [b, t]), device);
        TokenBatch {
            inputs: ids.clone().narrow(1, 0, t - 1),
            targets: ids.narrow(1, 1, t - 1),
            mask: Tensor::from_data(TensorData::new(mask, [b, t - 1]), device),
            tokens,
            completions: sequences.iter().map(|s| (s.prompt.len().max(1) - 1, s.completion.len())).collect(),
        }
    }

    /// Per-completion-token `values` of each sequence laid out like the targets [B, T-1] (0 on
    /// prompt and padding positions).
    pub fn place(&self, values: &[&[f32]]) -> Tensor<2> {
        let [b, width] = self.targets.dims();
        let mut out = vec![0f32; b * width];
        for (i, (&(start, len), v)) in self.completions.iter().zip(values).enumerate() {
            out[i * width + start..i * width + start + len].copy_from_slice(&v[..len]);
        }
        Tensor::from_data(TensorData::new(out, [b, width]), &self.targets.device())
    }

    /// The completion tokens' values of each sequence from `read`, a [B, T-1] tensor's data: the
    /// inverse of [`TokenBatch::place`].
    pub fn take(&self, read: &[f32]) -> Vec<Vec<f32>> {
        let [_, width] = self.targets.dims();
        let row = |i: usize, (start, len): (usize, usize)| {
            read[i * width + start..i * width + start + len].to_vec()
        };
        self.completions.iter().enumerate().map(|(i, &c)| row(i, c)).collect()
    }

    /// The same batch on the device without autodiff (for models that are not trained).
    pub fn inner(&self) -> TokenBatch {
        TokenBatch {
            inputs: self.inputs.clone().inner(),
            targets: self.targets.clone().inner(),
            mask: self.mask.clone().inner(),
            tokens: self.tokens,
            completions: self.completions.clone(),
        }
    }
}

/// Cuts rows of the given token lengths into micro-batches of similar lengths, so that padding
/// each to its longest row costs little: rows sorted by length, at least `min_parts` parts of at
/// most ceil(n / min_parts) rows, each also cut where rows x longest would pass `max_tokens`
/// (0 = no cap; a single longer row still gets a part of its own). Returns row indices per part.
pub fn length_buckets(lengths: &[usize], min_parts: usize, max_tokens: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    let rows_per_part = lengths.len().div_ceil(min_parts.max(1)).max(1);
    let mut parts: Vec<Vec<usize>> = Vec::new();
    for i in order {
        let fits = parts.last().is_some_and(|p| {
            p.len() < rows_per_part && (max_tokens == 0 || (p.len() + 1) * lengths[i] <= max_tokens)
        });
        match parts.last_mut() {
            Some(p) if fits => p.push(i),
            _ => parts.push(vec![i]),
        }
    }
    parts
}

/// Log-probability of every target under `model`, and the entropy at each position [B, T-1], with
/// the logits divided by `temperature`: the policy that sampled at that temperature (TRL's
/// convention; 1 = the model).
pub fn token_log_probs(model: &CausalLm, batch: &TokenBatch, temperature: f64) -> TokenLogProbs {
    logprobs::token_log_probs(model, batch.inputs.clone(), batch.targets.clone(), temperature)
}

/// Summed negative log-likelihood of the trained tokens.
fn nll_sum(model: &CausalLm, batch: &TokenBatch) -> Tensor<1> {
    -(token_log_probs(model, batch, 1.0).log_probs * batch.mask.clone()).sum()
}

/// Parts the CPU backend splits a batch's gradients into, each on its own thread: burn-flex runs a
/// small model's operations on about one core, and two threads made the tiny model's SFT step 20 %
/// faster on two cores. A constant, not the machine's core count: the split decides the order in
/// which the gradients are summed, so a core count in its place made the trained model depend on
/// the machine.
pub const CPU_GRADIENT_SHARDS: usize = 2;

/// Parts for the gradients of `rows` sequences on `device`: on the CPU backend
/// `CPU_GRADIENT_SHARDS` with at least 8 rows each; one elsewhere (a GPU, or wasm, which has no
/// threads).
pub fn gradient_shards(device: &Device, rows: usize) -> usize {
    if cfg!(target_arch = "wasm32") || !crate::device::is_cpu(device) {
        return 1;
    }
    CPU_GRADIENT_SHARDS.min(rows / 8).max(1)
}

/// The supervised loss (mean negative log-likelihood of the trained tokens) of `sequences`, which
/// must not be empty, padded with `pad`, and its gradients, computed in `shards` parts of
/// consecutive rows on as many threads: each part's loss is divided by the token count of the
/// whole batch, so the summed gradients are the whole batch's.
pub fn nll_gradients(
    model: &CausalLm,
    sequences: &[Sequence],
    pad: u32,
    shards: usize,
) -> (Tensor<1>, GradientsParams) {
    let device = model.device();
    let rows = sequences.len().div_ceil(shards.max(1)).max(1);
    let batches: Vec<TokenBatch> = sequences.chunks(rows).map(|s| TokenBatch::new(s, pad, &device)).collect();
    let tokens = batches.iter().map(|b| b.tokens).sum::<usize>().max(1) as f64;
    let part = |model: &CausalLm, batch: &TokenBatch| {
        let loss = nll_sum(model, batch) / tokens;
        let grads = GradientsParams::from_grads(loss.backward(), model);
        (loss.inner(), grads)
    };
    let parts: Vec<_> = match batches.as_slice() {
        [one] => vec![part(model, one)],
        _ => std::thread::scope(|s| {
            // Each thread gets its own leaves of the same parameters (`fork`: same ids, same
            // storage): graphs that shared leaves would be merged, and one backward would consume
            // the tape the other still needs.
            let handles: Vec<_> = batches
                .iter()
                .map(|b| {
                    let model = model.clone().fork(&device);
                    s.spawn(move || part(&model, b))
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("a gradient thread panicked")).collect()
        }),
    };
    let mut accumulator = GradientsAccumulator::new();
    let mut losses = Vec::with_capacity(parts.len());
    for (loss, grads) in parts {
        accumulator.accumulate(model, grads);
        losses.push(loss);
    }
    (Tensor::cat(losses, 0).sum(), accumulator.grads())
}

#[cfg(test)]
mod tests {
    use super::length_buckets;

    #[test]
    fn buckets_group_similar_lengths_within_the_caps() {
        let lengths = [50, 10, 12, 48, 11, 100];
        // No token cap: two parts of at most 3 rows, shortest first.
        assert_eq!(length_buckets(&lengths, 2, 0), vec![vec![1, 4, 2], vec![3, 0, 5]]);
        // A cap of 120 padded tokens: 3 x 12 fits, then 48 and 50 pair up, 100 stands alone.
        assert_eq!(length_buckets(&lengths, 1, 120), vec![vec![1, 4, 2], vec![3, 0], vec![5]]);
        // A row longer than the cap still gets a part.
        assert_eq!(length_buckets(&[500], 1, 120), vec![vec![0]]);
        assert!(length_buckets(&[], 1, 0).is_empty());
    }
}
