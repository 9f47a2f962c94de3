//! Agreement with the reference fixtures in `tests/fixtures/reward/cases.json`: every grading verdict,
//! every extraction, and every Step-Aware Relative Reward case.

use serde::Deserialize;

use super::{extract_boxed, grade};
use crate::reward::{Reward, RewardBatch, StepAwareConfig, StepAwareReward};

const CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/reward/cases.json");

#[derive(Deserialize)]
struct Cases {
    grading: Vec<Grading>,
    extract: Vec<Extract>,
    batch: Vec<Sample>,
    reward_cases: Vec<RewardCase>,
}

#[derive(Deserialize)]
struct Grading {
    given: String,
    truth: String,
    correct: bool,
}

#[derive(Deserialize)]
struct Extract {
    text: String,
    boxed: Option<String>,
}

#[derive(Deserialize)]
struct Sample {
    response: String,
    ground_truth: String,
    uid: String,
}

#[derive(Deserialize)]
struct RewardCase {
    name: String,
    config: StepAwareConfig,
    outputs: Vec<Output>,
}

#[derive(Deserialize)]
struct Output {
    overall: f64,
    accuracy: f64,
    format: f64,
    steps: usize,
    step_mean: Option<f64>,
}

fn cases() -> Cases {
    let text = std::fs::read_to_string(CASES).unwrap_or_else(|e| panic!("reading {CASES}: {e}"));
    serde_json::from_str(&text).expect("cases.json parses")
}

#[test]
fn grading_verdicts() {
    let cases = cases();
    assert!(!cases.grading.is_empty());
    let wrong: Vec<_> = cases
        .grading
        .iter()
        .filter(|c| grade(&c.given, &c.truth) != c.correct)
        .map(|c| format!("{:?} vs {:?}: expected {}", c.given, c.truth, c.correct))
        .collect();
    assert!(wrong.is_empty(), "verdicts differ:\n{}", wrong.join("\n"));
}

#[test]
fn extraction() {
    for c in cases().extract {
        assert_eq!(extract_boxed(&c.text), c.boxed, "{:?}", c.text);
    }
}

#[test]
fn step_aware_rewards() {
    let cases = cases();
    let responses: Vec<&str> = cases.batch.iter().map(|s| s.response.as_str()).collect();
    let truths: Vec<&str> = cases.batch.iter().map(|s| s.ground_truth.as_str()).collect();
    let uids: Vec<&str> = cases.batch.iter().map(|s| s.uid.as_str()).collect();
    let batch = RewardBatch::new(&responses, &truths, &uids).unwrap();
    assert!(cases.reward_cases.len() >= 5);
    for case in &cases.reward_cases {
        let reward = StepAwareReward::new(case.config.clone()).unwrap();
        let got = reward.score(&batch).unwrap();
        assert_eq!(got.len(), case.outputs.len(), "{}", case.name);
        for (i, (g, want)) in got.iter().zip(&case.outputs).enumerate() {
            let ctx = format!("case {} response {i}", case.name);
            assert!(
                (g.overall - want.overall).abs() < 1e-12,
                "{ctx}: overall {} vs {}",
                g.overall,
                want.overall
            );
            assert_eq!((g.accuracy, g.format, g.steps), (want.accuracy, want.format, want.steps), "{ctx}");
            match (g.step_mean, want.step_mean) {
                (Some(a), Some(b)) => assert!((a - b).abs() < 1e-12, "{ctx}: step_mean {a} vs {b}"),
                (a, b) => assert_eq!(a, b, "{ctx}: step_mean"),
            }
        }
    }
}
