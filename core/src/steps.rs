//! Semantic steps of a reasoning response (spec section 1).
//!
//! A response is cut into steps at trigger words (default `Wait`): step 0 runs from the start of the
//! text, and every standalone trigger occurrence opens a new step that runs up to the next trigger.
//! The step count `k = 1 + (number of trigger occurrences)` drives the Step-Aware Relative Reward, and
//! the same trigger set drives the pauses of the dynamic truncated rollout, so both use [`Triggers`].
//!
//! A trigger only counts as a standalone word: no ASCII letter directly before or after it, so
//! "Waiting" and "await" are not triggers while "Wait," and "(Wait)" are. Matching is case-sensitive.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The trigger word of the paper's runs.
pub const DEFAULT_TRIGGER: &str = "Wait";

/// Errors building a trigger set.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StepsError {
    /// The set has no word: no response could ever have more than one step.
    #[error("the trigger set is empty: give at least one trigger word (the default is \"Wait\")")]
    Empty,
    /// A word is empty: it would match everywhere.
    #[error("trigger word {index} is empty")]
    EmptyWord {
        /// Position of the empty word in the list.
        index: usize,
    },
}

/// The trigger word set W: the words that open a new semantic step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct Triggers {
    words: Vec<String>,
}

impl Default for Triggers {
    fn default() -> Self {
        Triggers { words: vec![DEFAULT_TRIGGER.to_string()] }
    }
}

impl TryFrom<Vec<String>> for Triggers {
    type Error = StepsError;
    fn try_from(words: Vec<String>) -> Result<Self, StepsError> {
        Triggers::new(words)
    }
}

impl From<Triggers> for Vec<String> {
    fn from(t: Triggers) -> Self {
        t.words
    }
}

/// One standalone trigger occurrence in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TriggerHit {
    /// Index of the matched word in [`Triggers::words`].
    pub word: usize,
    /// Byte offset where the trigger starts.
    pub start: usize,
    /// Byte offset just past the trigger.
    pub end: usize,
    /// Whether the character after the trigger is known (and is not an ASCII letter). `false` means the
    /// trigger ends the text so far: a streaming detector must wait for the next character, because a
    /// following letter would turn "Wait" into "Waiting".
    pub complete: bool,
}

/// A step as a byte range of the response text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Step number, 0 for the text before the first trigger.
    pub index: usize,
    /// Byte offset of the first byte (the trigger itself for steps after the first).
    pub start: usize,
    /// Byte offset just past the last byte.
    pub end: usize,
}

impl Step {
    /// The step's text within the text it was computed from (empty if `text` is another string).
    pub fn text<'a>(&self, text: &'a str) -> &'a str {
        text.get(self.start..self.end).unwrap_or("")
    }

    /// Length of the step in bytes.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the step has no text (step 0 of a response that starts with a trigger).
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

fn is_ascii_letter(b: Option<&u8>) -> bool {
    b.is_some_and(|b| b.is_ascii_alphabetic())
}

impl Triggers {
    /// A trigger set from words such as `["Wait", "Alternatively", "Hmm"]`; duplicates are dropped.
    pub fn new<I, S>(words: I) -> Result<Self, StepsError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut out: Vec<String> = Vec::new();
        // A set for the duplicates: a list given by a user may be long.
        let mut seen = std::collections::HashSet::new();
        for (index, w) in words.into_iter().enumerate() {
            let w = w.into();
            if w.is_empty() {
                return Err(StepsError::EmptyWord { index });
            }
            if seen.insert(w.clone()) {
                out.push(w);
            }
        }
        if out.is_empty() {
            return Err(StepsError::Empty);
        }
        Ok(Triggers { words: out })
    }

    /// The trigger words, in the order given.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The longest word that starts at byte `i` with no ASCII letter right before it (the right-hand
    /// boundary is left to the caller). Longest first, so that with both "Wait" and "Wait a" the
    /// longer reading wins.
    fn word_at(&self, text: &str, i: usize) -> Option<usize> {
        let bytes = text.as_bytes();
        if i > 0 && is_ascii_letter(bytes.get(i - 1)) {
            return None;
        }
        let rest = text.get(i..)?;
        let mut best: Option<usize> = None;
        for (w, word) in self.words.iter().enumerate() {
            if rest.starts_with(word.as_str()) && best.is_none_or(|b| self.words[b].len() < word.len()) {
                best = Some(w);
            }
        }
        best
    }

    /// Every standalone trigger occurrence in `text` at or after byte `from`, in order and
    /// non-overlapping. A trigger that ends the text counts (with `complete == false`).
    pub fn scan_from(&self, text: &str, from: usize) -> Vec<TriggerHit> {
        let bytes = text.as_bytes();
        let mut hits = Vec::new();
        let mut i = from;
        while i < text.len() {
            if !text.is_char_boundary(i) {
                i += 1;
                continue;
            }
            if let Some(w) = self.word_at(text, i) {
                let end = i + self.words[w].len();
                if !is_ascii_letter(bytes.get(end)) {
                    hits.push(TriggerHit { word: w, start: i, end, complete: end < text.len() });
                    i = end;
                    continue;
                }
            }
            i += 1;
        }
        hits
    }

    /// Every standalone trigger occurrence in `text`.
    pub fn find_all(&self, text: &str) -> Vec<TriggerHit> {
        self.scan_from(text, 0)
    }

    /// The step count k = 1 + number of standalone trigger occurrences.
    pub fn count_steps(&self, text: &str) -> usize {
        1 + self.find_all(text).len()
    }

    /// The steps of `text` as byte ranges; always `count_steps(text)` of them, covering the whole text.
    /// Step 0 is empty when the text starts with a trigger.
    pub fn steps(&self, text: &str) -> Vec<Step> {
        let hits = self.find_all(text);
        let mut starts = Vec::with_capacity(hits.len() + 1);
        starts.push(0);
        starts.extend(hits.iter().map(|h| h.start));
        let ends = starts.iter().skip(1).copied().chain(std::iter::once(text.len()));
        starts.iter().zip(ends).enumerate().map(|(index, (&start, end))| Step { index, start, end }).collect()
    }

    /// Whether the text decoded so far ends with a standalone trigger, for a rollout engine that
    /// checks after every sampled token.
    ///
    /// - The text ends with the trigger itself: `Some` with `complete == false`. The trigger is not yet
    ///   certain: if the next character is an ASCII letter it was part of a longer word ("Waiting").
    ///   An engine either waits one more token, or accepts the trigger now when its tokenizer has
    ///   whole-word tokens such as " Wait".
    /// - The text ends with the trigger plus exactly one character that is not an ASCII letter
    ///   (e.g. "Wait,"): `Some` with `complete == true`; `end` is where the trigger stops, so the
    ///   engine can cut the text back to `start` before probing.
    ///
    /// When one appended piece can carry more than one character past a trigger, use
    /// [`Triggers::scan_from`] with the byte length of the text before the piece instead.
    pub fn ends_with_trigger(&self, text: &str) -> Option<TriggerHit> {
        let last_char_start = text.char_indices().next_back().map(|(i, _)| i)?;
        let tail_from = |cut: usize| -> Option<TriggerHit> {
            // The longest word ending exactly at `cut` with a non-letter (or nothing) before it.
            self.words
                .iter()
                .enumerate()
                .filter(|(_, w)| cut >= w.len() && text.get(..cut).is_some_and(|t| t.ends_with(w.as_str())))
                .map(|(i, w)| (i, cut - w.len()))
                .filter(|&(_, start)| start == 0 || !is_ascii_letter(text.as_bytes().get(start - 1)))
                .max_by_key(|&(i, _)| self.words[i].len())
                .map(|(word, start)| TriggerHit { word, start, end: cut, complete: cut < text.len() })
        };
        if let Some(hit) = tail_from(text.len()) {
            return Some(hit);
        }
        if is_ascii_letter(text.as_bytes().get(last_char_start)) {
            return None;
        }
        tail_from(last_char_start)
    }
}

/// The step count k of `text` under the default trigger set (`Wait`).
pub fn count_steps(text: &str) -> usize {
    Triggers::default().count_steps(text)
}

/// The step that contains byte `pos` (the last step whose start is at or before it). Steps are in
/// order, so this is a binary search: a linear one made a response quadratic in its triggers.
fn step_at(steps: &[Step], pos: usize) -> usize {
    steps.partition_point(|s| s.start <= pos).saturating_sub(1)
}

/// The step of every token, given each token's byte range `(start, end)` in the text the steps were
/// computed from.
///
/// A token belongs to the step that holds its last byte: BPE tokens such as " Wait" start with the
/// space before the trigger, and such a token opens the trigger's step, not the previous one. A token
/// with no text (e.g. an end-of-sequence token) belongs to the step at its start offset.
pub fn token_steps(steps: &[Step], offsets: &[(usize, usize)]) -> Vec<usize> {
    if steps.is_empty() {
        return vec![0; offsets.len()];
    }
    offsets.iter().map(|&(start, end)| step_at(steps, if end > start { end - 1 } else { start })).collect()
}

/// For every step, the index of the token that starts it (its first token under the rule of
/// [`token_steps`]); `None` for a step that no token falls into, such as an empty step 0.
pub fn step_first_tokens(steps: &[Step], offsets: &[(usize, usize)]) -> Vec<Option<usize>> {
    let mut first = vec![None; steps.len()];
    for (t, s) in token_steps(steps, offsets).into_iter().enumerate() {
        if let Some(slot @ None) = first.get_mut(s) {
            *slot = Some(t);
        }
    }
    first
}

/// The token index where each step starts, given each token's byte range: a step's first token
/// under the rule of [`token_steps`], step 0 at 0, and an empty step where the next one starts
/// (`tokens` for a step after every token).
pub fn step_starts(steps: &[Step], offsets: &[(usize, usize)]) -> Vec<usize> {
    let mut starts = vec![offsets.len(); steps.len().max(1)];
    let mut next = offsets.len();
    for (start, first) in starts.iter_mut().zip(step_first_tokens(steps, offsets)).rev() {
        next = first.unwrap_or(next);
        *start = next;
    }
    starts[0] = 0;
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_standalone_triggers_only() {
        assert_eq!(count_steps(""), 1);
        assert_eq!(count_steps("no trigger"), 1);
        assert_eq!(count_steps("Wait"), 2);
        assert_eq!(count_steps("Wait, Wait. (Wait)"), 4);
        assert_eq!(count_steps("Waiting is over; await nothing."), 1);
        assert_eq!(count_steps("WaitWait"), 1);
        assert_eq!(count_steps("wait, WAIT"), 1, "case-sensitive");
        assert_eq!(count_steps("Wait2 _Wait éWait"), 4, "digits, underscores and non-ASCII are boundaries");
    }

    #[test]
    fn configurable_words() {
        let t = Triggers::new(["Wait", "Alternatively", "Hmm"]).unwrap();
        assert_eq!(t.count_steps("Hmm. Wait. Alternatively, Hmmm"), 4);
        assert_eq!(Triggers::new(Vec::<String>::new()), Err(StepsError::Empty));
        assert_eq!(Triggers::new(["Wait", ""]), Err(StepsError::EmptyWord { index: 1 }));
        let json: Triggers = serde_json::from_str(r#"["Wait","Hmm"]"#).unwrap();
        assert_eq!(json.words(), ["Wait", "Hmm"]);
        assert!(serde_json::from_str::<Triggers>("[]").is_err());
    }

    #[test]
    fn steps_are_spans() {
        let text = "a Wait b Wait";
        let t = Triggers::default();
        let steps = t.steps(text);
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[0].text(text), "a ");
        assert_eq!(steps[1].text(text), "Wait b ");
        assert_eq!(steps[2].text(text), "Wait");
        let starts_with = t.steps("Wait x");
        assert!(starts_with[0].is_empty());
        assert_eq!(starts_with[1].text("Wait x"), "Wait x");
        assert_eq!(t.steps("").len(), 1);
    }

    #[test]
    fn tokens_map_to_steps() {
        // "ab Wait, cd": tokens "ab", " Wait", ",", " cd", <eos>
        let text = "ab Wait, cd";
        let steps = Triggers::default().steps(text);
        let offs = [(0, 2), (2, 7), (7, 8), (8, 11), (11, 11)];
        assert_eq!(token_steps(&steps, &offs), vec![0, 1, 1, 1, 1]);
        assert_eq!(step_first_tokens(&steps, &offs), vec![Some(0), Some(1)]);
        assert_eq!(step_starts(&steps, &offs), vec![0, 1]);
        let steps = Triggers::default().steps("Wait x");
        assert_eq!(step_first_tokens(&steps, &[(0, 4), (4, 6)]), vec![None, Some(0)]);
        assert_eq!(step_starts(&steps, &[(0, 4), (4, 6)]), vec![0, 0], "an empty step 0");
        assert_eq!(step_starts(&Triggers::default().steps(""), &[]), vec![0]);
    }

    #[test]
    fn regression_token_steps_are_not_quadratic_in_triggers() {
        // 100,000 one-token steps: a linear search per token took 5e9 comparisons.
        let text = "Wait ".repeat(100_000);
        let offsets: Vec<(usize, usize)> = (0..100_000).map(|i| (5 * i, 5 * i + 5)).collect();
        let start = std::time::Instant::now();
        let steps = Triggers::default().steps(&text);
        let starts = step_starts(&steps, &offsets);
        assert_eq!(starts.len(), 100_001);
        assert_eq!(starts[1..10], [0, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(start.elapsed().as_secs_f64() < 5.0, "took {:?}", start.elapsed());
    }

    #[test]
    fn streaming_tail() {
        let t = Triggers::default();
        let pending = t.ends_with_trigger("ok. Wait").unwrap();
        assert_eq!((pending.start, pending.end, pending.complete), (4, 8, false));
        let done = t.ends_with_trigger("ok. Wait,").unwrap();
        assert_eq!((done.start, done.end, done.complete), (4, 8, true));
        assert!(t.ends_with_trigger("ok. Waiti").is_none());
        assert!(t.ends_with_trigger("await").is_none());
        assert!(t.ends_with_trigger("").is_none());
        assert!(t.ends_with_trigger("Wait, I").is_none());
        assert_eq!(t.ends_with_trigger("Wait").unwrap().start, 0);
        let hits = t.scan_from("x. Wait, y. Wait", 1);
        assert_eq!(hits.len(), 2);
        assert!(hits[0].complete && !hits[1].complete);
        assert!(t.scan_from("x Wait", 3).is_empty(), "a scan starting inside a trigger does not see it");
    }
}
