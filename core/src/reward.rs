//! Rewards for a batch of responses grouped by prompt (spec sections 3 and 6).
//!
//! - [`StepAwareReward`]: the Step-Aware Relative Reward of Step-GRPO. A correct response is scaled by
//!   how its step count k compares with the mean step count mu of its group:
//!   `R = alpha * acc * (1 - beta * tanh((k - mu) / mu)) + (1 - alpha) * fmt`.
//! - [`AccuracyReward`]: the GRPO baseline, `R = alpha * acc + (1 - alpha) * fmt`.
//! - [`LengthPenaltyReward`]: GRPO plus the Kimi k1.5 length penalty, computed per group.
//!
//! Every reward grades the same way ([`judge`]): whitespace around `<`, `>` and `/` is removed from the
//! response, the last `\boxed{...}` is extracted and graded against the ground truth, and the format
//! score is 1 iff a non-empty boxed answer exists. Groups are identified by a uid per response and may
//! be interleaved in the batch.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::grade::{extract_boxed, grade, parse_ground_truth};
use crate::steps::Triggers;

/// Errors of reward configuration and scoring.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum RewardError {
    /// A configuration value is out of range.
    #[error("invalid reward config: {0}")]
    InvalidConfig(String),
    /// The per-response inputs of a batch do not have the same length.
    #[error("reward batch has {responses} responses but {got} {what}")]
    LengthMismatch {
        /// Which input is off.
        what: &'static str,
        /// Number of responses.
        responses: usize,
        /// Number of entries in the other input.
        got: usize,
    },
    /// The reward needs response lengths (token counts) and the batch has none.
    #[error("{0} needs the token length of every response: build the batch with `with_lengths`")]
    MissingLengths(&'static str),
}

/// The reward of one response, with its parts for logging.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RewardOutput {
    /// The scalar reward that enters the GRPO advantage.
    pub overall: f64,
    /// 1 when the boxed answer matches the ground truth, else 0.
    pub accuracy: f64,
    /// 1 when a non-empty boxed answer exists, else 0.
    pub format: f64,
    /// Step count k = 1 + number of trigger occurrences.
    pub steps: usize,
    /// Mean step count mu of the response's group (over its correct responses, or over all of them
    /// for the all-sample option); `None` when the group has no correct response.
    pub step_mean: Option<f64>,
}

/// A batch to score: one entry per response in every slice (checked when it is built).
#[derive(Debug, Clone, Copy)]
pub struct RewardBatch<'a> {
    responses: &'a [&'a str],
    ground_truths: &'a [&'a str],
    uids: &'a [&'a str],
    lengths: Option<&'a [usize]>,
}

impl<'a> RewardBatch<'a> {
    /// A batch of decoded responses, the ground truth of each response's prompt (plain, `#### 42` or
    /// a `\boxed{}` solution) and its group (prompt) id; groups may be interleaved. Fails when the
    /// slices differ in length.
    pub fn new(
        responses: &'a [&'a str],
        ground_truths: &'a [&'a str],
        uids: &'a [&'a str],
    ) -> Result<Self, RewardError> {
        let n = responses.len();
        for (what, got) in [("ground truths", ground_truths.len()), ("uids", uids.len())] {
            if got != n {
                return Err(RewardError::LengthMismatch { what, responses: n, got });
            }
        }
        Ok(RewardBatch { responses, ground_truths, uids, lengths: None })
    }

    /// The same batch with the token length of every response (needed by [`LengthPenaltyReward`]).
    pub fn with_lengths(mut self, lengths: &'a [usize]) -> Result<Self, RewardError> {
        if lengths.len() != self.responses.len() {
            let (what, responses, got) = ("lengths", self.responses.len(), lengths.len());
            return Err(RewardError::LengthMismatch { what, responses, got });
        }
        self.lengths = Some(lengths);
        Ok(self)
    }

    /// The responses.
    pub fn responses(&self) -> &'a [&'a str] {
        self.responses
    }

    /// The ground truths.
    pub fn ground_truths(&self) -> &'a [&'a str] {
        self.ground_truths
    }

    /// The group ids.
    pub fn uids(&self) -> &'a [&'a str] {
        self.uids
    }

    /// The token lengths, if given.
    pub fn lengths(&self) -> Option<&'a [usize]> {
        self.lengths
    }

    /// Number of responses.
    pub fn len(&self) -> usize {
        self.responses.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.responses.is_empty()
    }

    /// Response indices of every group, groups in order of first appearance.
    pub fn groups(&self) -> Vec<Vec<usize>> {
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (i, uid) in self.uids.iter().enumerate() {
            let g = *index.entry(uid).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[g].push(i);
        }
        groups
    }
}

/// A reward function over a batch of grouped responses.
pub trait Reward: Send + Sync {
    /// A short name for logs.
    fn name(&self) -> &'static str;
    /// One output per response, in batch order.
    fn score(&self, batch: &RewardBatch<'_>) -> Result<Vec<RewardOutput>, RewardError>;
}

/// The verdict on one response, before any group statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    /// The extracted boxed answer, if any.
    pub answer: Option<String>,
    /// Whether the answer matches the ground truth.
    pub correct: bool,
    /// Whether a non-empty boxed answer exists.
    pub formatted: bool,
    /// Step count k.
    pub steps: usize,
}

/// The response with whitespace around `<`, `>` and `/` removed (so `< /think >` reads `</think>`),
/// as the reference reward does before grading. Linear in the length: each whitespace run is
/// looked at once (a model can emit runs of any length).
pub fn clean_response(response: &str) -> String {
    let is_sep = |c: char| matches!(c, '<' | '>' | '/');
    let mut out = String::with_capacity(response.len());
    // The last character that is not whitespace, and where the pending whitespace run starts.
    let (mut prev, mut run) = (None::<char>, None::<usize>);
    for (i, c) in response.char_indices() {
        if c.is_whitespace() {
            run.get_or_insert(i);
            continue;
        }
        // A run is dropped when it touches a separator on either side.
        if let Some(start) = run.take()
            && !(is_sep(c) || prev.is_some_and(is_sep))
        {
            out.push_str(&response[start..i]);
        }
        out.push(c);
        prev = Some(c);
    }
    if let Some(start) = run
        && !prev.is_some_and(is_sep)
    {
        out.push_str(&response[start..]);
    }
    out
}

/// Grades one response: accuracy against `ground_truth` (read with [`parse_ground_truth`]), format,
/// and step count under `triggers`.
pub fn judge(response: &str, ground_truth: &str, triggers: &Triggers) -> Judged {
    let cleaned = clean_response(response);
    let answer = extract_boxed(&cleaned);
    let truth = parse_ground_truth(ground_truth);
    let correct = answer.as_deref().is_some_and(|a| grade(a, &truth));
    let formatted = answer.as_deref().is_some_and(|a| !a.is_empty());
    Judged { answer, correct, formatted, steps: triggers.count_steps(&cleaned) }
}

fn check_unit(name: &str, v: f64) -> Result<(), RewardError> {
    if !(0.0..=1.0).contains(&v) {
        return Err(RewardError::InvalidConfig(format!("{name} = {v} must be in [0, 1]")));
    }
    Ok(())
}

fn b(x: bool) -> f64 {
    if x { 1.0 } else { 0.0 }
}

/// Mean step count of each response's group: over the correct responses (`None` when there is none)
/// or, with `correct_only == false`, over all of them.
fn group_step_means(batch: &RewardBatch<'_>, judged: &[Judged], correct_only: bool) -> Vec<Option<f64>> {
    let mut means = vec![None; judged.len()];
    for group in batch.groups() {
        let ks: Vec<f64> = group
            .iter()
            .filter(|&&i| !correct_only || judged[i].correct)
            .map(|&i| judged[i].steps as f64)
            .collect();
        let mu = (!ks.is_empty()).then(|| ks.iter().sum::<f64>() / ks.len() as f64);
        for &i in &group {
            means[i] = mu;
        }
    }
    means
}

fn judge_all(batch: &RewardBatch<'_>, triggers: &Triggers) -> Vec<Judged> {
    batch.responses.iter().zip(batch.ground_truths).map(|(r, t)| judge(r, t, triggers)).collect()
}

/// Configuration of [`StepAwareReward`]; field names match the reference fixtures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StepAwareConfig {
    /// Weight of accuracy against format.
    pub alpha: f64,
    /// Strength of the step efficiency factor.
    pub beta: f64,
    /// mu over the correct responses of a group (true, the paper's default) or over all of them.
    pub correct_mean: bool,
    /// Apply the efficiency factor; false gives the plain GRPO reward (the "no step reward" ablation).
    pub step_reward: bool,
    /// Trigger words that separate steps.
    pub triggers: Triggers,
}

impl Default for StepAwareConfig {
    fn default() -> Self {
        StepAwareConfig {
            alpha: 0.9,
            beta: 0.5,
            correct_mean: true,
            step_reward: true,
            triggers: Triggers::default(),
        }
    }
}

impl StepAwareConfig {
    /// Checks the ranges: alpha in [0, 1], and beta in [0, 1] so that a correct response never scores
    /// below zero for its accuracy part.
    pub fn validate(&self) -> Result<(), RewardError> {
        check_unit("alpha", self.alpha)?;
        check_unit("beta", self.beta)
    }
}

/// The Step-Aware Relative Reward (spec section 3).
#[derive(Debug, Clone, PartialEq)]
pub struct StepAwareReward {
    config: StepAwareConfig,
}

impl StepAwareReward {
    /// A reward from a validated config.
    pub fn new(config: StepAwareConfig) -> Result<Self, RewardError> {
        config.validate()?;
        Ok(StepAwareReward { config })
    }

    /// The configuration.
    pub fn config(&self) -> &StepAwareConfig {
        &self.config
    }
}

impl Reward for StepAwareReward {
    fn name(&self) -> &'static str {
        "step_aware"
    }

    fn score(&self, batch: &RewardBatch<'_>) -> Result<Vec<RewardOutput>, RewardError> {
        let c = &self.config;
        let judged = judge_all(batch, &c.triggers);
        let means = group_step_means(batch, &judged, c.correct_mean);
        Ok(judged
            .iter()
            .zip(means)
            .map(|(j, mu)| {
                let (acc, fmt, k) = (b(j.correct), b(j.formatted), j.steps as f64);
                let overall = match mu {
                    // mu > 0 always (k >= 1); the factor only touches correct responses.
                    Some(mu) if c.step_reward && j.correct => {
                        c.alpha * acc * (1.0 - c.beta * ((k - mu) / mu).tanh()) + (1.0 - c.alpha) * fmt
                    }
                    _ => c.alpha * acc + (1.0 - c.alpha) * fmt,
                };
                RewardOutput { overall, accuracy: acc, format: fmt, steps: j.steps, step_mean: mu }
            })
            .collect())
    }
}

/// Configuration of [`AccuracyReward`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccuracyConfig {
    /// Weight of accuracy against format.
    pub alpha: f64,
    /// Trigger words, for the step statistics only.
    pub triggers: Triggers,
}

impl Default for AccuracyConfig {
    fn default() -> Self {
        AccuracyConfig { alpha: 0.9, triggers: Triggers::default() }
    }
}

impl AccuracyConfig {
    /// Checks that alpha is in [0, 1].
    pub fn validate(&self) -> Result<(), RewardError> {
        check_unit("alpha", self.alpha)
    }
}

/// The GRPO baseline: `alpha * acc + (1 - alpha) * fmt`. Steps and the correct-only step mean are
/// still reported, so that runs can be compared on step statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct AccuracyReward {
    inner: StepAwareReward,
}

impl AccuracyReward {
    /// A reward from a validated config.
    pub fn new(config: AccuracyConfig) -> Result<Self, RewardError> {
        config.validate()?;
        let AccuracyConfig { alpha, triggers } = config;
        let step = StepAwareConfig { alpha, beta: 0.0, correct_mean: true, step_reward: false, triggers };
        Ok(AccuracyReward { inner: StepAwareReward::new(step)? })
    }
}

impl Reward for AccuracyReward {
    fn name(&self) -> &'static str {
        "accuracy"
    }

    fn score(&self, batch: &RewardBatch<'_>) -> Result<Vec<RewardOutput>, RewardError> {
        self.inner.score(batch)
    }
}

mod length;

pub use length::{LengthPenaltyConfig, LengthPenaltyReward};

#[cfg(test)]
mod tests;
