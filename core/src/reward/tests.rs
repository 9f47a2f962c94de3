//! Unit tests of the rewards, with values computed by hand.

use super::*;

const ALPHA: f64 = 0.9;

fn resp(waits: usize, answer: &str) -> String {
    format!("<think>\nstart.{}\n</think>\n\n\\boxed{{{answer}}}", " Wait, check.".repeat(waits))
}

fn score(reward: &dyn Reward, rows: &[(String, &str, &str)], lengths: Option<&[usize]>) -> Vec<RewardOutput> {
    let r: Vec<&str> = rows.iter().map(|x| x.0.as_str()).collect();
    let t: Vec<&str> = rows.iter().map(|x| x.1).collect();
    let u: Vec<&str> = rows.iter().map(|x| x.2).collect();
    let mut batch = RewardBatch::new(&r, &t, &u).unwrap();
    if let Some(l) = lengths {
        batch = batch.with_lengths(l).unwrap();
    }
    reward.score(&batch).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn step_aware_by_hand() {
    let reward = StepAwareReward::new(StepAwareConfig::default()).unwrap();
    // Group "a": two correct with k = 1 and k = 3 (mu = 2), one wrong; group "b": none correct;
    // group "c": one correct alone (k = mu: factor 1). Groups interleaved.
    let rows = vec![
        (resp(0, "7"), "7", "a"),
        (resp(1, "1"), "2", "b"),
        (resp(2, "7.0"), "7", "a"),
        (resp(5, "8"), "7", "a"),
        (resp(3, "5"), "5", "c"),
        (resp(0, "3"), "2", "b"),
    ];
    let out = score(&reward, &rows, None);
    let fast = ALPHA * (1.0 - 0.5 * (-0.5f64).tanh()) + (1.0 - ALPHA);
    let slow = ALPHA * (1.0 - 0.5 * 0.5f64.tanh()) + (1.0 - ALPHA);
    assert!(close(out[0].overall, fast) && out[0].steps == 1 && out[0].step_mean == Some(2.0));
    assert!(close(out[2].overall, slow) && out[2].steps == 3);
    assert!(close(out[3].overall, 1.0 - ALPHA) && out[3].accuracy == 0.0 && out[3].format == 1.0);
    assert_eq!(out[3].step_mean, Some(2.0), "the group mean is reported for wrong answers too");
    assert!(close(out[1].overall, 1.0 - ALPHA) && out[1].step_mean.is_none());
    assert!(out[5].step_mean.is_none());
    assert!(close(out[4].overall, 1.0) && out[4].step_mean == Some(4.0));
    assert!(fast > 1.0 && slow < 1.0, "fewer steps than the group mean earns more");
}

#[test]
fn options() {
    let rows = vec![(resp(0, "7"), "7", "a"), (resp(2, "7"), "7", "a"), (resp(4, "1"), "7", "a")];
    let all = StepAwareReward::new(StepAwareConfig { correct_mean: false, ..Default::default() }).unwrap();
    let out = score(&all, &rows, None);
    assert_eq!(out[0].step_mean, Some(3.0));
    assert!(close(out[0].overall, ALPHA * (1.0 - 0.5 * (-2.0f64 / 3.0).tanh()) + (1.0 - ALPHA)));
    assert!(close(out[2].overall, 1.0 - ALPHA), "wrong answers get no efficiency factor");
    let off = StepAwareReward::new(StepAwareConfig { step_reward: false, ..Default::default() }).unwrap();
    assert!(score(&off, &rows, None)[..2].iter().all(|o| close(o.overall, 1.0)));
    let acc = AccuracyReward::new(AccuracyConfig::default()).unwrap();
    assert_eq!(score(&acc, &rows, None), score(&off, &rows, None));
}

#[test]
fn format_and_cleaning() {
    let t = Triggers::default();
    assert_eq!(clean_response("< think >a</ think >\n\\boxed{1 / 2}"), "<think>a</think>\\boxed{1/2}");
    assert_eq!(clean_response("a b"), "a b");
    let empty = judge("\\boxed{}", "1", &t);
    assert!(!empty.formatted && !empty.correct && empty.answer.as_deref() == Some(""));
    let unclosed = judge("\\boxed{1", "1", &t);
    assert!(!unclosed.formatted && !unclosed.correct && unclosed.answer.is_none());
    let plain = judge("The answer is 42.", "42", &t);
    assert!(!plain.formatted && !plain.correct, "no box, no answer");
    assert!(judge("\\boxed{42}", "Natalia sold 42.\n#### 42", &t).correct);
    assert_eq!(judge("Waiting, await. Wait", "1", &t).steps, 2);
}

#[test]
fn length_penalty_by_hand() {
    let reward = LengthPenaltyReward::new(LengthPenaltyConfig::default()).unwrap();
    let rows = vec![
        (resp(0, "7"), "7", "a"),
        (resp(0, "7"), "7", "a"),
        (resp(0, "1"), "7", "a"),
        (resp(0, "1"), "7", "b"),
        (resp(0, "7"), "7", "b"),
        (resp(0, "7"), "7", "c"),
    ];
    // Group a: lengths 100, 200, 300 -> lambda 0.5, 0, -0.5; group b: tie -> 0; group c: alone -> 0.
    let lengths = [100, 200, 300, 50, 50, 10];
    let out = score(&reward, &rows, Some(&lengths));
    assert!(close(out[0].overall, 1.0 + 0.5));
    assert!(close(out[1].overall, 1.0));
    assert!(close(out[2].overall, (1.0 - ALPHA) - 0.5));
    assert!(close(out[3].overall, 1.0 - ALPHA) && close(out[4].overall, 1.0) && close(out[5].overall, 1.0));
    // A short wrong answer keeps min(0, lambda) = 0.
    let rows2 = vec![(resp(0, "1"), "7", "a"), (resp(0, "7"), "7", "a")];
    let out2 = score(&reward, &rows2, Some(&[10, 20]));
    assert!(close(out2[0].overall, 1.0 - ALPHA) && close(out2[1].overall, 1.0 - 0.5));
    let r: Vec<&str> = vec!["x"];
    let batch = RewardBatch::new(&r, &r, &r).unwrap();
    assert_eq!(reward.score(&batch), Err(RewardError::MissingLengths("the length-penalty reward")));
}

#[test]
fn config_validation_and_batches() {
    let bad = StepAwareConfig { alpha: 1.5, ..Default::default() };
    assert!(matches!(bad.validate(), Err(RewardError::InvalidConfig(m)) if m.contains("alpha")));
    assert!(StepAwareReward::new(StepAwareConfig { beta: -0.1, ..Default::default() }).is_err());
    assert!(StepAwareConfig { alpha: f64::NAN, ..Default::default() }.validate().is_err());
    assert!(LengthPenaltyConfig { weight: f64::INFINITY, ..Default::default() }.validate().is_err());
    assert!(AccuracyReward::new(AccuracyConfig { alpha: -1.0, ..Default::default() }).is_err());
    let json = r#"{"alpha":0.8,"beta":1.0,"correct_mean":true,"step_reward":true,"triggers":["Wait","Hmm"]}"#;
    let cfg: StepAwareConfig = serde_json::from_str(json).unwrap();
    assert_eq!(cfg.triggers.words(), ["Wait", "Hmm"]);
    assert!(serde_json::from_str::<StepAwareConfig>(r#"{"alhpa":0.8}"#).is_err(), "typos are errors");
    let d: StepAwareConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(d, StepAwareConfig::default());
    let r: Vec<&str> = vec!["a", "b"];
    let one: Vec<&str> = vec!["a"];
    assert!(matches!(
        RewardBatch::new(&r, &one, &r),
        Err(RewardError::LengthMismatch { what: "ground truths", .. })
    ));
    let ok = RewardBatch::new(&r, &r, &r).unwrap();
    assert!(ok.with_lengths(&[1]).is_err());
    let empty: Vec<&str> = vec![];
    let eb = RewardBatch::new(&empty, &empty, &empty).unwrap();
    assert!(
        eb.is_empty()
            && StepAwareReward::new(StepAwareConfig::default()).unwrap().score(&eb).unwrap().is_empty()
    );
    let out = RewardOutput { overall: 1.0, accuracy: 1.0, format: 1.0, steps: 2, step_mean: None };
    assert_eq!(
        serde_json::to_string(&out).unwrap(),
        r#"{"overall":1.0,"accuracy":1.0,"format":1.0,"steps":2,"step_mean":null}"#
    );
}

/// The cleaning as first written (quadratic in a whitespace run): the oracle of the linear one.
fn clean_response_quadratic(response: &str) -> String {
    let chars: Vec<char> = response.chars().collect();
    let is_sep = |c: char| matches!(c, '<' | '>' | '/');
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_whitespace() {
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            let prev = chars[..i].iter().rev().find(|c| !c.is_whitespace());
            if next.is_some_and(|&c| is_sep(c)) || prev.is_some_and(|&c| is_sep(c)) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[test]
fn linear_cleaning_agrees_with_the_reference_on_every_short_string() {
    // Every string of up to 7 characters over an alphabet with two kinds of whitespace.
    let alphabet = [' ', '\n', '<', '/', 'a', 'é'];
    let mut strings = vec![String::new()];
    for _ in 0..7 {
        let longer: Vec<String> = strings.iter().flat_map(|s| alphabet.map(|c| format!("{s}{c}"))).collect();
        for s in &longer {
            assert_eq!(clean_response(s), clean_response_quadratic(s), "{s:?}");
        }
        strings = longer;
    }
}

#[test]
fn regression_clean_response_whitespace_run_is_linear() {
    // 200,000 spaces inside \boxed{} took about 20 CPU-seconds before the cleaning was linear.
    let response = format!("<think>x</think> \\boxed{{1{}}}", " ".repeat(200_000));
    let start = std::time::Instant::now();
    let judged = judge(&response, "1", &Triggers::default());
    assert!(judged.correct);
    let cleaned = clean_response(&format!("a{}b{}</x>", " ".repeat(100_000), "\n".repeat(100_000)));
    assert_eq!(cleaned.len(), "a".len() + 100_000 + "b</x>".len());
    assert!(start.elapsed().as_secs_f64() < 5.0, "took {:?}", start.elapsed());
}
