//! Hand-written kernels for the hot paths of Step-GRPO (WGSL on wgpu, one in Rust on the CPU), each
//! with a generic burn fallback.
//!
//! | operation | kernel | saves |
//! |---|---|---|
//! | [`selective_log_softmax`] | `selective_log_softmax{,_backward}.wgsl` | the `[N, V]` log-softmax and its autodiff state |
//! | [`head_log_probs`] (log-probs without a gradient) | `fused_head{,_combine}.wgsl` | the `[N, V]` logits themselves, and the f32 copy of an f16 output projection |
//! | [`sample`] | `sample.wgsl` | reading `[N, V]` logits back to the host every decoding step |
//! | [`probe_confidence`] | `probe_confidence.wgsl` | reading a probe's `[N, T, V]` logits back |
//! | [`group_advantages`] | `group_advantages.wgsl` | a host round trip between rewards and the loss |
//! | [`matmul_nt`] | `src/cpu.rs` (burn-flex on x86-64 with AVX2) | gemm copying every projection's weight (311 MB for a Qwen3 output projection) each decoding step |
//!
//! Each function picks its implementation from the tensors it is given: the WGSL kernels for f32
//! tensors on a wgpu device (natively on Vulkan/Metal/DX12, or WebGPU in a browser; the fused head
//! also reads an f16 weight where the adapter has `shader-f16`), the CPU kernel
//! for a few rows of f32 (weights in f32, bf16 or f16) on the native x86-64 CPU device, the plain burn version in [`generic`]
//! everywhere else. Callers never know the difference, and the parity tests hold
//! both to the same answers.
// Every public item carries a doc line (clippy -D warnings makes this an error).
#![warn(missing_docs)]

mod autodiff;
#[cfg(target_arch = "x86_64")]
mod cpu;
pub mod generic;
mod ops;
mod wgpu;

use burn::backend::{Dispatch, DispatchDevice};
use burn::tensor::{DType, Device, Int, Tensor};

use ops::{GradKernelOps, KernelOps};

/// Logits one tensor may hold (positions of a training chunk, rows of a decoding step): 2^24 f32
/// (64 MiB), under WebGPU's default limit on a storage buffer (128 MiB). At Qwen3's 151,936-token
/// vocabulary that is 110 positions.
pub const LOGITS_PER_CHUNK: usize = 1 << 24;

/// Whether `device` runs the WGSL kernels (a wgpu device, with or without autodiff).
pub fn has_kernels(device: &Device) -> bool {
    matches!(device.clone().inner().as_dispatch(), DispatchDevice::Cube(burn::cubecl::Device::Wgpu(_)))
}

fn on_kernels(t: &Tensor<2>) -> bool {
    t.dtype() == DType::F32 && has_kernels(&t.device())
}

/// Log-probabilities of chosen tokens, and the entropy of each row's distribution.
#[derive(Debug, Clone)]
pub struct TokenLogProbs {
    /// `log softmax(logits[n])[ids[n]]` `[N]`; differentiable.
    pub log_probs: Tensor<1>,
    /// `-sum p log p` of each row `[N]`; a metric, carries no gradient.
    pub entropy: Tensor<1>,
}

/// Log-prob of `ids` `[N]` under each row of `logits` `[N, V]`, and each row's entropy, without
/// materialising the `[N, V]` log-softmax. Gradients flow into `logits` through `log_probs`.
pub fn selective_log_softmax(logits: Tensor<2>, ids: Tensor<1, Int>) -> TokenLogProbs {
    if !on_kernels(&logits) {
        return generic::selective_log_softmax(logits, ids);
    }
    let (log_probs, entropy) = Dispatch::selective_log_softmax(logits.into_dispatch(), ids.into_dispatch());
    TokenLogProbs { log_probs: Tensor::from_dispatch(log_probs), entropy: Tensor::from_dispatch(entropy) }
}

/// Log-prob of `ids` `[N]` and entropy of each row of the logits `z = hidden · weight^T /
/// temperature`, from final hidden states `hidden` [N, d] and an output projection `weight` [V, d]
/// (a tied embedding, or an untied head's weight transposed): `log_probs[n] = z[n, ids[n]] -
/// logsumexp(z[n])`, `entropy[n] = -sum p log p`. Where [`head_log_probs_is_fused`], one kernel
/// pass keeps per-(row, tile of ids) softmax partials and a second merges them, so the `[N, V]`
/// logits never exist; it carries no gradient. Everywhere else it is [`matmul_nt`] and
/// [`selective_log_softmax`] a chunk of rows at a time (differentiable, the same numbers).
pub fn head_log_probs(
    hidden: Tensor<2>,
    weight: Tensor<2>,
    ids: Tensor<1, Int>,
    temperature: f32,
) -> TokenLogProbs {
    if !head_log_probs_is_fused(&hidden, &weight) {
        return generic::head_log_probs_with(
            hidden,
            weight,
            ids,
            temperature,
            matmul_nt,
            selective_log_softmax,
        );
    }
    // Untracked autodiff inputs run on the inner device and come back as constants of theirs.
    let autodiff = hidden.is_autodiff();
    let (hidden, weight, ids) = (hidden.inner(), weight.inner(), ids.inner());
    let ([n_all, _], [vocab, _]) = (hidden.dims(), weight.dims());
    // A launch's partials grow with its rows: bounded, whatever the caller passes.
    let rows = wgpu::fused_head_rows(vocab);
    let (mut log_probs, mut entropy) = (Vec::new(), Vec::new());
    for start in (0..n_all).step_by(rows) {
        let n = rows.min(n_all - start);
        let (lp, ent) = Dispatch::fused_head_log_probs(
            hidden.clone().narrow(0, start, n).into_dispatch(),
            weight.clone().into_dispatch(),
            ids.clone().narrow(0, start, n).into_dispatch(),
            temperature,
        );
        log_probs.push(Tensor::<1>::from_dispatch(lp));
        entropy.push(Tensor::<1>::from_dispatch(ent));
    }
    let wrap = |parts: Vec<Tensor<1>>| {
        let t = if parts.len() == 1 { parts.into_iter().next().unwrap() } else { Tensor::cat(parts, 0) };
        if autodiff { Tensor::from_inner(t) } else { t }
    };
    TokenLogProbs { log_probs: wrap(log_probs), entropy: wrap(entropy) }
}

/// Whether [`head_log_probs`] runs the fused kernel for these tensors: `hidden` in f32 on a wgpu
/// device, `weight` in f32 or f16 (where the adapter has `shader-f16`), neither tracked by
/// autodiff (a gradient needs the chunked path, whose backward exists), and sizes within the
/// kernel's dispatch and index limits.
pub fn head_log_probs_is_fused(hidden: &Tensor<2>, weight: &Tensor<2>) -> bool {
    let ([n, d], [v, wd]) = (hidden.dims(), weight.dims());
    let device = hidden.device();
    let weight_ok = match weight.dtype() {
        DType::F32 => true,
        DType::F16 => device.supports_dtype(DType::F16),
        _ => false,
    };
    on_kernels(hidden)
        && weight_ok
        && weight.device() == device
        && !hidden.is_tracked()
        && !weight.is_tracked()
        && d == wd
        && n * v * d > 0
        && wgpu::fused_head_fits(v, d)
}

/// How the next token is drawn from a row's logits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature; 0 is greedy.
    pub temperature: f32,
    /// Keep the tokens whose logit is at least the k-th largest (0 keeps all; ties are all kept).
    pub top_k: usize,
    /// Then keep the most likely tokens until their tempered mass reaches `top_p` of the rest.
    pub top_p: f32,
    /// Ids at or past this are never drawn (`None`: every id may be): a checkpoint's embedding
    /// often has padding rows past its tokenizer's vocabulary (151,936 rows for Qwen3's 151,669
    /// tokens), which a random or lightly trained model would otherwise sample.
    pub vocab_limit: Option<usize>,
}

impl SamplingParams {
    /// Whether every row takes its most likely token.
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0 || self.top_k == 1
    }

    /// The ids drawable from rows of `vocab` logits: `0..limit`, at least one.
    pub fn limit(&self, vocab: usize) -> usize {
        self.vocab_limit.map_or(vocab, |l| l.clamp(1, vocab))
    }
}

/// Drawn tokens.
#[derive(Debug, Clone)]
pub struct Sampled {
    /// The chosen id of each row `[N]`.
    pub ids: Tensor<1, Int>,
    /// Its log-probability under the model's untempered, unfiltered distribution (the softmax of
    /// all V logits, as the training loss computes it) `[N]`.
    pub log_probs: Tensor<1>,
}

/// Draws one token per row (no gradient) of `logits` `[N, V]`. `uniforms` `[N]` are the row's random numbers in
/// [0, 1) (drawn by the caller, so streams are seeded and reproducible on every backend); a
/// negative uniform makes that row greedy (e.g. a row that is probing). Among the kept tokens
/// (see [`SamplingParams`]; only ids below its `vocab_limit`), the sample is the first id whose
/// running tempered mass, in id order, exceeds `u` times their total. Only ids and log-probs need
/// to leave the device.
pub fn sample(logits: Tensor<2>, uniforms: Tensor<1>, params: SamplingParams) -> Sampled {
    let (logits, uniforms) = (logits.inner(), uniforms.inner());
    if !on_kernels(&logits) {
        return generic::sample(logits, uniforms, params);
    }
    let [_, vocab] = logits.dims();
    let (ids, log_probs) = Dispatch::sample(
        logits.into_dispatch(),
        uniforms.into_dispatch(),
        params.temperature,
        params.top_k.min(u32::MAX as usize) as u32,
        params.top_p,
        params.limit(vocab) as u32,
    );
    Sampled { ids: Tensor::from_dispatch(ids), log_probs: Tensor::from_dispatch(log_probs) }
}

/// Confidence of each row's probe from its logits `[N, T, V]` and its number of tokens `[N]`: the
/// geometric mean of the top-1 probabilities of tokens 2..len (the first is skipped: it only
/// restates the format); 0 for a probe of fewer than two tokens.
pub fn probe_confidence(logits: Tensor<3>, lengths: Tensor<1, Int>) -> Tensor<1> {
    let (logits, lengths) = (logits.inner(), lengths.inner());
    let [n, t, v] = logits.dims();
    if !on_kernels(&logits.clone().reshape([n * t, v])) {
        return generic::probe_confidence(logits, lengths);
    }
    let out = Dispatch::probe_confidence(logits.into_dispatch(), lengths.into_dispatch());
    Tensor::from_dispatch(out)
}

/// Which spread divides the centred rewards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdvantageScale {
    /// The group's unbiased std (GRPO).
    Group,
    /// The whole batch's unbiased std.
    Batch,
    /// None: rewards are only centred (Dr. GRPO).
    None,
}

/// Group-relative advantages of `rewards` `[N]`: each minus its group's mean, divided by the chosen
/// spread + 1e-6. `groups` `[N]` names each response's group; groups may be interleaved. A group of
/// one response gets 0.
pub fn group_advantages(rewards: Tensor<1>, groups: Tensor<1, Int>, scale: AdvantageScale) -> Tensor<1> {
    let (rewards, groups) = (rewards.inner(), groups.inner());
    let [n] = rewards.dims();
    if !on_kernels(&rewards.clone().reshape([1, n])) {
        return generic::group_advantages(rewards, groups, scale);
    }
    let code = match scale {
        AdvantageScale::Group => 0,
        AdvantageScale::Batch => 1,
        AdvantageScale::None => 2,
    };
    Tensor::from_dispatch(Dispatch::group_advantages(rewards.into_dispatch(), groups.into_dispatch(), code))
}

/// `x` [M, K] times the transpose of `w` [N, K]: [M, N], i.e. a linear layer whose weight rows are
/// its outputs, as checkpoints store them (and a tied embedding used as the output projection).
/// `w` may be kept in bf16 or f16: the product is computed in `x`'s dtype.
/// Differentiable like `x.matmul(w.transpose())`, which it is everywhere but in
/// [`matmul_nt_is_streamed`]'s case.
pub fn matmul_nt(x: Tensor<2>, w: Tensor<2>) -> Tensor<2> {
    #[cfg(target_arch = "x86_64")]
    if let Some(out) = cpu::matmul_nt(&x, &w) {
        return out;
    }
    generic::matmul_nt(x, w)
}

/// Whether [`matmul_nt`] runs the CPU kernel for these tensors, which reads each row of `w` in
/// place once: `x` in f32 and `w` in f32, bf16 or f16 on the CPU device (burn-flex) without
/// autodiff, at most 32 rows of `x` (decoding; larger products go to burn's matmul), `w`
/// contiguous, an x86-64 CPU with AVX2, FMA and F16C.
pub fn matmul_nt_is_streamed(x: &Tensor<2>, w: &Tensor<2>) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        cpu::applies(x, w)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (x, w);
        false
    }
}
