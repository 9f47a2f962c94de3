//! HF checkpoint directories: saving and reloading keeps the model, and broken checkpoints give
//! errors that name the file and tensor at fault.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use stepgrpo_core::model::{self, CausalLm};
use stepgrpo_tests::fixture;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stepgrpo-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn copy_fixture(name: &str, to: &Path) {
    for entry in std::fs::read_dir(fixture(&format!("hf/{name}"))).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn logits(model: &CausalLm, device: &Device) -> Vec<f32> {
    let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![3i64, 1, 4, 1, 5, 9, 2, 6], [2, 4]), device);
    model.forward(ids).into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn save_then_load_gives_the_same_model() {
    let device = Device::flex();
    for name in ["qwen3-tiny", "qwen2-tiny-sharded", "llama-tiny-bf16"] {
        let original = model::load(&fixture(&format!("hf/{name}")), &device).unwrap();
        let dir = scratch(&format!("save-{name}"));
        pollster::block_on(model::save(&original, &dir)).unwrap();
        let reloaded = model::load(&dir, &device).unwrap();
        // Each model is written in its own dtype (bf16 stays bf16, config included), so its
        // weights and rotary frequencies come back bit for bit.
        assert_eq!(logits(&original, &device), logits(&reloaded, &device), "{name}");
        assert_eq!(original.config.dtype, reloaded.config.dtype, "{name}");
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        assert_eq!(config["torch_dtype"], original.config.dtype.hf_name(), "{name}");
        assert_eq!(config["dtype"], original.config.dtype.hf_name(), "{name}");
        let st = std::fs::read(dir.join("model.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&st).unwrap();
        let want = if name.contains("bf16") { safetensors::Dtype::BF16 } else { safetensors::Dtype::F32 };
        assert!(st.tensors().iter().all(|(_, t)| t.dtype() == want), "{name}: tensors saved as {want:?}");
        assert_eq!(original.config.tie_word_embeddings, reloaded.config.tie_word_embeddings);
        assert!(!dir.join("model.safetensors.tmp").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}

fn load_err(dir: &Path) -> String {
    model::load(dir, &Device::flex()).unwrap_err().to_string()
}

fn edit_config(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn broken_checkpoints_name_what_is_wrong() {
    let dir = scratch("broken");
    copy_fixture("qwen3-tiny", &dir);

    // A mis-shaped tensor: the config says wider layers than the weights have.
    edit_config(&dir, |v| v["intermediate_size"] = 161.into());
    let err = load_err(&dir);
    assert!(
        err.contains("model.safetensors") && err.contains("mlp.gate_proj.weight") && err.contains("161"),
        "{err}"
    );

    // A missing tensor: one layer more than stored.
    edit_config(&dir, |v| {
        v["intermediate_size"] = 160.into();
        v["num_hidden_layers"] = 3.into();
    });
    let err = load_err(&dir);
    assert!(err.contains("missing tensor `model.layers.2."), "{err}");

    // An unknown architecture.
    edit_config(&dir, |v| {
        v["num_hidden_layers"] = 2.into();
        v["architectures"] = serde_json::json!(["GPTNeoXForCausalLM"]);
        v["model_type"] = "gpt_neox".into();
    });
    let err = load_err(&dir);
    assert!(err.contains("config.json") && err.contains("GPTNeoXForCausalLM"), "{err}");

    // An unreadable safetensors header.
    edit_config(&dir, |v| {
        v["architectures"] = serde_json::json!(["Qwen3ForCausalLM"]);
        v["model_type"] = "qwen3".into();
    });
    model::load(&dir, &Device::flex()).expect("the repaired checkpoint loads");
    std::fs::write(dir.join("model.safetensors"), b"\x10\x00\x00\x00\x00\x00\x00\x00{not json").unwrap();
    let err = load_err(&dir);
    assert!(err.contains("model.safetensors") && err.contains("header"), "{err}");

    // No weights at all, and no config at all.
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    assert!(load_err(&dir).contains("no model.safetensors"));
    std::fs::remove_file(dir.join("config.json")).unwrap();
    assert!(load_err(&dir).contains("config.json"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn fresh_models_and_pretrained_directories_round_trip() {
    let device = Device::flex();
    // A freshly initialised model saves and reloads to the same logits.
    let config = model::load(&fixture("hf/qwen2-tiny-sharded"), &device).unwrap().config;
    let fresh = stepgrpo_tests::seeded(&device, 7, || model::init(&config, &device));
    let dir = scratch("fresh");
    pollster::block_on(model::save(&fresh, &dir)).unwrap();
    let reloaded = model::load(&dir, &device).unwrap();
    let (a, b) = (logits(&fresh, &device), logits(&reloaded, &device));
    assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-6));
    assert!(a.iter().all(|x| x.is_finite()));

    // A model directory keeps its generation config (and so its stop ids) through a save.
    let p = stepgrpo_core::pretrained::Pretrained::load(&fixture("hf/llama-tiny-bf16"), &device).unwrap();
    let out = scratch("pretrained");
    pollster::block_on(p.save(&out)).unwrap();
    assert!(out.join("generation_config.json").exists());
    let again = stepgrpo_core::pretrained::Pretrained::load(&out, &device).unwrap();
    assert_eq!(again.eos_token_ids, p.eos_token_ids);
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(out).unwrap();
}

/// `model` with every adapter's B drawn at random (a fresh adapter's B is zero, a no-op).
fn trained_adapters(model: CausalLm, seed: u64) -> CausalLm {
    let config = model::LoraConfig { r: 4, lora_alpha: 8.0, ..Default::default() };
    let mut model = model.with_lora(&config, seed).unwrap();
    let mut rng = stepgrpo_core::rng::Rng::new(seed);
    for layer in &mut model.layers {
        for (_, p) in layer.projections_mut() {
            let lora = p.lora.as_mut().unwrap();
            let [r, out] = lora.b.dims();
            let values: Vec<f32> = (0..r * out).map(|_| (rng.normal() * 0.1) as f32).collect();
            let b = Tensor::from_data(TensorData::new(values, [r, out]), &lora.b.val().device());
            lora.b = burn::module::Param::from_tensor(b);
        }
    }
    model
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn lora_adapters_round_trip_through_peft_files_and_merge_into_the_base() {
    for (name, device) in stepgrpo_tests::devices() {
        let base = model::load(&fixture("hf/qwen3-tiny"), &device).unwrap();
        let with = trained_adapters(base.clone(), 7);
        let (base_logits, adapted) = (logits(&base, &device), logits(&with, &device));
        assert!(max_diff(&base_logits, &adapted) > 1e-2, "{name}: the adapters change nothing");
        assert!(logits(&with.without_adapters(), &device) == base_logits, "{name}: adapters off");

        // PEFT's files, with PEFT's names and layouts, reload to the same logits.
        let files = pollster::block_on(model::adapter_files(&with, "hf/qwen3-tiny")).unwrap();
        let config: serde_json::Value = serde_json::from_slice(&files[0].1).unwrap();
        assert_eq!((config["peft_type"].as_str(), config["r"].as_u64()), (Some("LORA"), Some(4)));
        assert_eq!(config["lora_alpha"].as_f64(), Some(8.0));
        assert_eq!(config["target_modules"].as_array().unwrap().len(), 7);
        let st = safetensors::SafeTensors::deserialize(&files[1].1).unwrap();
        let a = st.tensor("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").unwrap();
        let b = st.tensor("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight").unwrap();
        let c = &base.config;
        assert_eq!(a.shape(), [4, c.hidden_size]);
        assert_eq!(b.shape(), [c.hidden_size, 4]);
        assert_eq!(st.len(), 2 * 7 * c.num_hidden_layers);
        let reloaded = model::load_adapter_bytes(base.clone(), &files[0].1, files[1].1.clone()).unwrap();
        // Bit for bit the same weights; the product may round differently (A arrives transposed).
        let d = max_diff(&logits(&reloaded, &device), &adapted);
        assert!(d < 1e-5, "{name}: the reloaded adapter's logits differ by {d}");

        // Merged, the model computes the same function, and saves as a plain checkpoint.
        let merged = with.merge_adapters();
        assert!(!merged.has_adapters());
        let d = max_diff(&logits(&merged, &device), &adapted);
        assert!(d < 1e-4, "{name}: merged logits differ by {d}");
    }
}

#[test]
fn broken_adapters_name_what_is_wrong() {
    let device = Device::flex();
    let base = model::load(&fixture("hf/qwen3-tiny"), &device).unwrap();
    let with = trained_adapters(base.clone(), 1);
    let files = pollster::block_on(model::adapter_files(&with, "base")).unwrap();
    let err = |config: &serde_json::Value, weights: &[u8]| {
        let bytes = serde_json::to_vec(config).unwrap();
        model::load_adapter_bytes(base.clone(), &bytes, weights.to_vec()).unwrap_err().to_string()
    };
    let good: serde_json::Value = serde_json::from_slice(&files[0].1).unwrap();
    let mut c = good.clone();
    c["use_dora"] = true.into();
    assert!(err(&c, &files[1].1).contains("use_dora"));
    let mut c = good.clone();
    c["r"] = 8.into();
    let e = err(&c, &files[1].1);
    assert!(e.contains("lora_A.weight") && e.contains("shape"), "{e}");
    let mut c = good.clone();
    c["target_modules"] = serde_json::json!(["q_proj"]);
    let e = err(&c, &files[1].1);
    assert!(e.contains("adapter_model.safetensors") && e.contains("match no targeted projection"), "{e}");
    let mut c = good;
    c["target_modules"] = serde_json::json!(["attn"]);
    assert!(err(&c, &files[1].1).contains("`attn`"));
}
