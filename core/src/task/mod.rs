//! The built-in overthinking task: chains of additions and subtractions with integer answers, and
//! chain-of-thought traces in the reasoning-model format that imitate an overthinking model.
//!
//! A trace computes one line per operation directly, then checks lines with `Wait, `: a check
//! goes through the nearest ten, which is easier than the direct computation of a line that crosses
//! one. Most checks are redundant (the line was right), so a model that stops once it is sure loses
//! nothing; but some traces contain a slip on a line that crosses ten, which only the check after
//! it repairs, so cutting every check blindly costs accuracy.
//!
//! ```text
//! 37+8-6=?                    <- prompt, ends with "<think>\n"
//! <think>
//! 37+8=46                     <- a slip (not trained on)
//! Wait, 37+8=37+3+5=40+5=45   <- the check gets it right; the chain goes on from 45
//! 45-6=39
//! Wait, 45-6=45-5-1=40-1=39   <- a redundant check
//! </think>
//!
//! \boxed{39}
//! ```

mod trace;
mod vocab;

use serde::{Deserialize, Serialize};

use crate::data::Problem;
use crate::error::{Error, Result};
use crate::rng::Rng;

pub use trace::{Example, Segment, TokenizedExample};
pub use vocab::{EOS, TinyModel, model_config, tokenizer, tokenizer_files};

/// One difficulty level: how many operands and how many digits the later operands have (the
/// first operand always has two digits; every value along the chain stays in 0..=99).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level {
    /// Operands in the chain (2 = one operation).
    pub operands: usize,
    /// Digits of the operands after the first (1 or 2).
    pub digits: u32,
}

/// How problems and traces are generated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskConfig {
    /// Difficulty levels, drawn uniformly. Default: 2, 3 and 4 operands, one-digit after the first.
    pub levels: Vec<Level>,
    /// Probability that a trace with a line crossing ten slips there (the check repairs it). Default 0.3.
    pub slip_rate: f64,
    /// Probabilities of 0, 1, 2, ... redundant checks after the last line. Default [0.1, 0.3, 0.35, 0.25].
    pub redundant_checks: Vec<f64>,
    /// Probability of one redundant check after an earlier line as well. Default 0.3.
    pub early_check_rate: f64,
    /// Share of supervised examples cut at a random line and answered right away (loss on the answer
    /// only), so that the probe's confidence means something. Default 0.3.
    pub probe_example_rate: f64,
    /// Cut those examples only where at most this many operations are left to compute (0: after
    /// the last line). An answer several operations ahead is one the model cannot yet compute, and
    /// learning it slows the rest. Default 7 (anywhere).
    pub probe_ops_left: usize,
    /// Whether each line crossing ten slips with probability `slip_rate` (instead of one such line
    /// per trace) and the slip is trained like the rest: the quick line is unreliable where it
    /// crosses ten, by construction, and only its check is sure. Default false.
    pub slips_per_line: bool,
    /// Probability that a line crossing ten is checked right after it (a slipped line always is).
    /// Default 0.
    pub hard_check_rate: f64,
    /// Train on a fixed pool of this many problems (drawn once from the seed, held-out ones left
    /// out) instead of fresh problems every step; 0 = fresh problems. A small pool is learnt by
    /// heart quickly, which is what the learning guard in the tests checks. Default 0.
    pub pool_size: usize,
    /// The shape of the task's model.
    pub model: TinyModel,
}

impl Default for TaskConfig {
    fn default() -> Self {
        TaskConfig {
            levels: vec![
                Level { operands: 2, digits: 1 },
                Level { operands: 3, digits: 1 },
                Level { operands: 4, digits: 1 },
            ],
            slip_rate: 0.3,
            redundant_checks: vec![0.1, 0.3, 0.35, 0.25],
            early_check_rate: 0.3,
            probe_example_rate: 0.3,
            probe_ops_left: 7,
            slips_per_line: false,
            hard_check_rate: 0.0,
            pool_size: 0,
            model: TinyModel::default(),
        }
    }
}

impl TaskConfig {
    /// Checks every knob, naming the one at fault.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        if self.levels.is_empty() {
            return Err(Error::invalid("task.levels", "needs at least one level"));
        }
        for l in &self.levels {
            if !(2..=8).contains(&l.operands) || !(1..=2).contains(&l.digits) {
                return Err(Error::invalid(
                    "task.levels",
                    format!("{l:?}: operands must be in 2..=8 and digits in 1..=2"),
                ));
            }
        }
        for (name, p) in [
            ("task.slip_rate", self.slip_rate),
            ("task.early_check_rate", self.early_check_rate),
            ("task.probe_example_rate", self.probe_example_rate),
            ("task.hard_check_rate", self.hard_check_rate),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(Error::invalid(name, format!("{p} must be in [0, 1]")));
            }
        }
        let total: f64 = self.redundant_checks.iter().sum();
        if self.redundant_checks.is_empty()
            || self.redundant_checks.iter().any(|&p| p < 0.0)
            || (total - 1.0).abs() > 1e-6
        {
            return Err(Error::invalid("task.redundant_checks", "must be probabilities summing to 1"));
        }
        Ok(())
    }
}

impl TaskConfig {
    /// How many distinct problems the levels can produce (chains that stay in 0..=99 and end at 10
    /// or more), counted exactly: a sampler asked for more distinct ones than exist would never stop.
    pub fn distinct_problems(&self) -> u128 {
        // Levels with the same operand count overlap: one-digit operands are two-digit ones too.
        let mut widest: std::collections::BTreeMap<usize, u32> = std::collections::BTreeMap::new();
        for l in &self.levels {
            let d = widest.entry(l.operands).or_insert(l.digits);
            *d = (*d).max(l.digits);
        }
        widest.into_iter().map(|(operands, digits)| count_chains(operands, digits)).sum()
    }

    /// Whether `chain` is one of the problems the levels can produce.
    pub fn produces(&self, chain: &Chain) -> bool {
        let values = chain.values();
        (10..=99).contains(&chain.start)
            && values.iter().all(|v| (0..=99).contains(v))
            && values.last().is_some_and(|&v| v >= 10)
            && self.levels.iter().any(|l| {
                let max = if l.digits == 1 { 9 } else { 99 };
                l.operands == chain.ops.len() + 1 && chain.ops.iter().all(|&(_, x)| (1..=max).contains(&x))
            })
    }
}

/// Chains of `operands` operands (the first of two digits, the others of up to `digits`) whose values
/// stay in 0..=99 and end at 10 or more: a count per value, one operation at a time.
fn count_chains(operands: usize, digits: u32) -> u128 {
    let max = if digits == 1 { 9 } else { 99 };
    let mut ways = [0u128; 100];
    ways[10..].fill(1);
    for _ in 1..operands {
        let mut next = [0u128; 100];
        for (v, &w) in ways.iter().enumerate().filter(|(_, w)| **w > 0) {
            for x in 1..=max {
                if v + x <= 99 {
                    next[v + x] = next[v + x].saturating_add(w);
                }
                if v >= x {
                    next[v - x] = next[v - x].saturating_add(w);
                }
            }
        }
        ways = next;
    }
    ways[10..].iter().fold(0u128, |a, &w| a.saturating_add(w))
}

/// A problem of the task: the chain, its operations and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The first operand.
    pub start: i64,
    /// Each operation: `+` or `-` and its operand.
    pub ops: Vec<(char, i64)>,
}

impl Chain {
    /// Draws a chain of a random level; every intermediate value stays in 0..=99 and the answer has
    /// two digits.
    pub fn sample(config: &TaskConfig, rng: &mut Rng) -> Chain {
        let level = config.levels[rng.below(config.levels.len())];
        let max = if level.digits == 1 { 9 } else { 99 };
        loop {
            let start = 10 + rng.below(90) as i64;
            let mut value = start;
            let mut ops = Vec::with_capacity(level.operands - 1);
            for _ in 1..level.operands {
                let x = 1 + rng.below(max) as i64;
                let (can_add, can_sub) = (value + x <= 99, value - x >= 0);
                let op = match (can_add, can_sub) {
                    (true, true) => ['+', '-'][rng.below(2)],
                    (true, false) => '+',
                    (false, true) => '-',
                    (false, false) => break,
                };
                value = apply(value, op, x);
                ops.push((op, x));
            }
            if ops.len() == level.operands - 1 && value >= 10 {
                return Chain { start, ops };
            }
        }
    }

    /// The values along the chain, the answer last.
    pub fn values(&self) -> Vec<i64> {
        let mut v = vec![self.start];
        for &(op, x) in &self.ops {
            v.push(apply(*v.last().unwrap(), op, x));
        }
        v
    }

    /// The answer.
    pub fn answer(&self) -> i64 {
        *self.values().last().unwrap()
    }

    /// The prompt text: the expression, `=?`, and the opened thinking block.
    pub fn prompt(&self) -> String {
        let mut s = self.start.to_string();
        for &(op, x) in &self.ops {
            s.push(op);
            s.push_str(&x.to_string());
        }
        s + "=?\n<think>\n"
    }

    /// The chain as a [`Problem`] with its ground truth.
    pub fn problem(&self) -> Problem {
        Problem { prompt: self.prompt(), answer: self.answer().to_string() }
    }

    /// Parses a problem of the task: `37+8-6`, optionally followed by `=?` and the opened thinking
    /// block of a prompt. Every value along the chain must stay in 0..=99, as in the task.
    pub fn parse(text: &str) -> Result<Chain> {
        let bad =
            |why: &str| Error::invalid("problem", format!("{text:?} is not a problem like 37+8-6 ({why})"));
        let expr = text.trim();
        let expr = expr.strip_suffix("<think>").unwrap_or(expr).trim_end();
        let expr = expr.strip_suffix("=?").or_else(|| expr.strip_suffix('=')).unwrap_or(expr).trim();
        let mut numbers = Vec::new();
        let mut ops = Vec::new();
        let mut current = String::new();
        for c in expr.chars().filter(|c| !c.is_whitespace()) {
            match c {
                '0'..='9' => current.push(c),
                '+' | '-' => {
                    numbers.push(std::mem::take(&mut current));
                    ops.push(c);
                }
                _ => return Err(bad(&format!("unexpected {c:?}"))),
            }
        }
        numbers.push(current);
        let values = numbers
            .iter()
            .map(|n| n.parse::<i64>().ok().filter(|v| (0..=99).contains(v)))
            .collect::<Option<Vec<i64>>>()
            .ok_or_else(|| bad("operands are numbers from 0 to 99"))?;
        if ops.is_empty() {
            return Err(bad("at least one + or -"));
        }
        let chain =
            Chain { start: values[0], ops: ops.into_iter().zip(values[1..].iter().copied()).collect() };
        if chain.values().iter().any(|v| !(0..=99).contains(v)) {
            return Err(bad("every value along the chain stays in 0..=99"));
        }
        Ok(chain)
    }
}

fn apply(value: i64, op: char, x: i64) -> i64 {
    if op == '+' { value + x } else { value - x }
}

/// `count` problems from the stream `seed`; training and held-out sets use different seeds.
pub fn problems(config: &TaskConfig, seed: u64, count: usize) -> Vec<Chain> {
    let mut rng = Rng::new(seed);
    (0..count).map(|_| Chain::sample(config, &mut rng)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_stay_in_range_and_answers_have_two_digits() {
        let config = TaskConfig::default();
        for c in problems(&config, 7, 500) {
            assert!(c.values().iter().all(|v| (0..=99).contains(v)), "{c:?}");
            assert!(c.answer() >= 10);
            assert!(c.prompt().ends_with("=?\n<think>\n"));
        }
    }

    #[test]
    fn parses_what_it_prints() {
        let c = Chain::parse("37+8-6").unwrap();
        assert_eq!((c.start, c.answer()), (37, 39));
        assert_eq!(Chain::parse(&c.prompt()).unwrap(), c);
        for bad in ["37", "37*2", "99+5", "a+1"] {
            assert!(Chain::parse(bad).unwrap_err().to_string().contains(bad), "{bad}");
        }
    }

    #[test]
    fn distinct_problems_are_counted_exactly() {
        // Brute force over one operation: start 10..=99, x 1..=9, + or -, staying in range, >= 10.
        let brute = (10..=99i64)
            .flat_map(|s| (1..=9i64).flat_map(move |x| [s + x, s - x]))
            .filter(|v| (10..=99).contains(v))
            .count() as u128;
        let one = TaskConfig { levels: vec![Level { operands: 2, digits: 1 }], ..TaskConfig::default() };
        assert_eq!(one.distinct_problems(), brute);
        let twice = TaskConfig {
            levels: vec![Level { operands: 2, digits: 1 }, Level { operands: 2, digits: 2 }],
            ..TaskConfig::default()
        };
        let wide = TaskConfig { levels: vec![Level { operands: 2, digits: 2 }], ..TaskConfig::default() };
        assert_eq!(twice.distinct_problems(), wide.distinct_problems(), "one-digit levels are inside");
        let config = TaskConfig::default();
        let drawn: std::collections::HashSet<String> =
            problems(&config, 5, 20_000).iter().map(Chain::prompt).collect();
        assert!(drawn.len() as u128 <= config.distinct_problems());
        assert!(problems(&config, 5, 2_000).iter().all(|c| config.produces(c)));
        assert!(!one.produces(&Chain::parse("37+8-6").unwrap()), "two operations");
        assert!(!one.produces(&Chain::parse("5+8").unwrap()), "one-digit start");
    }

    #[test]
    fn validation_names_the_knob() {
        let mut c = TaskConfig { slip_rate: 1.5, ..TaskConfig::default() };
        assert!(c.validate().unwrap_err().to_string().contains("task.slip_rate"));
        c.slip_rate = 0.1;
        c.redundant_checks = vec![0.5];
        assert!(c.validate().unwrap_err().to_string().contains("task.redundant_checks"));
        c.redundant_checks = TaskConfig::default().redundant_checks;
        c.model.initializer_range = 0.0;
        assert!(c.validate().unwrap_err().to_string().contains("task.model.initializer_range"));
    }
}
