//! The backward of the selective log-softmax kernel, for burn's autodiff backend.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::tensor::{FloatTensor, IntTensor};

use crate::ops::{GradKernelOps, KernelOps};

#[derive(Debug)]
struct SelectiveLogSoftmaxBackward;

impl<B: KernelOps> Backward<B, 1> for SelectiveLogSoftmaxBackward {
    /// The logits, the chosen ids and the forward's log-sum-exp: with them the backward is one
    /// elementwise kernel, and nothing of size [N, V] beyond the logits is kept.
    type State = (FloatTensor<B>, IntTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let (logits, ids, lse) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            B::log_softmax_select_backward(logits, ids, lse, grad)
        });
    }
}

impl<B: KernelOps + GradKernelOps, C: CheckpointStrategy> GradKernelOps for Autodiff<B, C> {
    fn selective_log_softmax(
        logits: FloatTensor<Self>,
        ids: IntTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (logits, node) = logits.into_parts();
        match SelectiveLogSoftmaxBackward.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (logp, entropy, lse) = B::log_softmax_select(logits.clone(), ids.clone());
                (prep.finish((logits, ids, lse), logp), <FloatTensor<Self>>::new(entropy))
            }
            OpsKind::UnTracked(prep) => {
                let (logp, entropy) = B::selective_log_softmax(logits, ids);
                (prep.finish(logp), <FloatTensor<Self>>::new(entropy))
            }
        }
    }
}
