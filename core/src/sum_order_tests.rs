//! Why the CPU backend's numbers depend on the machine (docs/results.md, "Why a run depends on
//! the machine"): burn-flex sums f32 values with macerator's SIMD, 8 accumulators of one register
//! each, combined in a tree, then the register's lanes halved in a tree. A register holds 4 f32 with
//! SSE4, 8 with AVX2 and 16 with AVX-512, so the same inputs are added in another order on each,
//! and the sum differs in its last bits. RMSNorm's mean of squares is such a sum.

use burn::tensor::{Device, Tensor};

use crate::rng::Rng;

/// burn-flex's summation order (macerator's `sum_body`) with `lanes` f32 per register, in scalar
/// code: 8 accumulators over strides of 8 registers, the accumulators added as a tree, the remaining
/// whole registers added in, the lanes added as a halving tree, then the scalar tail.
fn simd_sum(xs: &[f32], lanes: usize) -> f32 {
    let add = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x + y).collect::<Vec<f32>>();
    let mut acc = vec![vec![0.0f32; lanes]; 8];
    let mut rest = xs;
    while rest.len() >= 8 * lanes {
        for (j, a) in acc.iter_mut().enumerate() {
            *a = add(a, &rest[j * lanes..(j + 1) * lanes]);
        }
        rest = &rest[8 * lanes..];
    }
    let pair = |i: usize| add(&acc[i], &acc[i + 1]);
    let mut sum = add(&add(&pair(0), &pair(2)), &add(&pair(4), &pair(6)));
    while rest.len() >= lanes {
        sum = add(&sum, &rest[..lanes]);
        rest = &rest[lanes..];
    }
    while sum.len() > 1 {
        let half = sum.len() / 2;
        sum = add(&sum[..half], &sum[half..]);
    }
    sum[0] + rest.iter().sum::<f32>()
}

/// f32 lanes of the register macerator picks on this machine, where that is certain.
fn detected_lanes() -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") || has!("avx512bw") || has!("avx512cd") || has!("avx512dq") || has!("avx512vl") {
            // AVX-512 (16 lanes) under macerator's V4; not checked here, on an AVX2 machine.
            return None;
        }
        if has!("avx2") && has!("fma") {
            return Some(8);
        }
    }
    None
}

/// The squares of 128 activations (hidden size 128, the built-in model's), as RMSNorm sums them:
/// those of the first seed whose sums in the AVX2 and the AVX-512 orders differ (most do).
fn squares() -> (u64, Vec<f32>) {
    let draw = |seed| {
        let mut rng = Rng::new(seed);
        (0..128).map(|_| ((rng.uniform() * 2.0 - 1.0) as f32 * 1.7).powi(2)).collect::<Vec<f32>>()
    };
    (0..).map(|seed| (seed, draw(seed))).find(|(_, xs)| simd_sum(xs, 8) != simd_sum(xs, 16)).unwrap()
}

#[test]
fn flex_sums_in_the_order_of_the_machines_simd_width() {
    let (seed, xs) = squares();
    let flex: f32 = Tensor::<1>::from_floats(xs.as_slice(), &Device::flex()).sum().into_scalar();
    let (sse, avx2, avx512) = (simd_sum(&xs, 4), simd_sum(&xs, 8), simd_sum(&xs, 16));
    let exact: f64 = xs.iter().map(|&x| f64::from(x)).sum();
    println!(
        "sum of 128 squares (seed {seed}): flex {flex:e} ({:#010x}); emulated SSE {sse:e} ({:#010x}), AVX2 {avx2:e} \
         ({:#010x}), AVX-512 {avx512:e} ({:#010x}); f64 {exact:e}",
        flex.to_bits(),
        sse.to_bits(),
        avx2.to_bits(),
        avx512.to_bits()
    );
    // The orders give different bits for the same inputs, each within rounding of the exact sum.
    assert!(seed < 16, "most inputs tell the two orders apart; the first {seed} did not");
    for s in [sse, avx2, avx512] {
        assert!((f64::from(s) - exact).abs() < 1e-5 * exact, "{s} vs {exact}");
    }
    if let Some(lanes) = detected_lanes() {
        assert_eq!(flex.to_bits(), simd_sum(&xs, lanes).to_bits(), "burn-flex sums with {lanes} lanes");
    }
}
