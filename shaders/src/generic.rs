//! The same operations in plain burn tensor ops: what every backend without a kernel runs (the CPU,
//! wasm without WebGPU, non-f32 tensors), and the reference the kernels are tested against.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

use crate::{AdvantageScale, Sampled, SamplingParams, TokenLogProbs};

/// Denominator guard of the group standardisation.
const EPS: f32 = 1e-6;

/// Log-sum-exp of each row of `x` [N, V] given its row max [N, 1]: [N, 1].
fn log_sum_exp(x: Tensor<2>, max: Tensor<2>) -> Tensor<2> {
    (x - max.clone()).exp().sum_dim(1).log() + max
}

/// See [`crate::selective_log_softmax`].
pub fn selective_log_softmax(logits: Tensor<2>, ids: Tensor<1, Int>) -> TokenLogProbs {
    let [n, _] = logits.dims();
    let logp = log_softmax(logits, 1);
    let chosen = logp.clone().gather(1, ids.reshape([n, 1])).reshape([n]);
    // -inf log-probs (masked logits) contribute 0, not 0 * -inf.
    let logp = logp.detach().clamp_min(f32::MIN);
    let entropy = -(logp.clone().exp() * logp).sum_dim(1).reshape([n]);
    TokenLogProbs { log_probs: chosen, entropy }
}

/// See [`crate::head_log_probs`]: burn's matmul and the plain selective log-softmax, a chunk of
/// rows at a time.
pub fn head_log_probs(
    hidden: Tensor<2>,
    weight: Tensor<2>,
    ids: Tensor<1, Int>,
    temperature: f32,
) -> TokenLogProbs {
    head_log_probs_with(hidden, weight, ids, temperature, matmul_nt, selective_log_softmax)
}

/// [`head_log_probs`] with the product and the log-softmax given: the generic ones, or the
/// crate's (each running its own kernel where it has one), the fused kernel's fallback.
pub(crate) fn head_log_probs_with(
    hidden: Tensor<2>,
    weight: Tensor<2>,
    ids: Tensor<1, Int>,
    temperature: f32,
    matmul_nt: fn(Tensor<2>, Tensor<2>) -> Tensor<2>,
    select: fn(Tensor<2>, Tensor<1, Int>) -> TokenLogProbs,
) -> TokenLogProbs {
    let ([n_all, _], [vocab, _]) = (hidden.dims(), weight.dims());
    let rows = (crate::LOGITS_PER_CHUNK / vocab.max(1)).max(1);
    let (mut log_probs, mut entropy) = (Vec::new(), Vec::new());
    for start in (0..n_all).step_by(rows) {
        let n = rows.min(n_all - start);
        let logits = matmul_nt(hidden.clone().narrow(0, start, n), weight.clone());
        let logits = if temperature == 1.0 { logits } else { logits / temperature };
        let out = select(logits, ids.clone().narrow(0, start, n));
        log_probs.push(out.log_probs);
        entropy.push(out.entropy);
    }
    TokenLogProbs { log_probs: Tensor::cat(log_probs, 0), entropy: Tensor::cat(entropy, 0) }
}

/// See [`crate::matmul_nt`]; a weight kept in another dtype (bf16, f16) is widened to `x`'s.
pub fn matmul_nt(x: Tensor<2>, w: Tensor<2>) -> Tensor<2> {
    let dtype = x.dtype();
    x.matmul(w.cast(dtype).transpose())
}

/// See [`crate::sample`]; expects tensors without autodiff.
pub fn sample(logits: Tensor<2>, uniforms: Tensor<1>, params: SamplingParams) -> Sampled {
    let [n, vocab] = logits.dims();
    let device = logits.device();
    // The log-prob's normaliser covers every logit; only the first `v` ids can be drawn.
    let full = logits.clone();
    let lse = log_sum_exp(full.clone(), full.clone().max_dim(1));
    let v = params.limit(vocab);
    let logits = if v < vocab { logits.slice([0..n, 0..v]) } else { logits };
    let max = logits.clone().max_dim(1);
    let argmax = logits.clone().argmax(1);
    let ids = if params.is_greedy() {
        argmax
    } else {
        let t = params.temperature;
        let weight = |x: Tensor<2>| ((x - max.clone()) / t).exp();
        let mut tau = logits.clone().min_dim(1);
        if params.top_k > 0 && params.top_k < v || params.top_p < 1.0 {
            let sorted = logits.clone().sort_descending(1);
            if params.top_k > 0 && params.top_k < v {
                tau = sorted.clone().slice([0..n, params.top_k - 1..params.top_k]);
            }
            if params.top_p < 1.0 {
                // The largest logit whose prefix (in sorted order) holds top_p of the top-k mass.
                let kept = sorted.clone().greater_equal(tau.clone()).float();
                let cum = (weight(sorted.clone()) * kept).cumsum(1);
                let need = cum.clone().slice([0..n, v - 1..v]) * params.top_p;
                // The first sorted logit whose prefix reaches `need` is the largest among those
                // whose prefix does (a max instead of a gather at a computed index: burn 0.22.1's
                // fused wgpu path miscomputes that gather).
                tau = sorted.mask_fill(cum.lower(need), f32::NEG_INFINITY).max_dim(1);
            }
        }
        let keep = logits.clone().greater_equal(tau);
        let cum = (weight(logits.clone()) * keep.clone().float()).cumsum(1);
        let target = cum.clone().slice([0..n, v - 1..v]) * uniforms.clone().reshape([n, 1]);
        let first = cum.lower_equal(target).int().sum_dim(1);
        let positions = Tensor::<1, Int>::arange(0..v as i64, &device).reshape([1, v]);
        let last_kept = (keep.int() * positions).max_dim(1);
        let sampled = first.min_pair(last_kept);
        // Rows asking for greedy (a negative uniform) take the argmax.
        argmax.mask_where(uniforms.reshape([n, 1]).greater_equal_elem(0.0), sampled)
    };
    let log_probs = (full.gather(1, ids.clone()) - lse).reshape([n]);
    Sampled { ids: ids.reshape([n]), log_probs }
}

/// See [`crate::probe_confidence`]; expects tensors without autodiff.
pub fn probe_confidence(logits: Tensor<3>, lengths: Tensor<1, Int>) -> Tensor<1> {
    let [n, t, v] = logits.dims();
    let flat = logits.reshape([n * t, v]);
    let max = flat.clone().max_dim(1);
    let log_top1 = (max.clone() - log_sum_exp(flat, max)).reshape([n, t]);
    let len = lengths.clamp(0, t as i64).reshape([n, 1]);
    let pos = Tensor::<1, Int>::arange(0..t as i64, &log_top1.device()).reshape([1, t]);
    let counted = pos.clone().greater_equal_elem(1).bool_and(pos.lower(len.clone())).float();
    let tokens = (len.float() - 1.0).clamp_min(1.0);
    let mean = (log_top1 * counted.clone()).sum_dim(1) / tokens;
    let any = counted.sum_dim(1).greater_elem(0.0).float();
    (mean.exp() * any).reshape([n])
}

/// See [`crate::group_advantages`]; expects tensors without autodiff.
pub fn group_advantages(rewards: Tensor<1>, groups: Tensor<1, Int>, scale: AdvantageScale) -> Tensor<1> {
    let [n] = rewards.dims();
    let same = groups.clone().reshape([n, 1]).equal(groups.reshape([1, n])).float();
    let count = same.clone().sum_dim(1);
    let mean = same.clone().matmul(rewards.clone().reshape([n, 1])) / count.clone();
    let diff = rewards.clone().reshape([1, n]) - mean.clone();
    let var = (same * diff.clone().powi_scalar(2)).sum_dim(1) / (count.clone() - 1.0).clamp_min(1.0);
    let centred = rewards.clone().reshape([n, 1]) - mean;
    let scaled = match scale {
        AdvantageScale::Group => centred / (var.sqrt() + EPS),
        AdvantageScale::Batch => {
            let batch_mean = rewards.clone().mean();
            let batch_var = (rewards - batch_mean).powi_scalar(2).sum() / ((n as f32 - 1.0).max(1.0));
            centred / (batch_var.sqrt().reshape([1, 1]) + EPS)
        }
        AdvantageScale::None => centred,
    };
    // A group of one has nothing to be compared against.
    (scaled * count.greater_elem(1.0).float()).reshape([n])
}
