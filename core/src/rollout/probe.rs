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
    /// Whether it was stopped before its end because no continuation could pass the threshold
    /// any more (`cannot_pass`); its confidence is then that of the tokens it decoded (0 in strict
    /// mode, as for every probe that did not end with the stop text).
    #[serde(default)]
    pub cut_short: bool,
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

/// Whether a probe whose top-1 log-probs so far are `top1_logprobs` can no longer reach a
/// confidence above `threshold` within `max_tokens`, whatever it decodes next. Log-probs are at
/// most 0, so their sum over tokens 2..n only falls as n grows, while the mean needs a sum above
/// (n - 1) ln(threshold) >= (max_tokens - 1) ln(threshold): once the sum is below that bound the
/// probe is decided. Exact: it never stops a probe that could have passed (a 1e-9 margin absorbs
/// the rounding of `exp(ln(threshold))`).
pub fn cannot_pass(top1_logprobs: &[f32], max_tokens: usize, threshold: f64) -> bool {
    if top1_logprobs.len() < 2 || threshold <= 0.0 {
        return false;
    }
    if threshold >= 1.0 {
        return true; // a geometric mean of probabilities is at most 1
    }
    let sum: f64 = top1_logprobs[1..].iter().map(|&x| x as f64).sum();
    sum < max_tokens.saturating_sub(1) as f64 * threshold.ln() - 1e-9
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
    fn a_probe_is_cut_only_when_no_continuation_can_pass() {
        let threshold = 0.95f64;
        let max = 5;
        // The bound: 4 ln 0.95 = -0.2052; tokens after the first count.
        let spent = [-9.0f32, -0.1, -0.1];
        assert!(!cannot_pass(&spent, max, threshold), "-0.2 is still above the bound");
        let over = [-9.0f32, -0.1, -0.11];
        assert!(cannot_pass(&over, max, threshold));
        assert!(!cannot_pass(&[-9.0], max, threshold), "the first token never counts");
        // Exhaustive check on a grid: whenever a prefix is cut, every completion to any length
        // up to `max` fails the threshold.
        let grid = [0.0f32, -0.01, -0.03, -0.05, -0.1, -0.3];
        let mut cut = 0;
        for a in grid {
            for b in grid {
                let prefix = [-1.0f32, a, b];
                if !cannot_pass(&prefix, max, threshold) {
                    continue;
                }
                cut += 1;
                for c in grid {
                    for d in grid {
                        let full = [-1.0f32, a, b, c, d];
                        for n in 3..=max {
                            assert!(confidence(&full[..n], true, true) <= threshold, "{:?}", &full[..n]);
                        }
                    }
                }
            }
        }
        assert!(cut > 0, "the grid exercises the cut");
        assert!(cannot_pass(&[0.0, 0.0], 3, 1.0), "nothing passes a threshold of 1");
        assert!(!cannot_pass(&[0.0, -50.0], 3, 0.0), "everything passes a threshold of 0");
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
