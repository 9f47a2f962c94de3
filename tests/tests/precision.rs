//! Half precision: a checkpoint's matrices stay in its dtype in memory (or in the one asked for),
//! every computation stays f32, and what trains gets f32 weights.

use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use stepgrpo_core::decode::{GenerateConfig, SamplingConfig, generate};
use stepgrpo_core::model::{self, CausalLm, Dtype, LoraConfig};
use stepgrpo_tests::{devices, fixture};

fn ids(device: &Device) -> Tensor<2, Int> {
    Tensor::from_data(TensorData::new(vec![3i64, 1, 4, 1, 5, 9, 2, 6], [2, 4]), device)
}

fn logits(model: &CausalLm, device: &Device) -> Vec<f32> {
    model.forward(ids(device)).into_data().try_into_vec::<f32>().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn greedy(model: &CausalLm) -> Vec<Vec<u32>> {
    let config = GenerateConfig {
        max_new_tokens: 12,
        sampling: SamplingConfig::greedy(),
        eos_token_ids: Vec::new(),
        stop_strings: Vec::new(),
    };
    let prompts = vec![vec![3, 1, 4, 1, 5], vec![9, 2, 6]];
    pollster::block_on(generate(model, &prompts, &config, None)).unwrap().into_iter().map(|g| g.ids).collect()
}

#[test]
fn a_bf16_checkpoint_stays_bf16_and_computes_as_if_widened() {
    let cpu = Device::flex();
    let dir = fixture("hf/llama-tiny-bf16");
    let half = model::load(&dir, &cpu).unwrap();
    let wide = model::load_as(&dir, &cpu, Some(Dtype::F32)).unwrap();
    assert_eq!((half.matrix_dtype(), wide.matrix_dtype()), (DType::BF16, DType::F32));
    let head = half.lm_head.as_ref().expect("llama-tiny-bf16 has its own head");
    assert_eq!(head.weight.val().dtype(), DType::BF16);
    // bf16 widens to f32 exactly, and both compute in f32: the same numbers.
    let d = max_diff(&logits(&half, &cpu), &logits(&wide, &cpu));
    assert!(d < 1e-5, "bf16-kept logits differ from widened ones by {d}");
    // Decoding reads the bf16 rows in place (the CPU kernel) and picks the same tokens.
    assert_eq!(greedy(&half), greedy(&wide));
}

/// An f32 checkpoint kept in half precision (`--dtype`) moves the logits only by the rounding of
/// its weights. Measured on qwen3-tiny (largest logit 4.41): bf16 within 0.042 (0.9 %), f16
/// within 0.0036 (0.08 %), the same on the CPU and on lavapipe (where f16 stands in for bf16);
/// the bounds are 2 % and 0.3 % of the largest logit.
#[test]
fn f32_checkpoints_kept_in_half_precision_stay_within_rounding() {
    for (name, device) in devices() {
        let dir = fixture("hf/qwen3-tiny");
        let reference = logits(&model::load(&dir, &device).unwrap(), &device);
        for dtype in [Dtype::BF16, Dtype::F16] {
            let m = model::load_as(&dir, &device, Some(dtype)).unwrap();
            assert_eq!(m.matrix_dtype(), model::storage_dtype(dtype, &device), "{name} {dtype:?}");
            let d = max_diff(&logits(&m, &device), &reference);
            let scale = reference.iter().fold(0f32, |a, x| a.max(x.abs()));
            let tolerance = scale * if m.matrix_dtype() == DType::BF16 { 2e-2 } else { 3e-3 };
            eprintln!(
                "{name}: {dtype:?} kept as {:?}: logits within {d} (largest {scale})",
                m.matrix_dtype()
            );
            assert!(d < tolerance, "{name} {dtype:?}: logits differ from f32 by {d}");
        }
    }
}

#[test]
fn adapters_over_a_half_base_train_alone_and_full_training_widens_the_base() {
    let device = Device::flex().autodiff();
    let base = model::load(&fixture("hf/llama-tiny-bf16"), &device).unwrap();
    let lora = base.clone().with_lora(&LoraConfig { r: 4, ..Default::default() }, 1).unwrap();
    assert_eq!(lora.matrix_dtype(), DType::BF16, "attaching adapters widened the base");
    let grads = lora.forward(ids(&device)).sum().backward();
    for layer in &lora.layers {
        for (name, p) in layer.projections() {
            assert_eq!(p.base.weight.val().dtype(), DType::BF16, "{name}");
            assert!(p.base.weight.val().grad(&grads).is_none(), "{name}: the frozen base got a gradient");
            let a = p.lora.as_ref().unwrap().a.val().grad(&grads).expect("the adapter's gradient");
            assert_eq!(a.dtype(), DType::F32, "{name}");
        }
    }
    // Merged adapters stay in the base's dtype.
    assert_eq!(lora.merge_adapters().matrix_dtype(), DType::BF16);

    // Full fine-tuning: f32 master weights, and the gradients reach them.
    let full = base.in_f32();
    assert_eq!(full.matrix_dtype(), DType::F32);
    let grads = full.forward(ids(&device)).sum().backward();
    let g = full.embed_tokens.weight.val().grad(&grads).expect("the embedding's gradient");
    assert_eq!(g.dtype(), DType::F32);
    assert!(full.layers[0].self_attn.q_proj.base.weight.val().grad(&grads).is_some());
}

/// Loading reads a shard's header, then one tensor at a time: a shard whose tensor data is cut
/// short fails on opening (the header's ranges are checked against the file), naming the file and
/// the tensor.
#[test]
fn a_shard_cut_short_names_the_file_and_tensor() {
    let dir = std::env::temp_dir().join(format!("stepgrpo-test-{}-cut", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let src = fixture("hf/qwen3-tiny");
    std::fs::copy(src.join("config.json"), dir.join("config.json")).unwrap();
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("model.safetensors"), &bytes[..bytes.len() - 100]).unwrap();
    let err = model::load(&dir, &Device::flex()).unwrap_err().to_string();
    assert!(err.contains("model.safetensors") && err.contains("past the file"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}
