//! Per-token log-probabilities of chosen ids: the quantity every GRPO term is built from.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

/// `log softmax(logits)[.., ids]`: logits [batch, time, vocab], ids [batch, time] -> [batch, time].
pub fn selective_log_softmax(logits: Tensor<3>, ids: Tensor<2, Int>) -> Tensor<2> {
    let [b, t, _] = logits.dims();
    log_softmax(logits, 2).gather(2, ids.reshape([b, t, 1])).reshape([b, t])
}
