//! Decoding with the key/value cache: rolling back and forking rows leave decoding exactly as without
//! them, sampling is reproducible and batch-independent, and rows stop independently.

use burn::tensor::{Device, Int, Tensor, TensorData};
use stepgrpo_core::decode::{GenerateConfig, SamplingConfig, generate, read_rows};
use stepgrpo_core::model::{CausalLm, KvCache};
use stepgrpo_core::pretrained::Pretrained;
use stepgrpo_tests::{devices, fixture, word_tokenizer};

fn ids(rows: &[&[u32]], device: &Device) -> Tensor<2, Int> {
    let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().map(|&x| x as i64)).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), rows[0].len()]), device)
}

fn step(model: &CausalLm, cache: &mut KvCache, rows: &[&[u32]]) -> Vec<f32> {
    let device = model.device();
    pollster::block_on(read_rows(model.forward_cached(ids(rows, &device), cache))).unwrap()
}

/// The index of the largest logit.
fn argmax(logits: &[f32]) -> usize {
    (0..logits.len()).fold(0, |best, i| if logits[i] > logits[best] { i } else { best })
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn rollback_and_row_forks_do_not_disturb_the_main_path() {
    for (name, device) in devices() {
        let model = Pretrained::load(&fixture("hf/qwen3-tiny"), &device).unwrap().model;
        let mut cache = KvCache::new(model.config.num_hidden_layers, vec![0, 0]);
        step(&model, &mut cache, &[&[5, 6, 7, 8], &[9, 10, 11, 12]]);
        let len = cache.len();
        let reference = step(&model, &mut cache, &[&[13], &[14]]);

        // A probe: run three more tokens, roll back, feed the same token again.
        cache.truncate(len);
        assert_eq!(cache.len(), len);
        step(&model, &mut cache, &[&[1], &[2]]);
        step(&model, &mut cache, &[&[3], &[4]]);
        cache.truncate(len);
        let again = step(&model, &mut cache, &[&[13], &[14]]);
        assert!(max_diff(&reference, &again) < 1e-5, "{name}: rollback changed the logits");

        // A fork of row 1 runs ahead on its own; the main cache is untouched.
        cache.truncate(len);
        let mut fork = cache.select_rows(&[1]);
        let forked = step(&model, &mut fork, &[&[14]]);
        step(&model, &mut fork, &[&[15]]);
        let vocab = model.config.vocab_size;
        assert!(max_diff(&forked, &reference[vocab..]) < 1e-5, "{name}: fork differs from its row");
        let main = step(&model, &mut cache, &[&[13], &[14]]);
        assert!(max_diff(&reference, &main) < 1e-5, "{name}: fork disturbed the main cache");
        assert_eq!(argmax(&main[..vocab]), argmax(&reference[..vocab]));
    }
}

#[test]
fn sampling_is_seeded_and_batch_independent() {
    let device = Device::flex();
    let model = Pretrained::load(&fixture("hf/qwen2-tiny-sharded"), &device).unwrap().model;
    let config = |seed| GenerateConfig {
        max_new_tokens: 12,
        sampling: SamplingConfig { temperature: 1.0, top_k: 50, top_p: 0.95, seed },
        eos_token_ids: vec![],
        stop_strings: vec![],
    };
    let prompts = vec![vec![3, 4, 5], vec![7, 8, 9, 10, 11]];
    let run = |seed, p: &[Vec<u32>]| pollster::block_on(generate(&model, p, &config(seed), None)).unwrap();
    let a = run(1, &prompts);
    assert_eq!(a, run(1, &prompts), "same seed, same output");
    assert_ne!(a[0].ids, run(2, &prompts)[0].ids, "another seed samples differently");
    // Row 0 decoded alone draws from the same stream as in the batch.
    assert_eq!(a[0].ids, run(1, &prompts[..1])[0].ids);
    assert!(a[0].logprobs.iter().all(|&lp| lp <= 0.0 && lp.is_finite()));
}

#[test]
fn rows_stop_independently() {
    let device = Device::flex();
    let model = Pretrained::load(&fixture("hf/qwen3-tiny"), &device).unwrap().model;
    let prompts = vec![vec![217, 35, 62, 356, 163, 289], vec![1, 2, 3]];
    let greedy = |eos: Vec<u32>| GenerateConfig {
        max_new_tokens: 16,
        sampling: SamplingConfig::greedy(),
        eos_token_ids: eos,
        stop_strings: vec![],
    };
    let free = pollster::block_on(generate(&model, &prompts, &greedy(vec![]), None)).unwrap();
    // Make row 0's fourth token an end-of-sequence id: row 0 stops there, row 1 runs on unchanged.
    let eos = free[0].ids[3];
    assert!(!free[1].ids.contains(&eos), "pick a prompt pair where the id is only in row 0");
    let stopped = pollster::block_on(generate(&model, &prompts, &greedy(vec![eos]), None)).unwrap();
    let first = free[0].ids.iter().position(|&x| x == eos).unwrap();
    assert_eq!(stopped[0].ids, free[0].ids[..=first]);
    assert_eq!(stopped[0].finish, stepgrpo_core::decode::FinishReason::Eos);
    assert_eq!(stopped[1].ids, free[1].ids);
    assert_eq!(stopped[1].finish, stepgrpo_core::decode::FinishReason::Length);
}

#[test]
fn stop_strings_end_a_row_on_decoded_text() {
    let device = Device::flex();
    let model = Pretrained::load(&fixture("hf/qwen3-tiny"), &device).unwrap().model;
    let tok = word_tokenizer(&[]);
    let prompt = vec![vec![217, 35, 62, 356, 163, 289]];
    let mut config = GenerateConfig {
        max_new_tokens: 16,
        sampling: SamplingConfig::greedy(),
        eos_token_ids: vec![],
        stop_strings: vec![],
    };
    let free = pollster::block_on(generate(&model, &prompt, &config, Some(&tok))).unwrap();
    // Stop at the text of the fifth token; the row ends right after it.
    config.stop_strings = vec![format!("t{} t{}", free[0].ids[3], free[0].ids[4])];
    let stopped = pollster::block_on(generate(&model, &prompt, &config, Some(&tok))).unwrap();
    assert_eq!(stopped[0].ids, free[0].ids[..5]);
    assert_eq!(stopped[0].finish, stepgrpo_core::decode::FinishReason::Stop);
    assert!(generate_needs_tokenizer(&model, &config));
}

fn generate_needs_tokenizer(model: &CausalLm, config: &GenerateConfig) -> bool {
    let err = pollster::block_on(generate(model, &[vec![1]], config, None)).unwrap_err();
    err.to_string().contains("stop strings need a tokenizer")
}

#[test]
fn regression_generating_past_the_context_is_an_error() {
    // The fixture's context is 256 positions: decoding ran on past it without a word.
    let model = Pretrained::load(&fixture("hf/qwen3-tiny"), &Device::flex()).unwrap().model;
    let config = |max_new_tokens| GenerateConfig {
        max_new_tokens,
        sampling: SamplingConfig::greedy(),
        eos_token_ids: vec![],
        stop_strings: vec![],
    };
    let prompts = [vec![1, 2, 3], vec![4; 10]];
    let err = pollster::block_on(generate(&model, &prompts, &config(247), None)).unwrap_err().to_string();
    assert!(err.contains("max_new_tokens") && err.contains("at most 246") && err.contains("256"), "{err}");
    let long =
        pollster::block_on(generate(&model, &[vec![1; 256]], &config(1), None)).unwrap_err().to_string();
    assert!(long.contains("256 tokens") && long.contains("max_position_embeddings"), "{long}");
    let rollout = stepgrpo_core::rollout::RolloutConfig { max_completion_length: 300, ..Default::default() };
    let err = pollster::block_on(stepgrpo_core::rollout::rollout(
        &model,
        &word_tokenizer(&[]),
        &prompts,
        &[],
        &rollout,
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("max_completion_length") && err.contains("at most 246"), "{err}");
}
