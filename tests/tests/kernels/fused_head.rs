//! The fused output projection + selective log-softmax (`stepgrpo_shaders::head_log_probs`) on
//! lavapipe against the chunked matmul + generic log-softmax on the CPU, and through
//! `core::logprobs` on the fixture models: untracked (the fused kernel) against tracked (today's
//! chunked logits).
//!
//! Tolerance: 1e-4 relative to the row's logit scale, `|kernel - generic| <= 1e-4 (1 + max |z|)`
//! for log-probs and entropies alike: both sides sum d products in f32 in different orders, an
//! error that grows with the logits' magnitude, which the extreme rows push to thousands.

use burn::module::Module;
use burn::tensor::{DType, Device, Distribution, Int, Tensor, TensorData};
use stepgrpo_core::logprobs::token_log_probs;
use stepgrpo_core::model::{self, CausalLm};
use stepgrpo_shaders::{self as shaders, generic};
use stepgrpo_tests::{fixture, seeded};

use super::{on_cpu, on_cpu_int, vec1, wgpu};

const TOL: f32 = 1e-4;

/// Hidden states [n, d] whose rows sit at very different scales (ordinary, extreme, tiny), a
/// weight [v, d], and ids with 0 and v - 1 among them.
fn inputs(
    n: usize,
    v: usize,
    d: usize,
    seed: u64,
    device: &Device,
) -> (Tensor<2>, Tensor<2>, Tensor<1, Int>) {
    let normal = |shape: [usize; 2]| Tensor::<2>::random(shape, Distribution::Normal(0.0, 1.0), device);
    let (h, w) = seeded(device, seed, || (normal([n, d]), normal([v, d])));
    let scale: Vec<f32> = (0..n).map(|r| [1.0, 300.0, 1e-3, 1.0][r % 4]).collect();
    let h = h * Tensor::<1>::from_data(TensorData::new(scale, [n]), device).reshape([n, 1]);
    let ids: Vec<i64> = (0..n)
        .map(|r| match r {
            0 => 0,
            1 => v as i64 - 1,
            _ => ((r * 7919 + 13) % v) as i64,
        })
        .collect();
    (h, w, Tensor::from_data(TensorData::new(ids, [n]), device))
}

/// Each row's largest |logit| on the CPU, with `w` widened to f32.
fn logit_scale(h: &Tensor<2>, w: &Tensor<2>, temperature: f32) -> Vec<f32> {
    let z = generic::matmul_nt(on_cpu(h.clone()), on_cpu(w.clone()).cast(DType::F32)) / temperature;
    let [n, _] = z.dims();
    vec1(z.abs().max_dim(1).reshape([n]))
}

/// The largest error relative to each row's logit scale, after checking it against [`TOL`].
fn check(what: &str, kernel: &[f32], generic: &[f32], scale: &[f32]) -> f32 {
    assert_eq!(kernel.len(), generic.len(), "{what}: lengths");
    let mut worst = 0f32;
    for (i, ((k, g), s)) in kernel.iter().zip(generic).zip(scale).enumerate() {
        let err = (k - g).abs() / (1.0 + s);
        assert!(err <= TOL, "{what}[{i}]: kernel {k} vs generic {g} (logit scale {s})");
        worst = worst.max(err);
    }
    worst
}

/// Kernel on the wgpu device against the generic path on the CPU; returns the worst relative error.
fn compare(what: &str, h: Tensor<2>, w: Tensor<2>, ids: Tensor<1, Int>, temperature: f32) -> f32 {
    assert!(shaders::head_log_probs_is_fused(&h, &w), "{what}: the fused kernel runs");
    let scale = logit_scale(&h, &w, temperature);
    let k = shaders::head_log_probs(h.clone(), w.clone(), ids.clone(), temperature);
    let (h, w, ids) = (on_cpu(h), on_cpu(w).cast(DType::F32), on_cpu_int(ids));
    assert!(!shaders::head_log_probs_is_fused(&h, &w), "the CPU runs the chunked path");
    let g = generic::head_log_probs(h, w, ids, temperature);
    let lp = check(&format!("logp {what}"), &vec1(k.log_probs), &vec1(g.log_probs), &scale);
    let ent = check(&format!("entropy {what}"), &vec1(k.entropy), &vec1(g.entropy), &scale);
    eprintln!("{what}: worst error / (1 + max |z|): log-prob {lp:.2e}, entropy {ent:.2e}");
    lp.max(ent)
}

/// N below, past and far past a block of 64 rows (and past one launch of 65,536), V past a tile
/// of 512 ids (and below one), d odd and past 4096, temperatures other than 1, rows of logits in
/// the thousands, ids 0 and V - 1.
#[test]
fn fused_head_matches_the_chunked_path() {
    let gpu = wgpu();
    let cases = [
        (1, 1000, 64, 1.0),
        (33, 1000, 4099, 0.7),
        (7, 257, 37, 1.3),
        (5, 24, 8, 1.0),
        (3, 151_936, 5, 1.0),
        (70, 151_939, 19, 0.6),
        // More rows than one launch takes (65,536 at this vocabulary): two launches.
        (65_541, 24, 3, 0.9),
    ];
    for (seed, &(n, v, d, t)) in cases.iter().enumerate() {
        let (h, w, ids) = inputs(n, v, d, seed as u64, &gpu);
        compare(&format!("[{n}, {d}] x [{v}, {d}]^T / {t}"), h, w, ids, t);
    }
}

/// The weight in place whatever its layout: a [d, V] buffer seen transposed (what an optimizer
/// step leaves in an untied head), and f16 (a half checkpoint on an adapter with shader-f16),
/// against the same values widened to f32.
#[test]
fn fused_head_reads_transposed_and_f16_weights() {
    let gpu = wgpu();
    let (n, v, d, t) = (9, 1001, 45, 0.8);
    let (h, w, ids) = inputs(n, v, d, 40, &gpu);
    let buffer = Tensor::<2>::from_data(w.clone().transpose().into_data(), &gpu);
    compare("[d, V] buffer transposed", h.clone(), buffer.clone().transpose(), ids.clone(), t);
    if gpu.supports_dtype(DType::F16) {
        compare("f16 weight", h.clone(), w.cast(DType::F16), ids.clone(), t);
        compare("f16 [d, V] buffer transposed", h, buffer.cast(DType::F16).transpose(), ids, t);
    } else {
        eprintln!("no shader-f16 on this adapter: f16 weights take the chunked path");
        assert!(!shaders::head_log_probs_is_fused(&h, &w.cast(DType::F16)));
    }
}

/// Tracked hidden states take the chunked path (and get their gradient); untracked autodiff
/// tensors are fused and come back as autodiff constants.
#[test]
fn fused_head_leaves_gradients_to_the_chunked_path() {
    let gpu = wgpu();
    let (h, w, ids) = inputs(6, 300, 16, 50, &gpu);
    let plain = vec1(shaders::head_log_probs(h.clone(), w.clone(), ids.clone(), 1.0).log_probs);

    let (ha, wa) = (h.clone().autodiff(), w.clone().autodiff());
    assert!(shaders::head_log_probs_is_fused(&ha, &wa));
    let out = shaders::head_log_probs(ha, wa.clone(), ids.clone(), 1.0);
    assert!(out.log_probs.is_autodiff() && !out.log_probs.is_tracked());
    assert_eq!(vec1(out.log_probs.inner()), plain);

    let tracked = h.autodiff().require_grad();
    assert!(!shaders::head_log_probs_is_fused(&tracked, &wa));
    let out = shaders::head_log_probs(tracked.clone(), wa, ids.clone(), 1.0);
    let scale = logit_scale(&tracked.clone().inner(), &w, 1.0);
    check("tracked logp", &vec1(out.log_probs.clone().inner()), &plain, &scale);
    let grads = out.log_probs.sum().backward();
    assert!(tracked.grad(&grads).is_some(), "the chunked path's backward reaches the hidden states");
}

fn tokens(device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>) {
    let inputs: Vec<i64> = (0..3 * 11).map(|i| (i * 37 % 384) as i64).collect();
    let targets: Vec<i64> = (0..3 * 11).map(|i| ((i * 53 + 5) % 384) as i64).collect();
    let make = |v: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(v, [3, 11]), device);
    (make(inputs), make(targets))
}

/// What `output_weight` gives `core::logprobs` for a model: the fused kernel's weight.
fn head_weight(model: &CausalLm) -> Tensor<2> {
    match &model.lm_head {
        Some(head) => head.weight.val().transpose(),
        None => model.embed_tokens.weight.val(),
    }
}

/// Through `core::logprobs::token_log_probs` on wgpu: the KL reference's and sampling policy's
/// log-probs (an inner model, untracked: fused) equal the trainable policy's (tracked: chunked
/// logits) on a tied f32 model and an untied one kept in f16 (bf16 checkpoint, shader-f16).
#[test]
fn untracked_token_log_probs_are_fused_and_equal_the_tracked_ones() {
    let gpu = wgpu().autodiff();
    for name in ["qwen3-tiny", "llama-tiny-bf16"] {
        let model = model::load(&fixture(&format!("hf/{name}")), &gpu).unwrap();
        let valid = model.valid();
        let (inputs, targets) = tokens(&gpu);
        let hidden = model.hidden(inputs.clone()).reshape([33, 64]);
        assert!(!shaders::head_log_probs_is_fused(&hidden, &head_weight(&model)), "{name}: tracked");
        let inner_hidden = valid.hidden(inputs.clone().inner()).reshape([33, 64]);
        let fused_weight = head_weight(&valid);
        assert!(shaders::head_log_probs_is_fused(&inner_hidden, &fused_weight), "{name}: untracked");

        let t = 0.7;
        let tracked = token_log_probs(&model, inputs.clone(), targets.clone(), t);
        let fused = token_log_probs(&valid, inputs.inner(), targets.inner(), t);
        let scale = logit_scale(&inner_hidden, &fused_weight, t as f32);
        let flat = |x: Tensor<2>| vec1(x.inner().reshape([33]));
        let what = format!("{name} ({:?} head)", fused_weight.dtype());
        let lp = check(&what, &flat(fused.log_probs), &flat(tracked.log_probs), &scale);
        let ent = check(&what, &flat(fused.entropy), &flat(tracked.entropy), &scale);
        eprintln!("{what}: untracked vs tracked, worst error / (1 + max |z|): {lp:.2e}, {ent:.2e}");
    }
}
