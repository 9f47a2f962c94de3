//! The GRPO objective against the reference library's numbers (`tests/fixtures/grpo`): group
//! advantages, policy loss, KL loss, total loss, metrics and d(loss)/d(log_probs), within 1e-5.

use burn::tensor::{Device, Tensor, TensorData};
use stepgrpo_core::grpo::{
    GrpoConfig, ImportanceSamplingLevel, KlEstimator, LossType, MiniBatchSize, PolicyBatch, ScaleRewards,
    group_advantages, grpo_loss,
};
use stepgrpo_tests::{devices, json};

fn matrix(v: &serde_json::Value, device: &Device) -> Tensor<2> {
    let rows: Vec<Vec<f32>> = serde_json::from_value(v.clone()).unwrap();
    let (b, t) = (rows.len(), rows[0].len());
    Tensor::from_data(TensorData::new(rows.concat(), [b, t]), device)
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_data().try_to_vec::<f32>().unwrap()[0] as f64
}

fn close(name: &str, got: f64, want: f64) {
    assert!((got - want).abs() < 1e-5, "{name}: got {got}, want {want}");
}

fn config(c: &serde_json::Value) -> GrpoConfig {
    GrpoConfig {
        epsilon: c["clip_ratio_low"].as_f64().unwrap(),
        epsilon_high: c["clip_ratio_high"].as_f64().unwrap(),
        dual_clip: c["clip_ratio_dual"].as_f64().unwrap(),
        beta: c["kl_coef"].as_f64().unwrap(),
        kl_estimator: if c["kl"] == "kl" { KlEstimator::K1 } else { KlEstimator::K3 },
        loss_type: if c["loss_avg_mode"] == "seq" { LossType::Seq } else { LossType::Token },
        importance_sampling_level: if c["loss_type"] == "gspo" {
            ImportanceSamplingLevel::Sequence
        } else {
            ImportanceSamplingLevel::Token
        },
        scale_rewards: ScaleRewards::Group,
        ..GrpoConfig::default()
    }
}

#[test]
fn advantages_match_reference() {
    let f = json("grpo/objective.json");
    let rewards: Vec<f32> = serde_json::from_value(f["rewards"].clone()).unwrap();
    let groups: Vec<i64> = serde_json::from_value(f["group_index"].clone()).unwrap();
    let want: Vec<f64> = serde_json::from_value(f["advantages"].clone()).unwrap();
    for (name, device) in devices() {
        let n = rewards.len();
        let r = Tensor::from_data(TensorData::new(rewards.clone(), [n]), &device);
        let g = Tensor::from_data(TensorData::new(groups.clone(), [n]), &device);
        let got = group_advantages(r, g, ScaleRewards::Group).try_into_vec_as::<f64>().unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            close(&format!("{name}: advantage {i}"), *g, *w);
        }
    }
}

#[test]
fn loss_and_gradients_match_reference() {
    let f = json("grpo/objective.json");
    let device = Device::flex().autodiff();
    let advantages: Vec<f32> = serde_json::from_value(f["advantages"].clone()).unwrap();
    for case in f["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let cfg = config(&case["config"]);
        cfg.validate().unwrap();
        let log_probs = matrix(&f["log_probs"], &device).require_grad();
        let batch = PolicyBatch {
            log_probs: log_probs.clone(),
            old_log_probs: matrix(&f["old_log_probs"], &device),
            ref_log_probs: Some(matrix(&f["ref_log_probs"], &device)),
            advantages: Tensor::from_data(TensorData::new(advantages.clone(), [advantages.len()]), &device),
            mask: matrix(&f["response_mask"], &device),
            entropy: None,
            mini_batch: None,
            engine_weights: None,
        };
        let out = grpo_loss(batch, &cfg);
        let grads = out.loss.backward();
        let grad = log_probs.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap();
        let want: Vec<Vec<f32>> = serde_json::from_value(case["grad_log_probs"].clone()).unwrap();
        for (i, (g, w)) in grad.iter().zip(want.concat()).enumerate() {
            assert!((g - w).abs() < 1e-5, "{name}: d loss / d log_probs[{i}] = {g}, want {w}");
        }
        close(&format!("{name} loss"), scalar(out.loss), case["loss"].as_f64().unwrap());
        close(&format!("{name} pg_loss"), scalar(out.pg_loss), case["pg_loss"].as_f64().unwrap());
        close(&format!("{name} kl_loss"), scalar(out.kl_loss), case["kl_loss"].as_f64().unwrap());
        let m = &case["metrics"];
        close(&format!("{name} ppo_kl"), scalar(out.ppo_kl), m["ppo_kl"].as_f64().unwrap());
        close(&format!("{name} entropy"), scalar(out.entropy), m["entropy_loss"].as_f64().unwrap());
        // The reference's clip fraction counts both sides of the band; its "lower" one is the dual clip.
        close(
            &format!("{name} clip fraction"),
            scalar(out.clip_ratio_low) + scalar(out.clip_ratio_high),
            m["pg_clipfrac_higher"].as_f64().unwrap(),
        );
        close(
            &format!("{name} dual clip"),
            scalar(out.clip_ratio_dual),
            m["pg_clipfrac_lower"].as_f64().unwrap(),
        );
        micro_batches_add_up(&f, case, &cfg, &device);
    }
}

/// The same batch cut into micro-batches of rows (each averaged over the whole batch's size): the
/// summed losses and the gradients are the whole batch's.
fn micro_batches_add_up(f: &serde_json::Value, case: &serde_json::Value, cfg: &GrpoConfig, device: &Device) {
    let name = case["name"].as_str().unwrap();
    let advantages: Vec<f32> = serde_json::from_value(f["advantages"].clone()).unwrap();
    let log_probs = matrix(&f["log_probs"], device).require_grad();
    let mask = matrix(&f["response_mask"], device);
    let [rows, cols] = mask.dims();
    let tokens = scalar(mask.clone().sum()).round() as usize;
    let whole = MiniBatchSize { tokens, responses: rows, max_completion_length: cols };
    let advantages = Tensor::<1>::from_data(TensorData::new(advantages, [rows]), device);
    let mut total: Option<Tensor<1>> = None;
    for range in [0..1, 1..rows] {
        let part = |t: Tensor<2>| t.slice(range.clone());
        let out = grpo_loss(
            PolicyBatch {
                log_probs: part(log_probs.clone()),
                old_log_probs: part(matrix(&f["old_log_probs"], device)),
                ref_log_probs: Some(part(matrix(&f["ref_log_probs"], device))),
                advantages: advantages.clone().slice(range.clone()),
                mask: part(mask.clone()),
                entropy: None,
                mini_batch: Some(whole),
                engine_weights: None,
            },
            cfg,
        );
        total = Some(match total {
            Some(t) => t + out.loss,
            None => out.loss,
        });
    }
    let total = total.unwrap();
    let grads = total.clone().backward();
    let grad = log_probs.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap();
    let want: Vec<Vec<f32>> = serde_json::from_value(case["grad_log_probs"].clone()).unwrap();
    for (i, (g, w)) in grad.iter().zip(want.concat()).enumerate() {
        assert!((g - w).abs() < 1e-5, "{name}, micro-batches: d loss / d log_probs[{i}] = {g}, want {w}");
    }
    close(&format!("{name} loss, micro-batches"), scalar(total), case["loss"].as_f64().unwrap());
}

/// The clip by hand: one response of four tokens whose ratios are 1.5, 1.0, 0.5 and 4.0. With a
/// positive advantage the 1.5 and the 4.0 are held at 1 + epsilon_high (no gradient) and the others
/// push with their ratio; with a negative one the 0.5 is held at 1 - epsilon, the 4.0 by the dual
/// clip at 3, and the 1.5 pushes. Without clipping every token pushes.
#[test]
fn clipping_by_hand() {
    let device = Device::flex().autodiff();
    let ratios = [1.5f32, 1.0, 0.5, 4.0];
    let old = [-1.0f32, -2.0, -0.5, -3.0];
    let run = |advantage: f32, cfg: &GrpoConfig| {
        let new: Vec<f32> = old.iter().zip(ratios).map(|(o, r)| o + r.ln()).collect();
        let log_probs = Tensor::<2>::from_data(TensorData::new(new, [1, 4]), &device).require_grad();
        let out = grpo_loss(
            PolicyBatch {
                log_probs: log_probs.clone(),
                old_log_probs: Tensor::from_data(TensorData::new(old.to_vec(), [1, 4]), &device),
                ref_log_probs: None,
                advantages: Tensor::from_floats([advantage], &device),
                mask: Tensor::ones([1, 4], &device),
                entropy: None,
                mini_batch: None,
                engine_weights: None,
            },
            cfg,
        );
        let grad = log_probs.grad(&out.loss.backward()).unwrap().into_data().try_to_vec::<f32>().unwrap();
        let clips = [out.clip_ratio_low, out.clip_ratio_high, out.clip_ratio_dual].map(scalar);
        (scalar(out.loss), grad, clips)
    };
    let clipped = GrpoConfig { beta: 0.0, ..GrpoConfig::default() };
    let free = GrpoConfig { epsilon: 0.999, epsilon_high: 1e9, dual_clip: 1e9, ..clipped.clone() };
    let near = |got: &[f32], want: &[f32]| got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-6);

    // A = +1: loss = mean(-1.28, -1.0, -0.5, -1.28); d loss / d logp_t = -r_t / 4 where unclipped.
    let (loss, grad, clips) = run(1.0, &clipped);
    close("loss, A > 0", loss, -(1.28 + 1.0 + 0.5 + 1.28) / 4.0);
    assert!(near(&grad, &[0.0, -0.25, -0.125, 0.0]), "{grad:?}");
    assert_eq!(clips, [0.0, 0.5, 0.0]);
    // A = -1: loss = mean(1.5, 1.0, 0.8, 3.0); the held tokens get no gradient.
    let (loss, grad, clips) = run(-1.0, &clipped);
    close("loss, A < 0", loss, (1.5 + 1.0 + 0.8 + 3.0) / 4.0);
    assert!(near(&grad, &[0.375, 0.25, 0.0, 0.0]), "{grad:?}");
    assert_eq!(clips, [0.25, 0.0, 0.25]);
    // Unclipped, every token pushes with its ratio.
    let (loss, grad, clips) = run(-1.0, &free);
    close("loss, no clip", loss, (1.5 + 1.0 + 0.5 + 4.0) / 4.0);
    assert!(near(&grad, &[0.375, 0.25, 0.125, 1.0]), "{grad:?}");
    assert_eq!(clips, [0.0, 0.0, 0.0]);
}
