//! The CPU kernel: `x @ w^T` for a few rows of `x`, reading burn-flex tensors in place (x86-64
//! with AVX2 and FMA, detected at run time: the workspace compiles for baseline x86-64).
//!
//! gemm (burn-flex's matmul) packs its operands before multiplying. For the decode-time output
//! projection, [8, 512] x [151,936, 512]^T, that means copying the whole 311 MB weight every call and
//! then reading the copy: most of a CPU decode step. Here rayon tasks take blocks of rows of `w`
//! straight from the tensor's storage, and each row is read from memory once, in one pass that
//! multiplies it with up to 8 rows of `x` (which stay in L1). The product is then bound by memory
//! bandwidth: on the 2-core development VM, 15-16 ms for that projection against 14.6 ms for a
//! plain two-thread read of the weight, and 32.7 ms for gemm.
//!
//! Being bound by the bytes of `w`, the kernel reads a bf16 or f16 weight as it is stored and
//! widens each 8 values in registers: half the bytes of f32, and no f32 copy of the weight.

use std::arch::x86_64::{
    __m128i, __m256, _MM_HINT_T1, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_loadu_si128, _mm_movehl_ps,
    _mm_prefetch, _mm_shuffle_ps, _mm256_castps256_ps128, _mm256_castsi256_ps, _mm256_cvtepu16_epi32,
    _mm256_cvtph_ps, _mm256_extractf128_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_setzero_ps,
    _mm256_slli_epi32,
};

use burn::backend::flex::FlexTensor;
use burn::backend::{DispatchDevice, Flex};
use burn::tensor::{DType, Element, Tensor, TensorData, bf16, f16};
use rayon::prelude::*;

/// The most rows of `x` the kernel takes: decoding has one per sequence. Beyond a few dozen,
/// gemm's packing is amortised over enough rows and its register tiling wins.
const MAX_ROWS: usize = 32;
/// Rows of `x` multiplied with each row of `w` in one pass: 8 accumulators and the row of `w` in
/// 9 of the 16 vector registers.
const GROUP: usize = 8;
/// Rows of `w` per rayon task: ~1,200 tasks for a 151,936-token vocabulary balance the threads,
/// and a block (256 KB at hidden 512) stays in L2 for the passes of further groups of `x`.
const BLOCK: usize = 128;
/// f32 lanes of an AVX register.
const LANES: usize = 8;
/// How far ahead of the row being multiplied to request `w` into L2, in bytes: the hardware
/// prefetcher alone leaves the bus idle while the core multiplies (measured for [8, 512] x
/// [151,936, 512]^T in f32 on 2 cores: 24 ms without, 16 ms with; 2 to 32 KB ahead all do about
/// as well).
const AHEAD_BYTES: usize = 8192;

/// A dtype the kernel reads `w` in: 8 values at a time, widened to f32 in a register.
trait Weight: Element + bytemuck::Pod {
    /// Loads `v` as 8 f32 lanes.
    ///
    /// # Safety
    /// The CPU has AVX2, FMA and F16C.
    unsafe fn load(v: &[Self; LANES]) -> __m256;
    /// One value as f32 (the columns past the last 8).
    fn widen(self) -> f32;
}

impl Weight for f32 {
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn load(v: &[f32; LANES]) -> __m256 {
        // SAFETY: `v` is 8 readable f32; the load has no alignment requirement.
        unsafe { _mm256_loadu_ps(v.as_ptr()) }
    }
    fn widen(self) -> f32 {
        self
    }
}

impl Weight for bf16 {
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn load(v: &[bf16; LANES]) -> __m256 {
        // A bf16 is the top half of an f32: zero-extend each to 32 bits and shift it up.
        // SAFETY: `v` is 16 readable bytes; the load has no alignment requirement.
        let halves = unsafe { _mm_loadu_si128(v.as_ptr().cast::<__m128i>()) };
        _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(halves)))
    }
    fn widen(self) -> f32 {
        self.to_f32()
    }
}

impl Weight for f16 {
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn load(v: &[f16; LANES]) -> __m256 {
        // SAFETY: `v` is 16 readable bytes; the load has no alignment requirement.
        _mm256_cvtph_ps(unsafe { _mm_loadu_si128(v.as_ptr().cast::<__m128i>()) })
    }
    fn widen(self) -> f32 {
        self.to_f32()
    }
}

/// Whether [`matmul_nt`] runs the kernel for these tensors: `x` in f32 and `w` in f32, bf16 or
/// f16, on the plain CPU device (no autodiff, which must record the op), 1 to [`MAX_ROWS`] rows
/// of `x`, at least 8 columns, `w` contiguous, and a CPU with AVX2, FMA and F16C.
pub(crate) fn applies(x: &Tensor<2>, w: &Tensor<2>) -> bool {
    let ([m, k], [n, kw]) = (x.dims(), w.dims());
    let plain =
        |t: &Tensor<2>| !t.is_autodiff() && matches!(t.device().as_dispatch(), DispatchDevice::Flex(_));
    (1..=MAX_ROWS).contains(&m)
        && k >= LANES
        && k == kw
        && n > 0
        && std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
        && std::is_x86_feature_detected!("f16c")
        && x.dtype() == DType::F32
        && matches!(w.dtype(), DType::F32 | DType::BF16 | DType::F16)
        && plain(x)
        && plain(w)
        && flex(w).is_some_and(|w| w.is_contiguous())
}

/// The tensor's burn-flex primitive; cloning a tensor only bumps its storage's reference count.
fn flex(t: &Tensor<2>) -> Option<FlexTensor> {
    t.clone().try_into_primitive::<Flex>().ok()
}

/// `x` [M, K] @ `w`^T ([N, K]) as [M, N], or `None` where the kernel does not apply (see [`applies`]).
pub(crate) fn matmul_nt(x: &Tensor<2>, w: &Tensor<2>) -> Option<Tensor<2>> {
    if !applies(x, w) {
        return None;
    }
    let ([m, k], [n, _]) = (x.dims(), w.dims());
    // `x` is small: a view (e.g. the narrowed last position) is copied; `w` is contiguous (above).
    let xt = flex(x)?;
    let xt = if xt.is_contiguous() { xt } else { xt.to_contiguous() };
    let wt = flex(w)?;
    let xs = xt.as_slice::<f32>()?;
    let out = match w.dtype() {
        DType::BF16 => multiply(xs, wt.as_slice::<bf16>()?, m, k, n),
        DType::F16 => multiply(xs, wt.as_slice::<f16>()?, m, k, n),
        _ => multiply(xs, wt.as_slice::<f32>()?, m, k, n),
    };
    Some(Tensor::from_data(TensorData::new(out, [m, n]), &x.device()))
}

/// `x` [m, k] @ `w`^T ([n, k]) as m rows of n.
fn multiply<W: Weight>(xs: &[f32], ws: &[W], m: usize, k: usize, n: usize) -> Vec<f32> {
    let packed = pack(xs, k);
    let mut out = vec![0.0f32; m * n];
    // Each task writes the columns of its block in every row of the output: hand each the
    // disjoint row pieces up front, so tasks share nothing and nothing is copied afterwards.
    let mut pieces: Vec<Vec<&mut [f32]>> = (0..n.div_ceil(BLOCK)).map(|_| Vec::with_capacity(m)).collect();
    for row in out.chunks_mut(n) {
        for (task, piece) in pieces.iter_mut().zip(row.chunks_mut(BLOCK)) {
            task.push(piece);
        }
    }
    pieces.into_par_iter().zip(ws.par_chunks(BLOCK * k)).for_each(|(mut outs, w)| {
        // SAFETY: `applies` checked that the CPU has AVX2, FMA and F16C.
        unsafe { block(xs, &packed, k, w, &mut outs) }
    });
    out
}

/// `x` [m, k] with each [`GROUP`] of rows interleaved by 8 columns: for each group, for each
/// column chunk q, the group's rows' 8 values at q. The multiply loop then walks one array in
/// order, with no index to check (the tail columns of `k % 8` are left out).
fn pack(x: &[f32], k: usize) -> Vec<[f32; LANES]> {
    let chunks = k / LANES;
    let mut packed = Vec::with_capacity(x.len() / LANES);
    for group in x.chunks(GROUP * k) {
        let rows: Vec<&[[f32; LANES]]> = group.chunks_exact(k).map(|row| row.as_chunks().0).collect();
        for q in 0..chunks {
            packed.extend(rows.iter().map(|row| row[q]));
        }
    }
    packed
}

/// `outs[i][r] = x[i] . w[r]` for `x` [m, k] (`packed` by [`pack`]) and a block `w` [rows, k]
/// (`outs`: m slices of `rows`), [`GROUP`] rows of `x` per pass over the block.
#[target_feature(enable = "avx2,fma,f16c")]
fn block<W: Weight>(x: &[f32], packed: &[[f32; LANES]], k: usize, w: &[W], outs: &mut [&mut [f32]]) {
    let chunks = k / LANES;
    let groups = x.chunks(GROUP * k).zip(outs.chunks_mut(GROUP)).zip(packed.chunks(GROUP * chunks));
    for (g, ((x, outs), packed)) in groups.enumerate() {
        // The first pass brings the block in from memory; later ones find it in L2.
        let ahead = g == 0;
        match outs.len() {
            1 => group::<1, W>(x, packed, k, w, outs, ahead),
            2 => group::<2, W>(x, packed, k, w, outs, ahead),
            3 => group::<3, W>(x, packed, k, w, outs, ahead),
            4 => group::<4, W>(x, packed, k, w, outs, ahead),
            5 => group::<5, W>(x, packed, k, w, outs, ahead),
            6 => group::<6, W>(x, packed, k, w, outs, ahead),
            7 => group::<7, W>(x, packed, k, w, outs, ahead),
            _ => group::<GROUP, W>(x, packed, k, w, outs, ahead),
        }
    }
}

/// [`block`] for `C` rows of `x`: one pass over `w`, each row's `C` dot products accumulated in
/// `C` registers, prefetching `w` [`AHEAD_BYTES`] on if `ahead`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn group<const C: usize, W: Weight>(
    x: &[f32],
    packed: &[[f32; LANES]],
    k: usize,
    w: &[W],
    outs: &mut [&mut [f32]],
    ahead: bool,
) {
    let done = k / LANES * LANES;
    let distance = AHEAD_BYTES / size_of::<W>();
    for (r, row) in w.chunks_exact(k).enumerate() {
        let (wc, wtail) = row.as_chunks::<LANES>();
        let mut acc = [_mm256_setzero_ps(); C];
        for (q, (wq, xq)) in wc.iter().zip(packed.chunks_exact(C)).enumerate() {
            if ahead {
                // Past the end of the block this requests the next block's rows (or nothing).
                prefetch(row.as_ptr().wrapping_add(q * LANES + distance));
            }
            // SAFETY: the caller's CPU has AVX2, FMA and F16C (see `applies`).
            let wv = unsafe { W::load(wq) };
            for (a, xc) in acc.iter_mut().zip(xq) {
                *a = _mm256_fmadd_ps(wv, load(xc), *a);
            }
        }
        for ((out, a), x) in outs.iter_mut().zip(acc).zip(x.chunks_exact(k)) {
            let tail: f32 = wtail.iter().zip(&x[done..]).map(|(a, b)| a.widen() * b).sum();
            out[r] = hsum(a) + tail;
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn load(v: &[f32; LANES]) -> __m256 {
    // SAFETY: `v` is 8 readable f32; the load has no alignment requirement.
    unsafe { _mm256_loadu_ps(v.as_ptr()) }
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn prefetch<W>(p: *const W) {
    // A prefetch never faults, whatever the address (the intrinsic is safe where SSE is enabled).
    _mm_prefetch::<_MM_HINT_T1>(p.cast())
}

/// The sum of the 8 lanes.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
}
