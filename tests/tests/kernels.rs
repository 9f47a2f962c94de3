//! Parity of the WGSL kernels (on the wgpu device: lavapipe in CI) with their generic burn versions
//! on the CPU, where the product runs them, forward and backward, on random inputs of awkward
//! sizes; plus checks of what each computes against references written out on the host. At the
//! end, the CPU kernel (`matmul_nt`) against burn's matmul on the CPU.

use burn::tensor::{DType, Device, Distribution, Int, Tensor, TensorData};
use stepgrpo_core::pretrained::Pretrained;
use stepgrpo_shaders::{self as shaders, AdvantageScale, SamplingParams, generic};
use stepgrpo_tests::{devices, fixture};

// The fused output projection + log-softmax, with this file's helpers.
mod fused_head;

fn wgpu() -> Device {
    let (name, device) = devices().pop().expect("the wgpu device");
    assert_eq!(name, "wgpu");
    assert!(shaders::has_kernels(&device), "the wgpu device runs the kernels");
    assert!(!shaders::has_kernels(&Device::flex()), "the CPU runs the generic versions");
    device
}

fn vec1(t: Tensor<1>) -> Vec<f32> {
    t.try_into_vec_as::<f32>().unwrap()
}

fn ids1(t: Tensor<1, Int>) -> Vec<i64> {
    t.try_into_vec_as::<i64>().unwrap()
}

fn assert_close(what: &str, a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let ok = (x.is_nan() && y.is_nan()) || (x - y).abs() <= tol * (1.0 + x.abs().max(y.abs()));
        assert!(ok, "{what}[{i}]: kernel {x} vs generic {y}");
    }
}

/// Logits [n, v] with rows at very different scales: ordinary, huge, tiny, and one with -inf entries.
fn logits(n: usize, v: usize, seed: u64, device: &Device) -> Tensor<2> {
    device.seed(seed);
    let x = Tensor::<2>::random([n, v], Distribution::Normal(0.0, 3.0), device);
    let scale: Vec<f32> = (0..n).map(|r| [1.0, 1e3, 1e-4, 1.0][r % 4]).collect();
    let x = x * Tensor::<1>::from_data(TensorData::new(scale, [n]), device).reshape([n, 1]);
    let mut mask = vec![0.0f32; n * v];
    for r in (3..n).step_by(4) {
        for c in (0..v).step_by(3) {
            mask[r * v + c] = f32::NEG_INFINITY;
        }
    }
    x + Tensor::<2>::from_data(TensorData::new(mask, [n, v]), device)
}

fn random_ids(n: usize, v: usize, device: &Device) -> Tensor<1, Int> {
    // Avoid the masked columns (multiples of 3) so every chosen log-prob is finite.
    let ids: Vec<i64> = (0..n)
        .map(|r| ((r * 7919 + 13) % v) as i64)
        .map(|i| if i % 3 == 0 { (i + 1) % v as i64 } else { i })
        .collect();
    Tensor::from_data(TensorData::new(ids, [n]), device)
}

/// The same tensor on the CPU, where the generic versions run in the product.
fn on_cpu<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    t.to_device(&Device::flex())
}

fn on_cpu_int<const D: usize>(t: Tensor<D, Int>) -> Tensor<D, Int> {
    t.to_device(&Device::flex())
}

const SIZES: [(usize, usize); 4] = [(1, 1000), (7, 257), (5, 24), (4, 151_936)];

#[test]
fn selective_log_softmax_forward_and_backward_match_generic() {
    let gpu = wgpu();
    for (seed, &(n, v)) in SIZES.iter().enumerate() {
        let x = logits(n, v, seed as u64, &gpu);
        let ids = random_ids(n, v, &gpu);
        let weights = Tensor::<1>::random([n], Distribution::Uniform(-1.0, 1.0), &gpu);
        let run = |x: Tensor<2>, ids: Tensor<1, Int>, weights: Tensor<1>, kernel: bool| {
            let x = x.autodiff().require_grad();
            let out = if kernel {
                shaders::selective_log_softmax(x.clone(), ids)
            } else {
                generic::selective_log_softmax(x.clone(), ids)
            };
            let grads = (out.log_probs.clone() * weights.autodiff()).sum().backward();
            let grad = x.grad(&grads).expect("logits get a gradient");
            (vec1(out.log_probs.inner()), vec1(out.entropy.inner()), grad.try_into_vec_as::<f32>().unwrap())
        };
        let (lp_k, ent_k, grad_k) = run(x.clone(), ids.clone(), weights.clone(), true);
        let (lp_g, ent_g, grad_g) = run(on_cpu(x), on_cpu_int(ids), on_cpu(weights), false);
        assert_close(&format!("logp [{n}, {v}]"), &lp_k, &lp_g, 1e-4);
        assert_close(&format!("entropy [{n}, {v}]"), &ent_k, &ent_g, 1e-3);
        assert_close(&format!("grad [{n}, {v}]"), &grad_k, &grad_g, 1e-5);
    }
}

#[test]
fn selective_log_softmax_matches_a_hand_computation() {
    let device = wgpu();
    let x = Tensor::<2>::from_floats([[0.0, (3.0f32).ln()], [2.0, 2.0]], &device);
    let ids = Tensor::<1, Int>::from_ints([1, 0], &device);
    let out = shaders::selective_log_softmax(x, ids);
    assert_close("logp", &vec1(out.log_probs), &[0.75f32.ln(), 0.5f32.ln()], 1e-6);
    let h0 = -(0.25f32 * 0.25f32.ln() + 0.75 * 0.75f32.ln());
    assert_close("entropy", &vec1(out.entropy), &[h0, 2.0f32.ln()], 1e-6);
}

fn uniforms(n: usize, seed: u64, device: &Device) -> Tensor<1> {
    device.seed(seed);
    // Every fifth row negative: greedy rows mixed with sampled ones.
    let u = Tensor::<1>::random([n], Distribution::Uniform(0.0, 1.0), device);
    let greedy: Vec<f32> = (0..n).map(|r| if r % 5 == 4 { -2.0 } else { 0.0 }).collect();
    u + Tensor::<1>::from_data(TensorData::new(greedy, [n]), device)
}

/// Whether `pick` inverts the kept distribution of `row` at `u`, computed in f64 on the host: the
/// kept mass before it is at most u * total and with it more than u * total, up to `tol` * total.
fn inverts(row: &[f32], u: f32, p: SamplingParams, pick: usize, tol: f64) -> bool {
    let mut sorted = row.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let m = sorted[0] as f64;
    let weight = |x: f32| ((x as f64 - m) / p.temperature as f64).exp();
    let mut tau = *sorted.last().unwrap();
    if p.top_k > 0 && p.top_k < row.len() {
        tau = sorted[p.top_k - 1];
    }
    if p.top_p < 1.0 {
        let total: f64 = sorted.iter().filter(|&&x| x >= tau).map(|&x| weight(x)).sum();
        let mut acc = 0.0;
        for &x in &sorted {
            acc += weight(x);
            if acc >= p.top_p as f64 * total {
                tau = x;
                break;
            }
        }
    }
    let kept = |x: f32| if x >= tau { weight(x) } else { 0.0 };
    let total: f64 = row.iter().map(|&x| kept(x)).sum();
    let before: f64 = row[..pick].iter().map(|&x| kept(x)).sum();
    let goal = u as f64 * total;
    row[pick] >= tau && before <= goal + tol * total && before + kept(row[pick]) > goal - tol * total
}

#[test]
fn sampling_matches_generic() {
    let gpu = wgpu();
    let configs = [
        SamplingParams { temperature: 0.0, top_k: 0, top_p: 1.0, vocab_limit: None },
        SamplingParams { temperature: 1.0, top_k: 0, top_p: 1.0, vocab_limit: None },
        SamplingParams { temperature: 0.7, top_k: 5, top_p: 1.0, vocab_limit: None },
        SamplingParams { temperature: 0.6, top_k: 0, top_p: 0.9, vocab_limit: None },
        SamplingParams { temperature: 1.3, top_k: 40, top_p: 0.5, vocab_limit: None },
        SamplingParams { temperature: 1.0, top_k: 1_000_000, top_p: 0.999, vocab_limit: None },
        SamplingParams { temperature: 0.8, top_k: 0, top_p: 0.95, vocab_limit: Some(20) },
    ];
    for (seed, &(n, v)) in [(1, 1000), (37, 257), (64, 24), (3, 151_936)].iter().enumerate() {
        // Moderate scales: sampling from 1e3-scaled logits is greedy and tests nothing new.
        gpu.seed(seed as u64);
        let x = Tensor::<2>::random([n, v], Distribution::Normal(0.0, 2.0), &gpu);
        let u = uniforms(n, 100 + seed as u64, &gpu);
        let (host, us) = (x.clone().try_into_vec_as::<f32>().unwrap(), vec1(u.clone()));
        for params in configs {
            let k = shaders::sample(x.clone(), u.clone(), params);
            let g = generic::sample(on_cpu(x.clone()), on_cpu(u.clone()), params);
            let (ids_k, ids_g) = (ids1(k.ids), ids1(g.ids));
            let what = format!("[{n}, {v}] with {params:?}");
            if v <= 1000 {
                assert_eq!(ids_k, ids_g, "ids of {what}");
            }
            let same: Vec<usize> = (0..n).filter(|&r| ids_k[r] == ids_g[r]).collect();
            let (lp_k, lp_g) = (vec1(k.log_probs), vec1(g.log_probs));
            let pick = |lp: &[f32]| same.iter().map(|&r| lp[r]).collect::<Vec<_>>();
            assert_close(&format!("logp {what}"), &pick(&lp_k), &pick(&lp_g), 1e-5);
            // Over 151,936 tokens the f32 running sums differ by a few ids; both must invert the
            // distribution computed in f64.
            for r in (0..n).filter(|&r| us[r] >= 0.0 && !params.is_greedy()) {
                let row = &host[r * v..r * v + params.limit(v)];
                assert!(inverts(row, us[r], params, ids_k[r] as usize, 1e-6), "kernel, row {r} of {what}");
                assert!(inverts(row, us[r], params, ids_g[r] as usize, 1e-4), "generic, row {r} of {what}");
            }
        }
    }
}

/// Ids past the limit (an embedding's padding rows) are never drawn, even when their logits are
/// the largest, and the log-prob is still the softmax over every logit (what training computes).
#[test]
fn sampling_never_draws_past_the_vocab_limit() {
    let configs = [
        SamplingParams { temperature: 0.0, top_k: 0, top_p: 1.0, vocab_limit: None },
        SamplingParams { temperature: 1.0, top_k: 0, top_p: 1.0, vocab_limit: None },
        SamplingParams { temperature: 0.6, top_k: 0, top_p: 0.9, vocab_limit: None },
        SamplingParams { temperature: 1.0, top_k: 5, top_p: 1.0, vocab_limit: None },
    ];
    for (device, (n, v, limit)) in
        [(wgpu(), (40, 300, 267)), (Device::flex(), (40, 300, 267)), (wgpu(), (4, 151_936, 151_669))]
    {
        device.seed(7);
        let x = Tensor::<2>::random([n, v], Distribution::Normal(0.0, 1.0), &device);
        // The padding rows' logits dwarf every real one.
        let pad = Tensor::<2>::ones([n, v - limit], &device) * 50.0;
        let x = x.slice_assign([0..n, limit..v], pad);
        let host = x.clone().try_into_vec_as::<f32>().unwrap();
        let u = uniforms(n, 11, &device);
        for params in configs {
            let params = SamplingParams { vocab_limit: Some(limit), ..params };
            let out = shaders::sample(x.clone(), u.clone(), params);
            let (ids, lp) = (ids1(out.ids), vec1(out.log_probs));
            for r in 0..n {
                let row = &host[r * v..(r + 1) * v];
                let id = ids[r] as usize;
                assert!(id < limit, "{params:?}: row {r} drew {id}, past {limit}");
                let m = row.iter().fold(f32::MIN, |a, &b| a.max(b)) as f64;
                let lse = m + row.iter().map(|&y| (y as f64 - m).exp()).sum::<f64>().ln();
                assert!(
                    (lp[r] as f64 - (row[id] as f64 - lse)).abs() < 1e-4,
                    "{params:?}: log-prob of row {r}"
                );
            }
        }
        // A limit of 0 still leaves one id to draw.
        let zero = SamplingParams { temperature: 1.0, top_k: 0, top_p: 1.0, vocab_limit: Some(0) };
        assert!(ids1(shaders::sample(x, u, zero).ids).iter().all(|&id| id == 0));
    }
}

/// With uniforms on an even grid, each token's share of the samples is its probability (within
/// one sample): the sampler inverts the right distribution, not only the generic one.
#[test]
fn sampling_follows_the_kept_distribution() {
    for device in [wgpu(), Device::flex()] {
        let n = 2000;
        let row = [1.0f32, 3.0, 0.5, 2.0, -1.0, 3.0];
        let x = Tensor::<1>::from_floats(row, &device).reshape([1, 6]).repeat_dim(0, n);
        let grid: Vec<f32> = (0..n).map(|i| (i as f32 + 0.5) / n as f32).collect();
        let u = Tensor::<1>::from_data(TensorData::new(grid, [n]), &device);
        // Top-3 keeps the logits >= 2.0 (ids 1, 3, 5); temperature 0.5 doubles them.
        let params = SamplingParams { temperature: 0.5, top_k: 3, top_p: 1.0, vocab_limit: None };
        let ids = ids1(shaders::sample(x, u, params).ids);
        let w: Vec<f64> = [6.0f64, 4.0, 6.0].iter().map(|x| x.exp()).collect();
        let total: f64 = w.iter().sum();
        for (id, wi) in [1i64, 3, 5].iter().zip(&w) {
            let count = ids.iter().filter(|&&i| i == *id).count() as f64;
            assert!((count - wi / total * n as f64).abs() <= 1.0, "id {id}: {count} of {n}");
        }
        assert!(ids.iter().all(|i| [1, 3, 5].contains(i)), "only kept ids are drawn");
    }
}

#[test]
fn probe_confidence_matches_generic_and_the_definition() {
    let device = wgpu();
    for (seed, &(n, t, v)) in [(1, 5, 1000), (9, 3, 257), (6, 1, 24), (2, 4, 151_936)].iter().enumerate() {
        device.seed(seed as u64);
        let x = Tensor::<3>::random([n, t, v], Distribution::Normal(0.0, 4.0), &device);
        let lengths: Vec<i64> = (0..n).map(|r| (r % (t + 2)) as i64).collect();
        let len = Tensor::<1, Int>::from_data(TensorData::new(lengths.clone(), [n]), &device);
        let k = vec1(shaders::probe_confidence(x.clone(), len.clone()));
        let g = vec1(generic::probe_confidence(on_cpu(x.clone()), on_cpu_int(len)));
        assert_close(&format!("confidence [{n}, {t}, {v}]"), &k, &g, 1e-5);
        // The definition, on the host: exp(mean of log max softmax over tokens 1..len).
        let host = x.try_into_vec_as::<f32>().unwrap();
        for r in 0..n {
            let len = (lengths[r] as usize).min(t);
            let want = if len < 2 {
                0.0
            } else {
                let lp: f64 = (1..len)
                    .map(|s| {
                        let row = &host[(r * t + s) * v..(r * t + s + 1) * v];
                        let m = row.iter().copied().fold(f32::MIN, f32::max) as f64;
                        -row.iter().map(|&y| (y as f64 - m).exp()).sum::<f64>().ln()
                    })
                    .sum();
                (lp / (len - 1) as f64).exp()
            };
            assert!((k[r] as f64 - want).abs() < 1e-4, "row {r}: {} vs {want}", k[r]);
        }
    }
}

#[test]
fn group_advantages_match_generic_and_the_definition() {
    let device = wgpu();
    // Interleaved groups, a group of one (7) and a group with equal rewards (5).
    let rewards = [1.0f32, 0.0, 5.0, 0.0, 5.0, 7.0, 0.5, -1.5];
    let groups = [0i64, 0, 5, 0, 5, 7, 2, 2];
    let r = Tensor::<1>::from_floats(rewards, &device);
    let g = Tensor::<1, Int>::from_data(TensorData::new(groups.to_vec(), [8]), &device);
    for scale in [AdvantageScale::Group, AdvantageScale::Batch, AdvantageScale::None] {
        let k = vec1(shaders::group_advantages(r.clone(), g.clone(), scale));
        let reference = vec1(generic::group_advantages(on_cpu(r.clone()), on_cpu_int(g.clone()), scale));
        assert_close(&format!("{scale:?}"), &k, &reference, 1e-5);
        assert_eq!((k[2], k[4], k[5]), (0.0, 0.0, 0.0), "{scale:?}: equal rewards and lone responses get 0");
    }
    let k = vec1(shaders::group_advantages(r, g, AdvantageScale::Group));
    let std = (1.0f32 / 3.0).sqrt() + 1e-6;
    assert_close("group 0", &k[..2], &[(2.0 / 3.0) / std, (-1.0 / 3.0) / std], 1e-5);

    // Many groups of 16 at random, on the N = 1 edge too.
    for n in [1usize, 16 * 33 + 5] {
        device.seed(n as u64);
        let r = Tensor::<1>::random([n], Distribution::Normal(0.0, 1.0), &device);
        let g: Vec<i64> = (0..n).map(|i| ((i * 31) % 34) as i64).collect();
        let g = Tensor::<1, Int>::from_data(TensorData::new(g, [n]), &device);
        let k = vec1(shaders::group_advantages(r.clone(), g.clone(), AdvantageScale::Group));
        let reference = vec1(generic::group_advantages(on_cpu(r), on_cpu_int(g), AdvantageScale::Group));
        assert_close(&format!("n = {n}"), &k, &reference, 1e-4);
    }
}

/// Whether this CPU runs `matmul_nt`'s kernel (x86-64 with AVX2, FMA and F16C). Elsewhere every
/// product is burn's, and the parity below holds trivially.
fn cpu_kernel() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
        && std::is_x86_feature_detected!("f16c");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

fn vec2(t: Tensor<2>) -> Vec<f32> {
    t.try_into_vec_as::<f32>().unwrap()
}

#[test]
fn matmul_nt_matches_burn_on_the_cpu() {
    let cpu = Device::flex();
    let mut seed = 0;
    // k = 1003 leaves a tail of 3 columns past the 8-wide chunks; n = 257 a block of one row;
    // m = 17 two full groups of 8 rows and one of 1; m = 33 is past the kernel's limit.
    for m in [1, 3, 8, 17, 32, 33] {
        for k in [24, 512, 1000, 1003] {
            for n in [1, 257, 5000] {
                seed += 1;
                cpu.seed(seed);
                let x = Tensor::<2>::random([m, k], Distribution::Normal(0.0, 1.0), &cpu);
                let w = Tensor::<2>::random([n, k], Distribution::Normal(0.0, 1.0), &cpu);
                let what = format!("[{m}, {k}] x [{n}, {k}]^T");
                assert_eq!(shaders::matmul_nt_is_streamed(&x, &w), cpu_kernel() && m <= 32, "{what}");
                let got = shaders::matmul_nt(x.clone(), w.clone());
                assert_eq!(got.dims(), [m, n], "{what}");
                assert_close(&what, &vec2(got), &vec2(generic::matmul_nt(x, w)), 1e-4);
            }
        }
    }
}

/// A weight kept in bf16 or f16 is read as it is stored, and gives the product of its values
/// widened to f32 (the same numbers burn multiplies after a cast).
#[test]
fn matmul_nt_reads_half_precision_weights_in_place() {
    let cpu = Device::flex();
    cpu.seed(21);
    for dtype in [DType::BF16, DType::F16] {
        for (m, k, n) in [(1, 24, 257), (8, 1003, 300), (17, 512, 129)] {
            let x = Tensor::<2>::random([m, k], Distribution::Normal(0.0, 1.0), &cpu);
            let w = Tensor::<2>::random([n, k], Distribution::Normal(0.0, 1.0), &cpu).cast(dtype);
            let what = format!("{dtype:?} [{m}, {k}] x [{n}, {k}]^T");
            assert_eq!(shaders::matmul_nt_is_streamed(&x, &w), cpu_kernel(), "{what}");
            let want = vec2(x.clone().matmul(w.clone().cast(DType::F32).transpose()));
            assert_close(&what, &vec2(shaders::matmul_nt(x.clone(), w.clone())), &want, 1e-4);
            assert_close(&what, &vec2(generic::matmul_nt(x, w)), &want, 1e-4);
        }
    }
}

#[test]
fn matmul_nt_reads_views_and_leaves_autodiff_to_burn() {
    let cpu = Device::flex();
    cpu.seed(11);
    let (m, k, n) = (5, 96, 300);
    let w = Tensor::<2>::random([n, k], Distribution::Normal(0.0, 1.0), &cpu);
    // A non-contiguous x (copied: it is small) is streamed; so is the [out, in] buffer behind a
    // burn `Linear` weight loaded from a checkpoint (a transposed view, transposed back).
    let x = Tensor::<2>::random([k, m], Distribution::Normal(0.0, 1.0), &cpu).transpose();
    let linear = Tensor::<2>::from_data(w.clone().into_data(), &cpu).transpose();
    assert_eq!(shaders::matmul_nt_is_streamed(&x, &linear.clone().transpose()), cpu_kernel());
    let want = vec2(generic::matmul_nt(x.clone(), w.clone()));
    assert_close("x view", &vec2(shaders::matmul_nt(x.clone(), linear.clone().transpose())), &want, 1e-4);
    // A strided w is left to burn (the kernel would have to copy it).
    let strided = Tensor::<2>::random([k, n], Distribution::Normal(0.0, 1.0), &cpu).transpose();
    assert!(!shaders::matmul_nt_is_streamed(&x, &strided));
    let got = vec2(shaders::matmul_nt(x.clone(), strided.clone()));
    assert_close("strided w", &got, &vec2(generic::matmul_nt(x.clone(), strided)), 1e-4);
    // Autodiff must record the op: burn's, with the same gradients.
    let run = |streamed_fn: bool| {
        let (xa, wa) = (x.clone().autodiff().require_grad(), w.clone().autodiff().require_grad());
        assert!(!shaders::matmul_nt_is_streamed(&xa, &wa));
        let y = if streamed_fn {
            shaders::matmul_nt(xa.clone(), wa.clone())
        } else {
            generic::matmul_nt(xa.clone(), wa.clone())
        };
        let grads = (y.clone() * y).sum().backward();
        (vec2(xa.grad(&grads).unwrap()), vec2(wa.grad(&grads).unwrap()))
    };
    let ((gx, gw), (hx, hw)) = (run(true), run(false));
    assert_close("grad x", &gx, &hx, 1e-5);
    assert_close("grad w", &gw, &hw, 1e-5);
}

/// Decoding on the CPU streams the output projection, tied (the embedding) or not (the
/// checkpoint's lm_head); `hf_parity` checks those logits and greedy ids against transformers.
#[test]
fn cpu_decoding_streams_the_output_projection() {
    let cpu = Device::flex();
    for (name, tied) in [("qwen3-tiny", true), ("llama-tiny-bf16", false)] {
        let model = Pretrained::load(&fixture(&format!("hf/{name}")), &cpu).unwrap().model;
        assert_eq!(model.lm_head.is_none(), tied, "{name}");
        let w = match &model.lm_head {
            Some(head) => head.weight.val().transpose(),
            None => model.embed_tokens.weight.val(),
        };
        let h = Tensor::<2>::zeros([8, model.config.hidden_size], &cpu);
        assert_eq!(shaders::matmul_nt_is_streamed(&h, &w), cpu_kernel(), "{name}");
    }
}
