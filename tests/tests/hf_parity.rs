//! The model matches Hugging Face transformers on the tiny reference checkpoints, on the CPU and on
//! wgpu: logits within 1e-3, greedy ids, and batched greedy ids equal to single-prompt decoding.

use burn::tensor::{Int, Tensor, TensorData};
use stepgrpo_core::decode::{GenerateConfig, SamplingConfig, generate};
use stepgrpo_core::pretrained::Pretrained;
use stepgrpo_tests::{devices, fixture, ids, json};

const MODELS: [&str; 3] = ["qwen3-tiny", "qwen2-tiny-sharded", "llama-tiny-bf16"];

fn expected_logits(name: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(fixture(&format!("hf/{name}/expected_logits.safetensors"))).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor("logits").unwrap();
    let values = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    (t.shape().to_vec(), values)
}

fn greedy(max_new_tokens: usize, eos: &[u32]) -> GenerateConfig {
    GenerateConfig {
        max_new_tokens,
        sampling: SamplingConfig::greedy(),
        eos_token_ids: eos.to_vec(),
        stop_strings: Vec::new(),
    }
}

#[test]
fn logits_match_transformers() {
    for (device_name, device) in devices() {
        for name in MODELS {
            let p = Pretrained::load(&fixture(&format!("hf/{name}")), &device).unwrap();
            let expected = json(&format!("hf/{name}/expected.json"));
            let rows: Vec<Vec<u32>> =
                expected["logits_input_ids"].as_array().unwrap().iter().map(ids).collect();
            let (b, t) = (rows.len(), rows[0].len());
            let flat: Vec<i64> = rows.iter().flatten().map(|&x| x as i64).collect();
            let input = Tensor::<2, Int>::from_data(TensorData::new(flat, [b, t]), &device);
            let logits = p.model.forward(input).into_data().try_to_vec::<f32>().unwrap();
            let (shape, want) = expected_logits(name);
            assert_eq!(shape, vec![b, t, p.model.config.vocab_size]);
            let max_diff = logits.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(max_diff < 1e-3, "{name} on {device_name}: max |logit diff| = {max_diff}");
        }
    }
}

#[test]
fn greedy_decoding_matches_transformers_alone_and_batched() {
    for (device_name, device) in devices() {
        for name in MODELS {
            let p = Pretrained::load(&fixture(&format!("hf/{name}")), &device).unwrap();
            let expected = json(&format!("hf/{name}/expected.json"));
            let g = &expected["greedy"];
            let config = greedy(g["max_new_tokens"].as_u64().unwrap() as usize, &p.eos_token_ids);
            let out = pollster::block_on(generate(&p.model, &[ids(&g["prompt"])], &config, None)).unwrap();
            assert_eq!(out[0].ids, ids(&g["output"]), "{name} on {device_name}: greedy ids");

            let gb = &expected["greedy_batch"];
            let prompts: Vec<Vec<u32>> = gb["prompts"].as_array().unwrap().iter().map(ids).collect();
            let config = greedy(gb["max_new_tokens"].as_u64().unwrap() as usize, &p.eos_token_ids);
            let batched = pollster::block_on(generate(&p.model, &prompts, &config, None)).unwrap();
            for (i, want) in gb["outputs"].as_array().unwrap().iter().enumerate() {
                assert_eq!(batched[i].ids, ids(want), "{name} on {device_name}: batched row {i}");
                let alone = pollster::block_on(generate(&p.model, &prompts[i..=i], &config, None)).unwrap();
                assert_eq!(alone[0].ids, batched[i].ids, "{name} on {device_name}: row {i} alone vs batched");
            }
        }
    }
}
