//! Per-token log-probabilities of chosen ids: the quantity every GRPO term is built from.

use burn::tensor::{Int, Tensor};

use crate::model::CausalLm;

pub use stepgrpo_shaders::LOGITS_PER_CHUNK;

/// Log-probs of chosen ids and the entropy of each position's distribution, [batch, time] each.
pub struct TokenLogProbs {
    /// `log softmax(logits)[.., ids]`; differentiable.
    pub log_probs: Tensor<2>,
    /// `-sum p log p` at each position; a metric, carries no gradient.
    pub entropy: Tensor<2>,
}

/// The log-prob of `targets` [batch, time] under `model` fed `inputs` [batch, time], and the
/// entropy at each position, with the logits divided by `temperature`. The logits are made a chunk
/// of positions at a time from the hidden states, so no tensor is larger than
/// [`LOGITS_PER_CHUNK`] elements whatever the batch; on wgpu a kernel computes the log-prob and
/// entropy of a chunk in one pass without materialising its log-softmax. Gradients flow into the
/// model.
pub fn token_log_probs(
    model: &CausalLm,
    inputs: Tensor<2, Int>,
    targets: Tensor<2, Int>,
    temperature: f64,
) -> TokenLogProbs {
    let [b, t] = inputs.dims();
    let hidden = model.hidden(inputs);
    let [_, _, d] = hidden.dims();
    let (log_probs, entropy) =
        head_log_probs(model, hidden.reshape([b * t, d]), targets.reshape([b * t]), temperature);
    TokenLogProbs { log_probs: log_probs.reshape([b, t]), entropy: entropy.reshape([b, t]) }
}

/// Positions whose logits one tensor may hold for `model`'s vocabulary.
pub fn chunk_positions(model: &CausalLm) -> usize {
    (LOGITS_PER_CHUNK / model.config.vocab_size.max(1)).max(1)
}

/// [`token_log_probs`] from final (normed) hidden states `[N, hidden]` and targets `[N]`: the output
/// projection and the selective log-softmax a chunk of [`chunk_positions`] positions at a time.
/// Returns the log-probs and the entropies, `[N]` each.
///
/// Log-probs that carry no gradient (the KL reference's, the sampling policy's, a recompute's
/// forward) go through `stepgrpo_shaders::head_log_probs`, which on wgpu fuses the projection into
/// the log-softmax and never makes a chunk's logits; tracked hidden states keep the chunked
/// logits, whose backward exists.
pub fn head_log_probs(
    model: &CausalLm,
    hidden: Tensor<2>,
    targets: Tensor<1, Int>,
    temperature: f64,
) -> (Tensor<1>, Tensor<1>) {
    // The kernel bounds its own launches, so it takes every position at once.
    if let Some(w) = output_weight(model).filter(|w| stepgrpo_shaders::head_log_probs_is_fused(&hidden, w)) {
        let out = stepgrpo_shaders::head_log_probs(hidden, w, targets, temperature as f32);
        return (out.log_probs, out.entropy);
    }
    let [n_all, _] = hidden.dims();
    let rows = chunk_positions(model);
    let (mut log_probs, mut entropy) = (Vec::new(), Vec::new());
    for start in (0..n_all).step_by(rows) {
        let n = rows.min(n_all - start);
        let logits = model.head(hidden.clone().narrow(0, start, n).unsqueeze::<3>()).squeeze_dim::<2>(0);
        let logits = if temperature == 1.0 { logits } else { logits / temperature };
        let out = stepgrpo_shaders::selective_log_softmax(logits, targets.clone().narrow(0, start, n));
        log_probs.push(out.log_probs);
        entropy.push(out.entropy);
    }
    (Tensor::cat(log_probs, 0), Tensor::cat(entropy, 0))
}

/// The [vocab, hidden] matrix [`CausalLm::head`] multiplies by: the tied embedding, or the untied
/// head's weight transposed back to the checkpoint's rows. `None` for a head with a bias, which
/// the fused kernel does not add.
fn output_weight(model: &CausalLm) -> Option<Tensor<2>> {
    match &model.lm_head {
        Some(head) if head.bias.is_some() => None,
        Some(head) => Some(head.weight.val().transpose()),
        None => Some(model.embed_tokens.weight.val()),
    }
}
