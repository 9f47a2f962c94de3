//! What a page shows of one response: its tokens with the semantic step each belongs to, the probes
//! with their confidence, where the thinking was cut, and how it was graded and rewarded.

use serde::Serialize;
use stepgrpo_core::grade::{extract_boxed, grade};
use stepgrpo_core::rollout::{ExitType, ProbeRecord, Rollout};
use stepgrpo_core::steps::{Triggers, token_steps};
use stepgrpo_core::task::Chain;
use stepgrpo_core::text::Tokenizer;
use stepgrpo_core::train::ScoredRollout;

use crate::error::{WebError, WebResult};

/// One response, ready to draw.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutView {
    /// The problem, e.g. `37+8-6=?` (the prompt without the opened thinking block).
    pub problem: String,
    /// Its ground truth.
    pub answer: String,
    /// The whole response text.
    pub text: String,
    /// The response, one decoded piece per token (their concatenation is `text`).
    pub tokens: Vec<String>,
    /// The semantic step (0, 1, ...) of every token: a `Wait` opens a new one.
    pub token_steps: Vec<usize>,
    /// Steps of the response (1 + trigger words).
    pub num_steps: usize,
    /// Every probe: token position where thinking paused, confidence, tokens, whether it exited.
    pub probes: Vec<ProbeRecord>,
    /// How the thinking ended.
    pub exit: ExitType,
    /// Token position where a confident probe cut the thinking (an early exit), if one did.
    pub cut_at: Option<usize>,
    /// Whether the response hit the length limit.
    pub clipped: bool,
    /// The boxed answer given, if any.
    pub given: Option<String>,
    /// Whether it matches the ground truth.
    pub correct: bool,
    /// The method's reward (training rollouts only).
    pub reward: Option<f64>,
    /// The group-relative advantage (training rollouts only).
    pub advantage: Option<f64>,
}

impl RolloutView {
    /// The view of `rollout`, a response to `problem` (a built-in task problem).
    pub fn new(
        tokenizer: &Tokenizer,
        triggers: &Triggers,
        problem: &Chain,
        rollout: &Rollout,
    ) -> WebResult<RolloutView> {
        let tokens = rollout.ids.iter().map(|&id| tokenizer.decode(&[id])).collect::<Result<Vec<_>, _>>()?;
        // Steps are cut on the joined pieces, so token offsets and step spans index the same text.
        let text: String = tokens.concat();
        let mut offsets = Vec::with_capacity(tokens.len());
        let mut at = 0;
        for t in &tokens {
            offsets.push((at, at + t.len()));
            at += t.len();
        }
        let steps = triggers.steps(&text);
        let given = extract_boxed(&text);
        let answer = problem.answer().to_string();
        Ok(RolloutView {
            problem: problem.prompt().trim_end_matches("\n<think>\n").to_string(),
            correct: given.as_deref().is_some_and(|g| grade(g, &answer)),
            answer,
            token_steps: token_steps(&steps, &offsets),
            num_steps: steps.len(),
            tokens,
            text,
            probes: rollout.probes.clone(),
            exit: rollout.exit,
            cut_at: rollout.probes.iter().find(|p| p.exited).map(|p| p.position),
            clipped: rollout.clipped,
            given,
            reward: None,
            advantage: None,
        })
    }

    /// The view of a scored training response, with its reward and advantage.
    pub fn scored(
        tokenizer: &Tokenizer,
        triggers: &Triggers,
        scored: &ScoredRollout,
    ) -> WebResult<RolloutView> {
        let chain = parse_chain(&scored.prompt)?;
        let mut view = RolloutView::new(tokenizer, triggers, &chain, &scored.rollout)?;
        view.reward = Some(scored.reward.overall);
        view.advantage = Some(scored.advantage);
        Ok(view)
    }
}

/// Parses a problem of the built-in task (see [`Chain::parse`]).
pub fn parse_chain(text: &str) -> WebResult<Chain> {
    Chain::parse(text).map_err(|e| WebError::Argument(e.to_string()))
}
