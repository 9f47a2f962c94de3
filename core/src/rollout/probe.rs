//! Probes: how confident the model is in a trial answer, and how thinking is closed at an exit.

use serde::{Deserialize, Serialize};

/// How a response's thinking ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitType {
    /// A probe was confident: thinking was closed at a trigger.
    EarlyExit,
    /// The model closed its thinking itself.
    Natural,
    /// The thinking budget ran out.
    Budget,
    /// The model ended the sequence while still thinking.
    Eos,
    /// Consecutive thinking chunks repeated themselves.
    Repetition,
}

/// One probe of a response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeRecord {
    /// Response-token index where thinking was paused (the trigger's first token).
    pub position: usize,
    /// Its confidence.
    pub confidence: f64,
    /// Greedy tokens it decoded.
    pub tokens: usize,
    /// Whether it ended the thinking.
    pub exited: bool,
}

/// c = exp(mean of log p(top-1) over probe tokens 2..n): the geometric mean of the top-1
/// probabilities with the first skipped. 0 with fewer than two tokens, and in strict mode 0 unless
/// the probe ended with the stop text.
pub fn confidence(top1_logprobs: &[f32], ended_with_stop: bool, strict: bool) -> f64 {
    if top1_logprobs.len() < 2 || (strict && !ended_with_stop) {
        return 0.0;
    }
    let rest = &top1_logprobs[1..];
    (rest.iter().map(|&x| x as f64).sum::<f64>() / rest.len() as f64).exp()
}

/// The text that closes the thinking of `text` (spec's close rule): after an existing `think_end`
/// only "\n\n" (or a missing "\n"); otherwise a newline unless there is one, `think_end`, "\n\n".
pub fn close_text(text: &str, think_end: &str) -> String {
    if text.contains(think_end) {
        if text.ends_with(think_end) {
            "\n\n".into()
        } else if text.ends_with('\n') {
            String::new()
        } else {
            "\n".into()
        }
    } else {
        let newline = if text.ends_with('\n') { "" } else { "\n" };
        format!("{newline}{think_end}\n\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_edge_cases() {
        let lp = [(-3.0f32), (0.9f32).ln(), (0.8f32).ln()];
        let c = confidence(&lp, true, true);
        assert!((c - (0.72f64).sqrt()).abs() < 1e-6, "{c}");
        assert_eq!(confidence(&lp, false, true), 0.0, "strict: no </think>, no confidence");
        assert!((confidence(&lp, false, false) - c).abs() < 1e-12);
        assert_eq!(confidence(&lp[..1], true, true), 0.0, "one token is not enough");
        assert_eq!(confidence(&[], true, false), 0.0, "empty probe");
    }

    #[test]
    fn close_rule() {
        assert_eq!(close_text("a = 3", "</think>"), "\n</think>\n\n");
        assert_eq!(close_text("a = 3\n", "</think>"), "</think>\n\n");
        assert_eq!(close_text("x</think>", "</think>"), "\n\n");
        assert_eq!(close_text("x</think>\n\nans", "</think>"), "\n");
        assert_eq!(close_text("x</think>\n", "</think>"), "");
    }
}
