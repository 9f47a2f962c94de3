//! The backend extensions: the operations that have a hand-written kernel, and how Fusion describes
//! their outputs before they run. Implemented for burn's cubecl backend in [`crate::wgpu`]; the
//! differentiable one also for autodiff in [`crate::autodiff`].

use burn::backend::fusion::custom::TensorSpec;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Backend, backend_extension};
use burn::tensor::{DType, Shape};

/// One value per row of `input` (its first dimension), of `dtype`.
fn per_row(input: &TensorSpec, dtype: DType) -> TensorSpec {
    TensorSpec::new(Shape::from([input.shape[0]]), dtype)
}

/// Kernels without a gradient, and the backward of [`GradKernelOps`].
#[backend_extension(Cube, Fusion)]
pub trait KernelOps: Backend {
    /// (log-prob of `ids`, entropy, log-sum-exp) of each row of `logits` [N, V]; ids [N].
    #[fusion(meta = |logits, _ids| {
        let row = per_row(logits, logits.dtype);
        (row.clone(), row.clone(), row)
    })]
    fn log_softmax_select(
        logits: FloatTensor<Self>,
        ids: IntTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// d logp / d logits scaled by `grad` [N]: grad * (onehot(ids) - exp(logits - lse)).
    #[fusion(dtype = logits, shape = logits)]
    fn log_softmax_select_backward(
        logits: FloatTensor<Self>,
        ids: IntTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// Next-token ids [N] (i32, below `limit`) and their untempered log-probs [N] from `logits`
    /// [N, V] and one uniform per row (negative: greedy).
    #[fusion(meta = |logits, _uniforms, _temperature, _top_k, _top_p, _limit| {
        (per_row(logits, DType::I32), per_row(logits, logits.dtype))
    })]
    fn sample(
        logits: FloatTensor<Self>,
        uniforms: FloatTensor<Self>,
        temperature: f32,
        top_k: u32,
        top_p: f32,
        limit: u32,
    ) -> (IntTensor<Self>, FloatTensor<Self>);

    /// Geometric mean of top-1 probabilities over probe tokens 2..len of `logits` [N, T, V].
    #[fusion(meta = |logits, _lengths| per_row(logits, logits.dtype))]
    fn probe_confidence(logits: FloatTensor<Self>, lengths: IntTensor<Self>) -> FloatTensor<Self>;

    /// (log-prob of `ids`, entropy) of each row of the logits `hidden` [N, d] times `weight`
    /// [V, d] (f32 or f16, any strides) transposed, over `temperature`; the logits are never stored.
    #[fusion(meta = |hidden, _weight, _ids, _temperature| {
        (per_row(hidden, hidden.dtype), per_row(hidden, hidden.dtype))
    })]
    fn fused_head_log_probs(
        hidden: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        ids: IntTensor<Self>,
        temperature: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// Group-standardised rewards; `scale` 0: group std, 1: batch std, 2: none.
    #[fusion(dtype = rewards, shape = rewards)]
    fn group_advantages(rewards: FloatTensor<Self>, groups: IntTensor<Self>, scale: u32)
    -> FloatTensor<Self>;
}

/// Kernels a gradient flows through.
#[backend_extension(Cube, Fusion, Autodiff)]
pub trait GradKernelOps: Backend {
    /// (log-prob of `ids`, entropy) of each row of `logits` [N, V]; the gradient flows through the
    /// log-prob only.
    #[fusion(meta = |logits, _ids| (per_row(logits, logits.dtype), per_row(logits, logits.dtype)))]
    fn selective_log_softmax(
        logits: FloatTensor<Self>,
        ids: IntTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}
