//! One response being generated: a small state machine that, given the token drawn at its next
//! position, decides the token to feed and whether its key/value cache row must be rewound first.

use std::collections::{BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::config::{RolloutConfig, TruncationConfig};
use super::probe::{ExitType, ProbeRecord, cannot_pass, close_text, confidence};
use crate::decode::uniform;
use crate::error::Result;
use crate::rng::Rng;
use crate::steps::{Triggers, step_starts};
use crate::text::Tokenizer;

/// Tokens decoded around the newest one to detect triggers and stop texts.
const WINDOW: usize = 16;

/// A finished response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// Index of its prompt in the batch: the responses of one prompt form its group.
    pub prompt: usize,
    /// The trained response tokens (probes never appear here).
    pub ids: Vec<u32>,
    /// Per token, its log-prob under the model that sampled it (the untempered softmax); `None`
    /// for a token the rollout inserted rather than sampled (the text that closes the thinking
    /// after an exit).
    pub log_probs: Vec<Option<f32>>,
    /// Token index where each semantic step starts (step 0 at 0; an empty step starts where the
    /// next one does): as many as the response has steps.
    pub step_starts: Vec<usize>,
    /// How its thinking ended.
    pub exit: ExitType,
    /// Every probe it made, in order.
    pub probes: Vec<ProbeRecord>,
    /// Whether it hit `max_completion_length`.
    pub clipped: bool,
    /// The weights that sampled it: the optimizer steps they had taken.
    pub policy_version: u64,
}

impl Rollout {
    /// Sets [`Rollout::step_starts`] from the decoded response.
    pub fn find_steps(&mut self, tokenizer: &Tokenizer, triggers: &Triggers) -> Result<()> {
        let (text, offsets) = tokenizer.decode_with_offsets(&self.ids)?;
        self.step_starts = step_starts(&triggers.steps(&text), &offsets);
        Ok(())
    }
}

#[derive(Debug)]
enum Mode {
    Think,
    /// Probing from response position `pause`; holds top-1 log-probs and ids of the probe so far.
    Probe {
        pause: usize,
        logprobs: Vec<f32>,
        ids: Vec<u32>,
    },
    Answer,
    Done,
}

/// The next request of a row decoded by a server.
#[cfg(all(feature = "vllm", not(target_family = "wasm")))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// Sample thinking tokens until a trigger word or the end of thinking, at most `max_tokens`.
    Think { max_tokens: usize },
    /// A greedy probe: the context up to response position `pause`, then the inducer.
    Probe { pause: usize, max_tokens: usize },
    /// Sample to the end of the response (the answer, or plain sampling), at most `max_tokens`.
    Answer { max_tokens: usize },
    /// Nothing: the row is finished.
    Done,
}

/// The decision of one step for one row.
pub(super) struct Step {
    /// Rewind this row's cache to this many tokens (prompt included) before feeding.
    pub rewind: Option<usize>,
    /// The token to feed; `None` when the row is done.
    pub feed: Option<u32>,
}

/// What every row needs to know, shared by the batch.
pub(super) struct Shared<'a> {
    pub config: &'a RolloutConfig,
    pub tokenizer: &'a Tokenizer,
    pub eos: &'a [u32],
    pub inducer: Vec<u32>,
}

/// One row in flight.
pub(super) struct Row {
    pub out: Rollout,
    prompt_len: usize,
    mode: Mode,
    /// Tokens to feed before sampling again (inducer, closing text, a trigger put back).
    queue: VecDeque<u32>,
    /// Response tokens the cache holds for this row (probe and inducer tokens never count).
    fed: usize,
    exit: Option<ExitType>,
    /// Response index where the current thinking chunk started, and recent chunks' word sets.
    chunk_start: usize,
    chunks: VecDeque<BTreeSet<String>>,
    rng: Rng,
}

impl Row {
    pub fn new(prompt: usize, prompt_len: usize, rng: Rng) -> Self {
        Row {
            out: Rollout {
                prompt,
                ids: Vec::new(),
                log_probs: Vec::new(),
                step_starts: Vec::new(),
                exit: ExitType::Natural,
                probes: Vec::new(),
                clipped: false,
                policy_version: 0,
            },
            prompt_len,
            mode: Mode::Think,
            queue: VecDeque::new(),
            fed: 0,
            exit: None,
            chunk_start: 0,
            chunks: VecDeque::new(),
            rng,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.mode, Mode::Done)
    }

    /// The random number this row's next draw needs: from its stream when it will sample (its
    /// stream advances only then, as with a host-side sampler), else -1, which draws greedily (a
    /// probe's tokens; a draw the row will not use).
    pub fn uniform(&mut self, s: &Shared) -> f32 {
        let samples = !matches!(self.mode, Mode::Probe { .. } | Mode::Done) && self.queue.is_empty();
        if samples { uniform(&s.config.sampling, &mut self.rng) } else { -1.0 }
    }

    /// Consumes the token drawn for this row's next position (with its log-prob; greedy while
    /// probing) and says what to feed.
    pub fn step(&mut self, id: u32, log_prob: f32, s: &Shared) -> Result<Step> {
        let mut rewind = None;
        if let Mode::Probe { .. } = self.mode {
            rewind = self.probe_step(id, log_prob, s)?;
        } else if self.queue.is_empty() {
            self.sample_step(id, log_prob, s, &mut rewind)?;
        }
        if self.is_done() {
            return Ok(Step { rewind, feed: None });
        }
        let feed = self.queue.pop_front().expect("a live row always has a token to feed");
        if !matches!(self.mode, Mode::Probe { .. }) {
            self.fed += 1;
        }
        Ok(Step { rewind, feed: Some(feed) })
    }

    /// What the row needs next when an engine decodes it by requests (a server) rather than one
    /// token per forward pass.
    #[cfg(all(feature = "vllm", not(target_family = "wasm")))]
    pub(super) fn next(&self, s: &Shared) -> Next {
        let n = self.out.ids.len();
        let left = s.config.max_completion_length.saturating_sub(n);
        match (&self.mode, &s.config.truncation) {
            (Mode::Done, _) => Next::Done,
            (Mode::Probe { pause, .. }, Some(t)) => {
                Next::Probe { pause: *pause, max_tokens: t.probe_max_tokens }
            }
            (Mode::Think, Some(t)) => {
                let budget = (t.think_budget_ratio * s.config.max_completion_length as f64) as usize;
                Next::Think {
                    max_tokens: budget.min(s.config.max_completion_length).saturating_sub(n).max(1),
                }
            }
            // Plain sampling, or the answer: one request to the end.
            _ => Next::Answer { max_tokens: left },
        }
    }

    /// Takes one token a request returned (sampled, or greedy while probing), as [`Row::step`]
    /// would; true when the row changed course (a probe started or ended, thinking closed, the
    /// row finished), so the rest of that reply is not this row's any more. The next request
    /// continues from the prompt and [`Rollout::ids`] (or the probe's context).
    #[cfg(all(feature = "vllm", not(target_family = "wasm")))]
    pub(super) fn accept(&mut self, id: u32, log_prob: f32, s: &Shared) -> Result<bool> {
        let (mode, probes, len) =
            (std::mem::discriminant(&self.mode), self.out.probes.len(), self.out.ids.len());
        let step = self.step(id, log_prob, s)?;
        // A request-driven row has no cache to feed: what is queued is already in its ids.
        self.queue.clear();
        Ok(step.rewind.is_some()
            || std::mem::discriminant(&self.mode) != mode
            || self.out.probes.len() != probes
            || self.out.ids.len() < len)
    }

    /// Ends a row whose answer has no tokens left (the closing text filled the response).
    #[cfg(all(feature = "vllm", not(target_family = "wasm")))]
    pub(super) fn finish_at_length(&mut self) {
        self.out.clipped = true;
        self.finish(ExitType::Natural);
    }

    /// Forgets cached response tokens from `at` on; returns the cache length to rewind to.
    fn rewind_to(&mut self, at: usize) -> usize {
        self.fed = self.fed.min(at);
        self.prompt_len + self.fed
    }

    fn finish(&mut self, exit: ExitType) {
        self.out.exit = self.exit.unwrap_or(exit);
        self.mode = Mode::Done;
        self.queue.clear();
    }

    fn sample_step(&mut self, id: u32, log_prob: f32, s: &Shared, rewind: &mut Option<usize>) -> Result<()> {
        if self.out.ids.len() >= s.config.max_completion_length {
            // The text that closed the thinking used up the budget: nothing more is sampled.
            self.out.clipped = true;
            self.finish(ExitType::Natural);
            return Ok(());
        }
        self.out.ids.push(id);
        self.out.log_probs.push(Some(log_prob));
        let n = self.out.ids.len();
        let thinking = matches!(self.mode, Mode::Think);
        if s.eos.contains(&id) {
            self.finish(if thinking { ExitType::Eos } else { ExitType::Natural });
            return Ok(());
        }
        if n >= s.config.max_completion_length {
            self.out.clipped = true;
            self.finish(if thinking { ExitType::Budget } else { ExitType::Natural });
            return Ok(());
        }
        self.queue.push_back(id);
        if !thinking {
            return Ok(());
        }
        let Some(t) = &s.config.truncation else {
            // Plain sampling: only note whether thinking was closed.
            if self.newest_text_contains(s, &s.config.think_end)? {
                self.exit = Some(ExitType::Natural);
                self.mode = Mode::Answer;
            }
            return Ok(());
        };
        if self.newest_text_contains(s, &s.config.think_end)? {
            self.exit = Some(ExitType::Natural);
            self.mode = Mode::Answer;
            return Ok(());
        }
        let budget = (t.think_budget_ratio * s.config.max_completion_length as f64) as usize;
        if n >= budget {
            *rewind = Some(self.close(n, ExitType::Budget, s)?);
            return Ok(());
        }
        if let Some(pause) = self.trigger_before_newest(s)? {
            if budget.saturating_sub(pause) <= t.budget_margin {
                *rewind = Some(self.close(pause, ExitType::Budget, s)?);
            } else if self.repeats(pause, s, t)? {
                *rewind = Some(self.close(pause, ExitType::Repetition, s)?);
            } else if self.out.probes.len() < t.max_probes {
                // Pause before the trigger: the probe sees exactly the context without it.
                self.queue.clear();
                self.queue.extend(&s.inducer);
                self.mode = Mode::Probe { pause, logprobs: Vec::new(), ids: Vec::new() };
                *rewind = Some(self.rewind_to(pause));
            }
        }
        Ok(())
    }

    /// One greedy probe token: `log_prob` is its top-1 log-prob, what the confidence averages.
    fn probe_step(&mut self, id: u32, log_prob: f32, s: &Shared) -> Result<Option<usize>> {
        if !self.queue.is_empty() {
            return Ok(None); // still feeding the inducer
        }
        let t = s.config.truncation.as_ref().expect("probes only run with truncation on");
        let Mode::Probe { pause, logprobs, ids } = &mut self.mode else { unreachable!() };
        logprobs.push(log_prob);
        ids.push(id);
        let text = s.tokenizer.decode(&ids[ids.len().saturating_sub(WINDOW)..])?;
        let stopped = text.contains(t.probe_stop.as_str());
        // A probe that can no longer pass ends here: its verdict is the one its end would give.
        let at_end = stopped || ids.len() >= t.probe_max_tokens;
        let cut_short =
            !at_end && t.probe_early_stop && cannot_pass(logprobs, t.probe_max_tokens, t.probe_threshold);
        if !at_end && !cut_short {
            self.queue.push_back(id);
            return Ok(None);
        }
        // Strict mode: 0 for a probe cut short, as for any that did not end with the stop text.
        let c = confidence(logprobs, stopped, t.strict);
        let (pause, tokens) = (*pause, ids.len());
        let exited = !cut_short && c > t.probe_threshold;
        self.out.probes.push(ProbeRecord { position: pause, confidence: c, tokens, exited, cut_short });
        if exited {
            return self.close(pause, ExitType::EarlyExit, s).map(Some);
        }
        // Put the trigger (and the token after it) back and think on.
        self.mode = Mode::Think;
        let rewind = self.rewind_to(pause);
        self.queue.extend(&self.out.ids[pause..]);
        Ok(Some(rewind))
    }

    /// Cuts the thinking at response position `at`, appends the closing text, and switches to the
    /// answer; returns the cache length to rewind to. Tokens after the cut are fed anew.
    fn close(&mut self, at: usize, exit: ExitType, s: &Shared) -> Result<usize> {
        self.out.ids.truncate(at);
        self.out.log_probs.truncate(at);
        let text = s.tokenizer.decode(&self.out.ids)?;
        let close = s.tokenizer.encode(&close_text(&text, &s.config.think_end))?;
        self.out.ids.extend(&close);
        self.out.log_probs.extend(std::iter::repeat_n(None, close.len()));
        let rewind = self.rewind_to(at);
        self.queue.clear();
        self.queue.extend(&self.out.ids[self.fed..]);
        self.exit = Some(exit);
        self.mode = Mode::Answer;
        Ok(rewind)
    }

    /// Whether the text of the newest token added `needle` (it is not in the text before it).
    fn newest_text_contains(&self, s: &Shared, needle: &str) -> Result<bool> {
        let ids = &self.out.ids;
        let from = ids.len().saturating_sub(WINDOW);
        Ok(s.tokenizer.decode(&ids[from..])?.contains(needle)
            && !s.tokenizer.decode(&ids[from..ids.len() - 1])?.contains(needle))
    }

    /// If the tokens before the newest one end with a standalone trigger word (a non-letter before
    /// it, and the newest token does not start with a letter), the index of the trigger's first token.
    fn trigger_before_newest(&self, s: &Shared) -> Result<Option<usize>> {
        let ids = &self.out.ids;
        let n = ids.len() - 1;
        let from = n.saturating_sub(WINDOW);
        let before = s.tokenizer.decode(&ids[from..n])?;
        let after = s.tokenizer.decode(&ids[from..=n])?;
        let next = after.get(before.len()..).and_then(|t| t.chars().next());
        if next.is_some_and(|c| c.is_ascii_alphabetic()) {
            return Ok(None);
        }
        // Only a trigger that ends the text before the newest token: one seen earlier was handled then.
        let Some(hit) = s.config.triggers.ends_with_trigger(&before).filter(|h| h.end == before.len()) else {
            return Ok(None);
        };
        // The trigger starts in the last token whose text, with what follows, covers it.
        let covered = before.len() - hit.start;
        let mut start = n;
        while start > from && s.tokenizer.decode(&ids[start..n])?.len() < covered {
            start -= 1;
        }
        Ok(Some(start))
    }

    /// Records the thinking chunk that ends at `pause`; true once the last `repetition_window`
    /// chunks have the same word set.
    fn repeats(&mut self, pause: usize, s: &Shared, t: &TruncationConfig) -> Result<bool> {
        let text = s.tokenizer.decode(&self.out.ids[self.chunk_start.min(pause)..pause])?;
        self.chunk_start = pause;
        let words: BTreeSet<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect();
        self.chunks.push_back(words);
        if self.chunks.len() > t.repetition_window {
            self.chunks.pop_front();
        }
        Ok(t.repetition_window > 1
            && self.chunks.len() == t.repetition_window
            && self.chunks.iter().all(|c| c == &self.chunks[0]))
    }
}
