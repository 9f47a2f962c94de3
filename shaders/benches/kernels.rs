//! Each kernel against its generic burn version, on the same inputs and the same wgpu device (the
//! CPU one for `matmul_nt`): median wall time over 7 runs on distinct inputs (reading the small
//! results back, as the trainer does), and for the selective log-softmax the device memory its
//! autodiff graph keeps between forward and backward beyond the logits themselves.
//!
//! `cargo bench -p stepgrpo-shaders [-- FILTER]` (needs a wgpu adapter; lavapipe works); FILTER
//! runs only the sections whose name contains it: `matmul_nt`, `selective_log_softmax`,
//! `probe_confidence`, `group_advantages`, `sample`, `fused_head`. Sizes are a Qwen3 vocabulary
//! (151,936) and a GRPO micro-batch of 128 tokens (`STEPGRPO_BENCH_ROWS` changes it; one storage
//! binding holds at most 128 MiB by default, 220 rows of that vocabulary).

use std::time::Instant;

use burn::tensor::{DType, Device, Distribution, Int, Tensor, TensorData};
use stepgrpo_shaders::{self as shaders, AdvantageScale, SamplingParams, generic};

const VOCAB: usize = 151_936;
const RUNS: usize = 7;

/// Median seconds of `kernel(i)` and of `generic(i)` over [`RUNS`] runs on distinct inputs `i`,
/// alternated so that a noisy machine slows both alike, after one warm-up each (shader compilation,
/// autotuning). Input [`RUNS`] is the warm-up's.
fn time_pair(device: &Device, mut kernel: impl FnMut(usize), mut generic: impl FnMut(usize)) -> (f64, f64) {
    let once = |f: &mut dyn FnMut(usize), i: usize| {
        device.sync().expect("device sync");
        let start = Instant::now();
        f(i);
        device.sync().expect("device sync");
        start.elapsed().as_secs_f64()
    };
    once(&mut kernel, RUNS);
    once(&mut generic, RUNS);
    let (mut k, mut g): (Vec<f64>, Vec<f64>) =
        (0..RUNS).map(|i| (once(&mut kernel, i), once(&mut generic, i))).unzip();
    k.sort_by(f64::total_cmp);
    g.sort_by(f64::total_cmp);
    (k[RUNS / 2], g[RUNS / 2])
}

fn in_use(device: &Device) -> u64 {
    device.memory_pool_usage().map_or(0, |u| u.bytes_in_use)
}

fn row(name: &str, kernel: f64, generic: f64, extra: &str) {
    println!(
        "| {name} | {:.2} ms | {:.2} ms | {:.1}x |{extra}",
        kernel * 1e3,
        generic * 1e3,
        generic / kernel
    );
}

/// The fused output projection + selective log-softmax against today's two steps (burn's matmul,
/// then the selective log-softmax kernel on the [rows, VOCAB] logits), log-probs and entropies
/// read back; with the head in f32, then in f16 (which the two steps widen to f32 first). 64
/// rows and hidden 192 by default (`STEPGRPO_BENCH_FUSED_ROWS`, `STEPGRPO_BENCH_FUSED_HIDDEN`):
/// lavapipe allocates at most 128 MiB per buffer, 220 f32 columns of a Qwen3 vocabulary.
fn fused_head(device: &Device) {
    let var = |name: &str, default| std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    let (rows, d): (usize, usize) =
        (var("STEPGRPO_BENCH_FUSED_ROWS", 64), var("STEPGRPO_BENCH_FUSED_HIDDEN", 192));
    let hidden: Vec<Tensor<2>> =
        (0..=RUNS).map(|_| Tensor::<2>::random([rows, d], Distribution::Normal(0.0, 1.0), device)).collect();
    let ids: Vec<i64> = (0..rows).map(|r| (r * 7919 % VOCAB) as i64).collect();
    let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [rows]), device);
    let read = |out: shaders::TokenLogProbs| drop((out.log_probs.into_data(), out.entropy.into_data()));
    let mut dtypes = vec![DType::F32];
    if device.supports_dtype(DType::F16) {
        dtypes.push(DType::F16);
    }
    for dtype in dtypes {
        let w = Tensor::<2>::random([VOCAB, d], Distribution::Normal(0.0, 0.05), device).cast(dtype);
        assert!(shaders::head_log_probs_is_fused(&hidden[0], &w));
        let (tk, tg) = time_pair(
            device,
            |i| read(shaders::head_log_probs(hidden[i].clone(), w.clone(), ids.clone(), 1.0)),
            |i| {
                read(shaders::selective_log_softmax(
                    shaders::matmul_nt(hidden[i].clone(), w.clone()),
                    ids.clone(),
                ))
            },
        );
        row(&format!("fused head + log-softmax [{rows}, {d}] x [{VOCAB}, {d}]^T, {dtype:?} w"), tk, tg, " |");
    }
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let device = match Device::wgpu_options().init() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("no wgpu adapter ({e}); on Linux without a GPU install mesa-vulkan-drivers");
            std::process::exit(1);
        }
    };
    if let Some(id) = device.identity() {
        println!("device: {}", id.name);
    }
    let rows: usize = std::env::var("STEPGRPO_BENCH_ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(128);
    println!("\n| operation | kernel | generic | speed-up | memory kept for backward (kernel / generic) |");
    println!("|---|---|---|---|---|");

    if wanted("matmul_nt") {
        // 0. The CPU kernel on a decode step's tied output projection (hidden 512, 8 rows), read back
        // as the sampler does. Off x86-64 with AVX2 both columns are burn's matmul.
        let cpu = Device::flex();
        let w = Tensor::<2>::random([VOCAB, 512], Distribution::Default, &cpu);
        let xs: Vec<Tensor<2>> =
            (0..=RUNS).map(|_| Tensor::<2>::random([8, 512], Distribution::Default, &cpu)).collect();
        let (tk, tg) = time_pair(
            &cpu,
            |i| drop(shaders::matmul_nt(xs[i].clone(), w.clone()).into_data()),
            |i| drop(generic::matmul_nt(xs[i].clone(), w.clone()).into_data()),
        );
        row(&format!("CPU x @ w^T, [8, 512] x [{VOCAB}, 512]^T"), tk, tg, " |");
        drop(w);
        // The same with the weight kept in half precision: the kernel widens it in registers, the
        // generic version casts it to f32 first.
        for dtype in [DType::BF16, DType::F16] {
            let w = Tensor::<2>::random([VOCAB, 512], Distribution::Default, &cpu).cast(dtype);
            let (tk, tg) = time_pair(
                &cpu,
                |i| drop(shaders::matmul_nt(xs[i].clone(), w.clone()).into_data()),
                |i| drop(generic::matmul_nt(xs[i].clone(), w.clone()).into_data()),
            );
            row(&format!("CPU x @ w^T, {dtype:?} w"), tk, tg, " |");
        }
    }
    if wanted("selective_log_softmax") {
        // 1. Selective log-softmax, forward + backward, on [rows, VOCAB].
        let ad = device.clone().autodiff();
        let inputs: Vec<Tensor<2>> = (0..=RUNS)
            .map(|_| Tensor::<2>::random([rows, VOCAB], Distribution::Normal(0.0, 3.0), &ad))
            .collect();
        let ids: Vec<i64> = (0..rows).map(|r| (r * 7919 % VOCAB) as i64).collect();
        let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [rows]), &ad);
        let run = |kernel: bool, i: usize| {
            let x = inputs[i].clone().detach().require_grad();
            let before = in_use(&device);
            let out = if kernel {
                shaders::selective_log_softmax(x.clone(), ids.clone())
            } else {
                generic::selective_log_softmax(x.clone(), ids.clone())
            };
            let loss = out.log_probs.mean();
            device.sync().expect("device sync");
            let kept = in_use(&device).saturating_sub(before);
            let grads = loss.backward();
            let g = x.grad(&grads).expect("a gradient");
            g.slice([0..1, 0..1]).into_scalar::<f32>();
            kept
        };
        let (kept_k, kept_g) = (run(true, RUNS), run(false, RUNS));
        let (tk, tg) = time_pair(
            &device,
            |i| {
                run(true, i);
            },
            |i| {
                run(false, i);
            },
        );
        let mb = |b: u64| b as f64 / (1 << 20) as f64;
        row(
            &format!("selective log-softmax fwd+bwd [{rows}, {VOCAB}]"),
            tk,
            tg,
            &format!(" {:.0} MB / {:.0} MB |", mb(kept_k), mb(kept_g)),
        );
        drop(inputs);
    }
    if wanted("probe_confidence") {
        // 2. Probe confidence over 5 probe tokens of 32 rows.
        let n = 32;
        let probes: Vec<Tensor<3>> = (0..=RUNS)
            .map(|_| Tensor::<3>::random([n, 5, VOCAB], Distribution::Normal(0.0, 3.0), &device))
            .collect();
        let lengths = Tensor::<1, Int>::from_data(TensorData::new(vec![5i64; n], [n]), &device);
        let (tk, tg) = time_pair(
            &device,
            |i| drop(shaders::probe_confidence(probes[i].clone(), lengths.clone()).into_data()),
            |i| drop(generic::probe_confidence(probes[i].clone(), lengths.clone()).into_data()),
        );
        row(&format!("probe confidence [{n}, 5, {VOCAB}]"), tk, tg, " |");
        drop(probes);
    }
    if wanted("group_advantages") {
        // 3. Group advantages: 16 groups of 16.
        let rewards: Vec<Tensor<1>> = (0..=RUNS)
            .map(|_| Tensor::<1>::random([256], Distribution::Uniform(0.0, 1.0), &device))
            .collect();
        let groups = (0..256).map(|i| i / 16).collect::<Vec<i64>>();
        let groups = Tensor::<1, Int>::from_data(TensorData::new(groups, [256]), &device);
        let (tk, tg) = time_pair(
            &device,
            |i| {
                drop(
                    shaders::group_advantages(rewards[i].clone(), groups.clone(), AdvantageScale::Group)
                        .into_data(),
                )
            },
            |i| {
                drop(
                    generic::group_advantages(rewards[i].clone(), groups.clone(), AdvantageScale::Group)
                        .into_data(),
                )
            },
        );
        row("group advantages [256]", tk, tg, " |");
    }
    if wanted("sample") {
        // 4. Sampling, ids and log-probs read back; one row per sequence of a rollout batch. Last: the
        // generic version's cumsum and sort over 151,936 ids take minutes per call on lavapipe.
        let n: usize =
            std::env::var("STEPGRPO_BENCH_SAMPLE_ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
        let logits: Vec<Tensor<2>> = (0..=RUNS)
            .map(|_| Tensor::<2>::random([n, VOCAB], Distribution::Normal(0.0, 3.0), &device))
            .collect();
        let u = Tensor::<1>::random([n], Distribution::Uniform(0.0, 1.0), &device);
        let read = |s: shaders::Sampled| drop((s.ids.into_data(), s.log_probs.into_data()));
        for (name, params) in [
            ("greedy", SamplingParams { temperature: 0.0, top_k: 0, top_p: 1.0, vocab_limit: None }),
            ("T 0.6", SamplingParams { temperature: 0.6, top_k: 0, top_p: 1.0, vocab_limit: None }),
            (
                "T 0.6, top-p 0.95",
                SamplingParams { temperature: 0.6, top_k: 0, top_p: 0.95, vocab_limit: None },
            ),
        ] {
            let (tk, tg) = time_pair(
                &device,
                |i| read(shaders::sample(logits[i].clone(), u.clone(), params)),
                |i| read(generic::sample(logits[i].clone(), u.clone(), params)),
            );
            row(&format!("sample {name} [{n}, {VOCAB}]"), tk, tg, " |");
        }
        drop(logits);
    }
    if wanted("fused_head") {
        // 5. The fused output projection + selective log-softmax (no gradient: reference and old
        // log-probs).
        fused_head(&device);
    }
}
