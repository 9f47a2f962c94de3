//! The truncated rollout on a real (tiny) model: probes never change the trained sequence unless
//! they exit, the cache rollback after a probe leaves the greedy continuation identical, and a
//! confident probe closes the thinking at the trigger.

use burn::tensor::Device;
use stepgrpo_core::decode::SamplingConfig;
use stepgrpo_core::pretrained::Pretrained;
use stepgrpo_core::rollout::{
    ExitType, LocalEngine, RolloutConfig, RolloutRequest, RolloutSource, TruncationConfig,
    cache_bytes_per_row, prompts_per_slice, rollout,
};
use stepgrpo_core::text::Tokenizer;
use stepgrpo_core::{model, task};
use stepgrpo_tests::{builtin, fixture, seeded, word_tokenizer};

const PROMPTS: [&[u32]; 2] = [&[217, 35, 62, 356, 163, 289], &[12, 229, 365]];
const THINK_END: u32 = 383;

fn config(truncation: Option<TruncationConfig>) -> RolloutConfig {
    RolloutConfig {
        num_generations: 2,
        max_completion_length: 40,
        sampling: SamplingConfig::greedy(),
        triggers: Default::default(),
        think_end: "</think>".into(),
        truncation,
        max_cache_gib: None,
    }
}

fn run(model: &Pretrained, tok: &Tokenizer, config: &RolloutConfig) -> Vec<stepgrpo_core::rollout::Rollout> {
    let prompts: Vec<Vec<u32>> = PROMPTS.iter().map(|p| p.to_vec()).collect();
    pollster::block_on(rollout(&model.model, tok, &prompts, &[], config)).unwrap()
}

/// A tokenizer where the most frequent id of the plain greedy rollouts reads "Wait".
fn tokenizer_with_triggers(model: &Pretrained) -> (Tokenizer, u32) {
    let plain = run(model, &word_tokenizer(&[(THINK_END, "</think>")]), &config(None));
    let mut counts = std::collections::HashMap::new();
    for id in plain.iter().flat_map(|r| &r.ids) {
        *counts.entry(*id).or_insert(0) += 1;
    }
    let (&wait, _) =
        counts.iter().filter(|(id, _)| **id != THINK_END).max_by_key(|(id, n)| (**n, **id)).unwrap();
    (word_tokenizer(&[(THINK_END, "</think>"), (wait, "Wait")]), wait)
}

#[test]
fn probes_without_exit_leave_the_sequence_unchanged() {
    let model = Pretrained::load(&fixture("hf/qwen3-tiny"), &Device::flex()).unwrap();
    let (tok, wait) = tokenizer_with_triggers(&model);
    let plain = run(&model, &tok, &config(None));
    // delta = 1 can never be exceeded: every probe is thrown away and the trigger put back.
    let never = TruncationConfig {
        probe_threshold: 1.0,
        inducer: "t1 t2".into(),
        budget_margin: 0,
        think_budget_ratio: 1.0,
        repetition_window: 0,
        ..Default::default()
    };
    let probed = run(&model, &tok, &config(Some(never)));
    assert!(probed.iter().any(|r| !r.probes.is_empty()), "the test needs triggers in the greedy output");
    for (p, q) in plain.iter().zip(&probed) {
        assert_eq!(p.ids, q.ids, "a discarded probe changed the response; probes {:?}", q.probes);
        for probe in &q.probes {
            assert_eq!(q.ids[probe.position], wait, "probes pause right before the trigger");
            assert!(!probe.exited && probe.tokens >= 1);
        }
    }
}

#[test]
fn a_confident_probe_exits_at_the_trigger() {
    let model = Pretrained::load(&fixture("hf/qwen3-tiny"), &Device::flex()).unwrap();
    let (tok, wait) = tokenizer_with_triggers(&model);
    let plain = run(&model, &tok, &config(None));
    // Non-strict with delta 0: any probe of two tokens or more is confident.
    let always = TruncationConfig {
        probe_threshold: 0.0,
        strict: false,
        inducer: "t1 t2".into(),
        budget_margin: 0,
        think_budget_ratio: 1.0,
        repetition_window: 0,
        ..Default::default()
    };
    let exited = run(&model, &tok, &config(Some(always)));
    let mut exits = 0;
    for (p, q) in plain.iter().zip(&exited) {
        let Some(first) = p.ids.iter().position(|&id| id == wait) else { continue };
        exits += 1;
        assert_eq!(q.exit, ExitType::EarlyExit);
        assert_eq!(q.probes.len(), 1);
        assert!(q.probes[0].exited && q.probes[0].confidence > 0.0);
        assert_eq!(q.probes[0].position, first);
        // The thinking up to the trigger is kept, then the closing text, then a sampled answer.
        assert_eq!(q.ids[..first], p.ids[..first]);
        assert_eq!(q.ids[first], THINK_END);
        assert!(q.ids.len() > first + 1, "an answer follows the closed thinking");
    }
    assert!(exits > 0, "the test needs a trigger in the greedy output");
}

#[test]
fn budget_and_validation() {
    let model = Pretrained::load(&fixture("hf/qwen3-tiny"), &Device::flex()).unwrap();
    let tok = word_tokenizer(&[(THINK_END, "</think>")]);
    let trunc = TruncationConfig { think_budget_ratio: 0.5, ..Default::default() };
    let out = run(&model, &tok, &config(Some(trunc)));
    for r in &out {
        // No trigger ever appears, so thinking runs into the budget (20 of 40 tokens) and is closed.
        assert_eq!(r.exit, ExitType::Budget);
        assert_eq!(r.ids[20], THINK_END);
        assert!(r.ids.len() <= 40);
    }
    let bad = RolloutConfig { num_generations: 0, ..config(None) };
    let err = pollster::block_on(rollout(&model.model, &tok, &[vec![1]], &[], &bad)).unwrap_err();
    assert!(err.to_string().contains("num_generations"));
}

#[test]
fn repeated_chunks_end_the_thinking() {
    let model = Pretrained::load(&fixture("hf/qwen3-tiny"), &Device::flex()).unwrap();
    let (tok, wait) = tokenizer_with_triggers(&model);
    let plain = run(&model, &tok, &config(None));
    // Greedy output of this model repeats the trigger word: chunks between triggers repeat.
    let guard = TruncationConfig {
        probe_threshold: 1.0,
        think_budget_ratio: 1.0,
        budget_margin: 0,
        ..Default::default()
    };
    let out = run(&model, &tok, &config(Some(guard)));
    let repeated: Vec<_> = out.iter().zip(&plain).filter(|(r, _)| r.exit == ExitType::Repetition).collect();
    assert!(!repeated.is_empty(), "expected a repetition exit");
    for (r, p) in repeated {
        let cut = r.ids.iter().position(|&id| id == THINK_END).unwrap();
        assert_eq!(r.ids[..cut], p.ids[..cut], "thinking before the cut is kept");
        assert_eq!(p.ids[cut], wait, "the cut is at a trigger");
        // Three identical chunks need three probes before the fourth trigger.
        assert_eq!(r.probes.len(), 3);
    }
}

/// A cache bound decodes a collection a prompt's group at a time, with the same rollouts.
#[test]
fn a_cache_bound_decodes_in_slices_to_the_same_rollouts() {
    let device = Device::flex();
    let data = builtin::data(task::TaskConfig::default());
    let model = seeded(&device, 7, || model::init(&task::model_config(), &device));
    let mut c = builtin::small_rl(1).rollout;
    let prompts: Vec<Vec<u32>> =
        (0..4).map(|i| data.tokenizer.encode(&data.held_out[i].prompt).unwrap()).collect();
    let collect = |config: &RolloutConfig| {
        let request = RolloutRequest { prompts: &prompts, config };
        let per_slice = prompts_per_slice(&model, &data.tokenizer, &request).unwrap();
        let mut engine = LocalEngine::new(data.tokenizer.clone(), data.eos.clone());
        pollster::block_on(engine.load_weights(&model, 0)).unwrap();
        (per_slice, pollster::block_on(engine.collect(request)).unwrap())
    };
    let (all, whole) = collect(&c);
    assert!(all >= prompts.len(), "the tiny model's logits allow every prompt at once");
    // Room for one and a half groups: one prompt at a time.
    let longest = prompts.iter().map(Vec::len).max().unwrap();
    let t = c.truncation.as_ref().unwrap();
    let positions = longest
        + c.max_completion_length
        + data.tokenizer.encode(&t.inducer).unwrap().len()
        + t.probe_max_tokens;
    let group = (cache_bytes_per_row(&model, positions) * c.num_generations) as f64;
    c.max_cache_gib = Some(1.5 * group / (1u64 << 30) as f64);
    let (one, sliced) = collect(&c);
    assert_eq!(one, 1);
    assert_eq!(whole, sliced);
    assert!(whole.iter().any(|r| !r.probes.is_empty()), "probes ran in the slices");
}

/// A probe stopped once it can no longer pass changes nothing but the tokens it decodes: the
/// same responses, exits and probe verdicts at thresholds on both sides of the probes' confidences.
#[test]
fn probes_stop_early_without_changing_a_rollout() {
    let model = Pretrained::load(&fixture("hf/qwen3-tiny"), &Device::flex()).unwrap();
    let (tok, _) = tokenizer_with_triggers(&model);
    let sampled = |truncation: TruncationConfig| RolloutConfig {
        num_generations: 8,
        max_completion_length: 60,
        sampling: SamplingConfig { temperature: 0.7, seed: 3, ..SamplingConfig::greedy() },
        ..config(Some(truncation))
    };
    let probing = |threshold: f64, probe_early_stop: bool| TruncationConfig {
        probe_threshold: threshold,
        probe_early_stop,
        strict: false,
        inducer: "t1 t2".into(),
        probe_max_tokens: 8,
        budget_margin: 0,
        think_budget_ratio: 1.0,
        repetition_window: 0,
        ..Default::default()
    };
    // The full probes' confidences place the thresholds: some probes pass, some fail.
    let full = run(&model, &tok, &sampled(probing(1.0, false)));
    let mut seen: Vec<f64> = full.iter().flat_map(|r| r.probes.iter().map(|p| p.confidence)).collect();
    seen.sort_by(f64::total_cmp);
    assert!(seen.len() >= 6, "the test needs probes, got {}", seen.len());
    let (mut saved, mut exits) = (0, 0);
    // Quantiles of the probes' confidences, and the default threshold, above all of them.
    let thresholds = [0.25, 0.5, 0.75].map(|q| seen[(q * seen.len() as f64) as usize]);
    for threshold in thresholds.into_iter().chain([TruncationConfig::default().probe_threshold]) {
        let slow = run(&model, &tok, &sampled(probing(threshold, false)));
        let fast = run(&model, &tok, &sampled(probing(threshold, true)));
        for (s, f) in slow.iter().zip(&fast) {
            assert_eq!(
                (&s.ids, &s.log_probs, s.exit),
                (&f.ids, &f.log_probs, f.exit),
                "threshold {threshold}"
            );
            assert_eq!(s.probes.len(), f.probes.len());
            for (a, b) in s.probes.iter().zip(&f.probes) {
                assert_eq!((a.position, a.exited), (b.position, b.exited), "threshold {threshold}");
                assert!(b.tokens <= a.tokens && (b.tokens < a.tokens) == b.cut_short);
                if !b.cut_short {
                    assert_eq!(a, b);
                }
                saved += a.tokens - b.tokens;
                exits += a.exited as usize;
            }
        }
    }
    assert!(
        saved > 0 && exits > 0,
        "both verdicts occur ({exits} exits) and probes are cut ({saved} tokens)"
    );
}
