//! Supervised examples of the built-in task: overthinking traces and probe-aware cut traces.

use super::{Chain, TaskConfig};
use crate::error::Result;
use crate::rng::Rng;
use crate::text::Tokenizer;

/// A piece of a completion and whether the model is trained to produce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The text.
    pub text: String,
    /// Whether its tokens carry loss (slips and probe inducers do not).
    pub trained: bool,
}

/// One supervised example: a prompt and its completion in segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// The prompt (never trained).
    pub prompt: String,
    /// The completion.
    pub segments: Vec<Segment>,
}

/// Token ids of an example with the loss mask of its completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizedExample {
    /// Prompt ids.
    pub prompt: Vec<u32>,
    /// Completion ids.
    pub completion: Vec<u32>,
    /// Per completion id: whether it is trained.
    pub trained: Vec<bool>,
}

fn seg(text: impl Into<String>, trained: bool) -> Segment {
    Segment { text: text.into(), trained }
}

fn line(a: i64, op: char, x: i64, r: i64) -> String {
    format!("{a}{op}{x}={r}\n")
}

impl Example {
    /// An example for `chain`: a probe-aware cut trace with probability `probe_example_rate`,
    /// otherwise a full overthinking trace.
    pub fn sample(chain: &Chain, config: &TaskConfig, rng: &mut Rng) -> Example {
        if rng.uniform() < config.probe_example_rate {
            Self::probe(chain, config, rng)
        } else {
            Self::trace(chain, config, rng)
        }
    }

    /// The full trace: computation lines (one maybe with a repaired slip), redundant checks, the
    /// closed thinking block and the boxed answer.
    pub fn trace(chain: &Chain, config: &TaskConfig, rng: &mut Rng) -> Example {
        let mut segments: Vec<Segment> = think_lines(chain, config, rng).into_iter().flatten().collect();
        segments.push(seg("</think>\n\n\\boxed{", true));
        segments.push(seg(format!("{}}}{}", chain.answer(), super::EOS), true));
        Example { prompt: chain.prompt(), segments }
    }

    /// A trace cut after a random thinking line and answered at once, as a probe would: the
    /// closing of the thinking is not trained (the model must not learn to stop there), the answer is. The model
    /// learns to be sure only when the lines so far determine the answer.
    pub fn probe(chain: &Chain, config: &TaskConfig, rng: &mut Rng) -> Example {
        let lines = think_lines(chain, config, rng);
        // Cut where at most `probe_ops_left` operations are still to compute.
        let mut left = chain.ops.len();
        let cuts: Vec<usize> = (1..=lines.len())
            .filter(|&k| {
                left -= usize::from(!lines[k - 1][0].text.starts_with("Wait"));
                left <= config.probe_ops_left
            })
            .collect();
        let cut = cuts[rng.below(cuts.len())];
        let mut segments: Vec<Segment> = lines.into_iter().take(cut).flatten().collect();
        segments.push(seg("</think>\n\n", false));
        segments.push(seg(format!("\\boxed{{{}}}{}", chain.answer(), super::EOS), true));
        Example { prompt: chain.prompt(), segments }
    }

    /// The completion as plain text.
    pub fn completion(&self) -> String {
        self.segments.iter().map(|s| s.text.as_str()).collect()
    }

    /// Tokenizes the prompt and every segment (segments end at token boundaries in this task's
    /// vocabulary, so this equals tokenizing the whole text).
    pub fn tokenize(&self, tokenizer: &Tokenizer) -> Result<TokenizedExample> {
        let prompt = tokenizer.encode(&self.prompt)?;
        let (mut completion, mut trained) = (Vec::new(), Vec::new());
        for s in &self.segments {
            let ids = tokenizer.encode(&s.text)?;
            trained.extend(std::iter::repeat_n(s.trained, ids.len()));
            completion.extend(ids);
        }
        Ok(TokenizedExample { prompt, completion, trained })
    }
}

/// Whether `a op x` crosses a multiple of ten (a carry or a borrow): the lines a direct computation
/// gets wrong, and where a check by decomposition helps.
fn crosses_ten(a: i64, op: char, x: i64) -> bool {
    let unit = a % 10;
    if op == '+' { unit + x >= 10 } else { unit > 0 && unit < x }
}

/// A check of `a op x = r` that takes the easier path through the nearest ten when the line crosses
/// one (`37+8=37+3+5=40+5=45`), else recomputes it.
fn check(a: i64, op: char, x: i64, r: i64) -> String {
    if !crosses_ten(a, op, x) {
        return format!("Wait, {}", line(a, op, x, r));
    }
    let to_ten = if op == '+' { 10 - a % 10 } else { a % 10 };
    let ten = if op == '+' { a + to_ten } else { a - to_ten };
    let rest = x - to_ten;
    format!("Wait, {a}{op}{x}={a}{op}{to_ten}{op}{rest}={ten}{op}{rest}={r}\n")
}

/// The thinking lines of a trace, each a list of segments.
fn think_lines(chain: &Chain, config: &TaskConfig, rng: &mut Rng) -> Vec<Vec<Segment>> {
    let v = chain.values();
    let n = chain.ops.len();
    let is_hard = |i: usize| crosses_ten(v[i], chain.ops[i].0, chain.ops[i].1);
    let hard: Vec<usize> = (0..n).filter(|&i| is_hard(i)).collect();
    // Slips happen where direct computation is hard: on a line that crosses ten.
    let slips: Vec<bool> = if config.slips_per_line {
        (0..n).map(|i| is_hard(i) && rng.uniform() < config.slip_rate).collect()
    } else {
        let one = (!hard.is_empty() && rng.uniform() < config.slip_rate).then(|| hard[rng.below(hard.len())]);
        (0..n).map(|i| one == Some(i)).collect()
    };
    let early = (n >= 2 && rng.uniform() < config.early_check_rate).then(|| rng.below(n - 1));
    let mut lines = Vec::new();
    for (i, &(op, x)) in chain.ops.iter().enumerate() {
        let (a, r) = (v[i], v[i + 1]);
        if slips[i] {
            // A wrong result (off by one or ten), then the check that gets it right; the chain goes
            // on from the checked value.
            let wrong = [r + 10, r - 10, r + 1, r - 1]
                .into_iter()
                .filter(|w| (0..=99).contains(w))
                .nth(rng.below(2))
                .unwrap_or(r + 1);
            lines.push(vec![
                seg(format!("{a}{op}{x}="), true),
                seg(wrong.to_string(), config.slips_per_line),
                seg("\n", true),
            ]);
            lines.push(vec![seg(check(a, op, x, r), true)]);
            continue;
        }
        lines.push(vec![seg(line(a, op, x, r), true)]);
        let checked = is_hard(i) && config.hard_check_rate > 0.0 && rng.uniform() < config.hard_check_rate;
        if checked || early == Some(i) {
            lines.push(vec![seg(check(a, op, x, r), true)]);
        }
    }
    // Overthinking: the same check of the last line, again and again.
    let (op, x) = chain.ops[n - 1];
    for _ in 0..pick(&config.redundant_checks, rng) {
        lines.push(vec![seg(check(v[n - 1], op, x, v[n]), true)]);
    }
    lines
}

/// Index drawn with the given probabilities.
fn pick(probs: &[f64], rng: &mut Rng) -> usize {
    let mut u = rng.uniform();
    for (i, &p) in probs.iter().enumerate() {
        if u < p {
            return i;
        }
        u -= p;
    }
    probs.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grade::{extract_boxed, grade};
    use crate::task::{problems, tokenizer};

    #[test]
    fn traces_end_with_the_right_answer_and_slips_are_repaired() {
        let config = TaskConfig { slip_rate: 0.5, ..TaskConfig::default() };
        let tok = tokenizer();
        let mut rng = Rng::new(3);
        let mut slips = 0;
        for chain in problems(&config, 11, 300) {
            let ex = Example::trace(&chain, &config, &mut rng);
            let text = ex.completion();
            let answer = extract_boxed(&text).expect("boxed answer");
            assert!(grade(&answer, &chain.answer().to_string()), "{text}");
            // Every untrained segment is a slip, and the check after it gets the line right.
            for (i, s) in ex.segments.iter().enumerate().filter(|(_, s)| !s.trained) {
                slips += 1;
                let check = &ex.segments[i + 2].text;
                assert!(check.starts_with(&format!("Wait, {}", ex.segments[i - 1].text)), "{text}");
                assert!(!check.ends_with(&format!("={}\n", s.text)), "{text}");
            }
            let t = ex.tokenize(&tok).unwrap();
            assert_eq!(tok.decode(&t.completion).unwrap(), text, "segments tokenize like the whole text");
            assert_eq!(t.completion.len(), t.trained.len());
        }
        assert!(slips > 50, "{slips}");
    }

    #[test]
    fn checks_go_through_the_nearest_ten() {
        assert_eq!(check(37, '+', 8, 45), "Wait, 37+8=37+3+5=40+5=45\n");
        assert_eq!(check(43, '-', 8, 35), "Wait, 43-8=43-3-5=40-5=35\n");
        assert_eq!(check(32, '+', 5, 37), "Wait, 32+5=37\n");
        assert_eq!(check(40, '-', 8, 32), "Wait, 40-8=32\n");
    }

    #[test]
    fn probe_examples_train_only_the_answer_after_the_cut() {
        let config = TaskConfig::default();
        let mut rng = Rng::new(5);
        let chain = &problems(&config, 1, 1)[0];
        let ex = Example::probe(chain, &config, &mut rng);
        let n = ex.segments.len();
        assert_eq!(ex.segments[n - 2], seg("</think>\n\n", false));
        assert_eq!(ex.segments[n - 1].text, format!("\\boxed{{{}}}{}", chain.answer(), crate::task::EOS));
    }
}
