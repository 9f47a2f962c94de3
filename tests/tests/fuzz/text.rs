//! Targets on text from model outputs and answer fields: the grader (normalisation, LaTeX,
//! expression evaluation), answer extraction, rewards and steps, and decoding arbitrary token ids.

use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use stepgrpo_core::grade::normalize::{mathd, normalize};
use stepgrpo_core::grade::{extract_boxed, grade, parse_ground_truth};
use stepgrpo_core::reward::{Reward, RewardBatch, StepAwareReward, clean_response, judge};
use stepgrpo_core::steps::{Triggers, step_starts};
use stepgrpo_core::text::Tokenizer;
use stepgrpo_tests::fixture;

use super::inputs::text;
use super::{bounded, config};

/// Everything the reward does with one response and one ground truth, and the grader both ways.
fn grade_all(response: String, truth: String) {
    let triggers = Triggers::new(["Wait", "Hmm"]).expect("two words");
    let judged = judge(&response, &truth, &triggers);
    assert_eq!(judged.formatted, judged.answer.as_deref().is_some_and(|a| !a.is_empty()));
    let _ = grade(&response, &truth);
    let _ = grade(&truth, &response);
    let _ = (normalize(&response), mathd(&response), parse_ground_truth(&response));
    let _ = extract_boxed(&truth);
    // Steps cover the text, and every token (here: every character) maps to one.
    let cleaned = clean_response(&response);
    let steps = triggers.steps(&cleaned);
    assert_eq!(steps.len(), triggers.count_steps(&cleaned));
    assert_eq!(steps.last().map(|s| s.end), Some(cleaned.len()));
    let offsets: Vec<(usize, usize)> = cleaned.char_indices().map(|(i, c)| (i, i + c.len_utf8())).collect();
    let starts = step_starts(&steps, &offsets);
    assert!(starts.windows(2).all(|w| w[0] <= w[1]) && starts.iter().all(|&s| s <= offsets.len()));
    let _ = triggers.ends_with_trigger(&cleaned);
}

proptest! {
    // Long inputs through the whole grader take about 0.1 s each in a debug build.
    #![proptest_config(config(150))]

    /// The grader, extraction, cleaning and steps on a hostile response and ground truth.
    #[test]
    fn fuzz_grader(response in text(), truth in text()) {
        let len = response.len() + truth.len();
        bounded("grader", len, move || grade_all(response, truth));
    }

    /// A response boxed around hostile text against a short truth: the path most responses take.
    #[test]
    fn fuzz_boxed_answer(inner in text(), truth in "[0-9]{1,3}|\\\\frac\\{[1-9]\\}\\{[1-9]\\}|\\(1, ?2\\)") {
        let response = format!("<think>\nWait, so.\n</think>\n\nThe answer is $\\boxed{{{inner}}}$.");
        let len = response.len() + truth.len();
        bounded("boxed answer", len, move || grade_all(response, truth));
    }
}

proptest! {
    #![proptest_config(config(60))]

    /// The Step-Aware Relative Reward over a group of hostile responses.
    #[test]
    fn fuzz_reward_batch(rows in prop::collection::vec((text(), text(), "[a-c]"), 1..6)) {
        let len = rows.iter().map(|r| r.0.len() + r.1.len()).sum();
        bounded("reward batch", len, move || {
            let r: Vec<&str> = rows.iter().map(|x| x.0.as_str()).collect();
            let t: Vec<&str> = rows.iter().map(|x| x.1.as_str()).collect();
            let u: Vec<&str> = rows.iter().map(|x| x.2.as_str()).collect();
            let reward = StepAwareReward::new(Default::default()).expect("defaults are valid");
            let out = reward.score(&RewardBatch::new(&r, &t, &u).expect("same lengths")).expect("scores");
            assert!(out.iter().all(|o| o.overall.is_finite()));
        });
    }
}

/// The built-in task's tokenizer and the Qwen3 fixture's (151,669 ids, byte-level BPE).
fn tokenizers() -> &'static [Arc<Tokenizer>; 2] {
    static TOKENIZERS: OnceLock<[Arc<Tokenizer>; 2]> = OnceLock::new();
    TOKENIZERS.get_or_init(|| {
        let qwen = Tokenizer::from_dir(&fixture("qwen3-tokenizer")).expect("the fixture tokenizer loads");
        [Arc::new(stepgrpo_core::task::tokenizer()), Arc::new(qwen)]
    })
}

proptest! {
    #![proptest_config(config(150))]

    /// Encoding hostile text (prompts and problem files are user text; long whitespace runs are
    /// where a pre-tokenizer's regular expression could backtrack).
    #[test]
    fn fuzz_encode_text(text in text(), which in 0usize..2) {
        let tok = tokenizers()[which].clone();
        bounded("encode", text.len(), move || {
            if let Ok((ids, starts)) = tok.encode_with_offsets(&text) {
                assert_eq!(ids.len(), starts.len());
                assert!(ids.iter().all(|&id| (id as usize) < tok.id_limit()));
                tok.decode(&ids).expect("encoded ids decode");
            }
        });
    }
}

/// Ids around the interesting places: any id, ids below the limit, the last ones, and far past it.
fn ids() -> impl Strategy<Value = Vec<u32>> {
    let id = prop_oneof![
        4 => 0u32..160_000,
        2 => 0u32..64,
        1 => 151_640u32..151_700,
        1 => any::<u32>(),
    ];
    prop::collection::vec(id, 0..300)
}

proptest! {
    #![proptest_config(config(300))]

    /// Decoding arbitrary ids: an error for ids the tokenizer lacks, else text whose pieces tile it.
    #[test]
    fn fuzz_decode_ids(ids in ids(), which in 0usize..2) {
        let tok = tokenizers()[which].clone();
        bounded("decode", ids.len() * 4, move || {
            let known = ids.iter().all(|&id| (id as usize) < tok.id_limit());
            match tok.decode(&ids) {
                Ok(text) => {
                    let (joined, offsets) = tok.decode_with_offsets(&ids).expect("decodes once, decodes twice");
                    assert_eq!(offsets.len(), ids.len());
                    assert!(offsets.iter().all(|&(a, b)| a <= b && b <= joined.len()));
                    assert!(offsets.windows(2).all(|w| w[0].1 == w[1].0));
                    let _ = text;
                }
                Err(e) => assert!(!known || !e.to_string().is_empty()),
            }
            if !known {
                assert!(tok.decode(&ids).is_err(), "an id past the vocabulary is an error");
            }
        });
    }
}
