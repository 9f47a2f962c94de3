//! Per-token log-probabilities of chosen ids: the quantity every GRPO term is built from.

use burn::tensor::{Int, Tensor};

/// `log softmax(logits)[.., ids]`: logits [batch, time, vocab], ids [batch, time] -> [batch, time].
/// On wgpu a kernel computes it without materialising the [batch, time, vocab] log-softmax (the
/// largest memory cost of the GRPO loss at real vocabularies); elsewhere plain burn ops do.
pub fn selective_log_softmax(logits: Tensor<3>, ids: Tensor<2, Int>) -> Tensor<2> {
    let [b, t, v] = logits.dims();
    stepgrpo_shaders::selective_log_softmax(logits.reshape([b * t, v]), ids.reshape([b * t]))
        .log_probs
        .reshape([b, t])
}
