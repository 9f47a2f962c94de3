//! Knobs of rollout generation and of the truncated rollout's probes.

use serde::{Deserialize, Serialize};

use crate::decode::SamplingConfig;
use crate::error::{Error, Result};
use crate::steps::Triggers;

/// The probe loop (spec section 2); every text is configurable so small models trained on their
/// own format can use an inducer they have seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TruncationConfig {
    /// Exit when the probe's confidence exceeds this (the paper's delta). Default 0.95.
    pub probe_threshold: f64,
    /// Probes per response at most; afterwards thinking runs on without probes. Default 10.
    pub max_probes: usize,
    /// Greedy tokens per probe at most. Default 20.
    pub probe_max_tokens: usize,
    /// Stop a probe as soon as no continuation within `probe_max_tokens` can pass the threshold
    /// (`rollout::probe::cannot_pass`). Exact: the same exits and responses, fewer probe tokens;
    /// off, every probe runs to its end (its full confidence recorded). Default true.
    pub probe_early_stop: bool,
    /// Text appended to the context to induce an answer. Default `\n**Final Answer**\n\boxed`.
    pub inducer: String,
    /// The probe stops when its text contains this. Default `</think>`.
    pub probe_stop: String,
    /// Strict mode: confidence is 0 unless the probe ended with `probe_stop`. Default true.
    pub strict: bool,
    /// Thinking budget as a fraction of the response budget. Default 0.9.
    pub think_budget_ratio: f64,
    /// Exit at a trigger when fewer than this many thinking tokens are left. Default 50.
    pub budget_margin: usize,
    /// Exit when this many consecutive thinking chunks have identical word sets (0 or 1: never).
    /// Default 3.
    pub repetition_window: usize,
}

impl Default for TruncationConfig {
    fn default() -> Self {
        TruncationConfig {
            probe_threshold: 0.95,
            max_probes: 10,
            probe_max_tokens: 20,
            probe_early_stop: true,
            inducer: "\n**Final Answer**\n\\boxed".into(),
            probe_stop: "</think>".into(),
            strict: true,
            think_budget_ratio: 0.9,
            budget_margin: 50,
            repetition_window: 3,
        }
    }
}

/// How rollouts are generated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolloutConfig {
    /// Responses per prompt (TRL: `num_generations`). Default 8.
    pub num_generations: usize,
    /// Response tokens at most (TRL: `max_completion_length`). Default 512.
    pub max_completion_length: usize,
    /// Sampling of thinking and answer tokens (probes are always greedy). Default temperature 1.
    pub sampling: SamplingConfig,
    /// Words that start a new step and where probes pause. Default `["Wait"]`.
    pub triggers: Triggers,
    /// The marker that ends the thinking block. Default `</think>`.
    pub think_end: String,
    /// The truncated rollout; `None` = plain sampling.
    pub truncation: Option<TruncationConfig>,
    /// In-process engine: the most memory, in GiB, that the key/value cache of the rows decoded
    /// together may take (at the longest prompt + `max_completion_length` + a probe, counting the
    /// cache's doubling as it fills); a collection is decoded a slice of prompts at a time within
    /// it, at least one prompt's responses. `None`: bounded only by the logits per step (2^24
    /// values). See docs/memory.md for a row's cache. Default none.
    pub max_cache_gib: Option<f64>,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        RolloutConfig {
            num_generations: 8,
            max_completion_length: 512,
            sampling: SamplingConfig::default(),
            triggers: Triggers::default(),
            think_end: "</think>".into(),
            truncation: Some(TruncationConfig::default()),
            max_cache_gib: None,
        }
    }
}

impl RolloutConfig {
    /// Checks every knob, naming the one at fault.
    pub fn validate(&self) -> Result<()> {
        self.sampling.validate()?;
        if self.num_generations == 0 {
            return Err(Error::invalid("num_generations", "must be at least 1"));
        }
        if self.max_completion_length == 0 {
            return Err(Error::invalid("max_completion_length", "must be at least 1"));
        }
        if self.think_end.is_empty() {
            return Err(Error::invalid("think_end", "must not be empty"));
        }
        if let Some(gib) = self.max_cache_gib.filter(|g| !(g.is_finite() && *g > 0.0)) {
            return Err(Error::invalid("max_cache_gib", format!("{gib} must be > 0")));
        }
        if let Some(t) = &self.truncation {
            if !(0.0..=1.0).contains(&t.probe_threshold) {
                let v = t.probe_threshold;
                return Err(Error::invalid(
                    "rl.rollout.truncation.probe_threshold",
                    format!("{v} must be in [0, 1]"),
                ));
            }
            if t.probe_max_tokens < 2 {
                return Err(Error::invalid("probe_max_tokens", "must be at least 2 (the first is skipped)"));
            }
            if !(t.think_budget_ratio > 0.0 && t.think_budget_ratio <= 1.0) {
                return Err(Error::invalid(
                    "think_budget_ratio",
                    format!("{} must be in (0, 1]", t.think_budget_ratio),
                ));
            }
            if t.inducer.is_empty() {
                return Err(Error::invalid("inducer", "must not be empty"));
            }
        }
        Ok(())
    }
}
