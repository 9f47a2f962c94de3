//! Where each step's problems come from: the built-in task (drawn afresh every step, never a
//! held-out problem) or a user's fixed list (shuffled per epoch), and how the held-out problems are
//! kept apart from them. Both depend only on the seed and the step, so a resumed run sees the same
//! problems as an uninterrupted one.

use std::collections::HashSet;

use super::seeds;
use crate::data::Problem;
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::task::{Chain, TaskConfig, problems};

/// A source of training problems.
#[derive(Debug, Clone)]
pub enum ProblemSet {
    /// The built-in task, excluding the prompts of its held-out set.
    Builtin {
        /// Task knobs.
        task: TaskConfig,
        /// Prompts never drawn for training.
        held_out: HashSet<String>,
        /// Distinct problems of the task that are not held out: none, and drawing would never end.
        trainable: u128,
    },
    /// A fixed list (a user's JSONL file), never empty.
    List(Vec<Problem>),
}

/// Draws in a row that may all be held-out problems before the task is declared too small.
const MAX_REJECTED: usize = 100_000;

impl ProblemSet {
    /// The built-in task and its held-out set of `eval_problems` problems drawn from the task.
    pub fn builtin(task: &TaskConfig, seed: u64, eval_problems: usize) -> (ProblemSet, Vec<Problem>) {
        let eval: Vec<Problem> =
            problems(task, seed ^ seeds::HELD_OUT, eval_problems).iter().map(Chain::problem).collect();
        (ProblemSet::builtin_excluding(task, &eval), eval)
    }

    /// The built-in task without the prompts of `held_out` (problems given for evaluation).
    pub fn builtin_excluding(task: &TaskConfig, held_out: &[Problem]) -> ProblemSet {
        let held_out: HashSet<String> = held_out.iter().map(|p| p.prompt.clone()).collect();
        let taken = held_out.iter().filter(|p| Chain::parse(p).is_ok_and(|c| task.produces(&c))).count();
        let trainable = task.distinct_problems().saturating_sub(taken as u128);
        ProblemSet::Builtin { task: task.clone(), held_out, trainable }
    }

    /// `list` (from `source`, named in errors) without the problems whose prompt is in
    /// `held_out`; returns the set and how many problems it left out.
    pub fn list_excluding(
        list: Vec<Problem>,
        held_out: &[Problem],
        source: &str,
    ) -> Result<(ProblemSet, usize)> {
        let held: HashSet<&str> = held_out.iter().map(|p| p.prompt.as_str()).collect();
        let before = list.len();
        let kept: Vec<Problem> = list.into_iter().filter(|p| !held.contains(p.prompt.as_str())).collect();
        if kept.is_empty() {
            return Err(Error::invalid(source, "every problem in it is also an evaluation problem"));
        }
        let removed = before - kept.len();
        Ok((ProblemSet::List(kept), removed))
    }

    /// Splits `list` (from `source`): `n` distinct problems, chosen by `seed`, are held out for
    /// evaluation and every copy of them leaves the training list.
    pub fn split(
        list: Vec<Problem>,
        n: usize,
        seed: u64,
        source: &str,
    ) -> Result<(ProblemSet, Vec<Problem>)> {
        let mut seen = HashSet::new();
        let distinct: Vec<&Problem> = list.iter().filter(|p| seen.insert(p.prompt.as_str())).collect();
        if n >= distinct.len() {
            return Err(Error::invalid(
                source,
                format!(
                    "has {} distinct problems: holding out {n} for evaluation leaves none to train on \
                     (give eval_data, --eval-data, or fewer eval.num_problems, --eval-problems)",
                    distinct.len()
                ),
            ));
        }
        let order = permutation(distinct.len(), seed ^ seeds::SPLIT, 0);
        let eval: Vec<Problem> = order[..n].iter().map(|&i| distinct[i].clone()).collect();
        let (set, _) = ProblemSet::list_excluding(list, &eval, source)?;
        Ok((set, eval))
    }

    /// Training chains of the built-in task for `step` of the stream `salt` (used for SFT). Fails
    /// when the held-out set leaves the task almost no problem to train on.
    pub fn chains(&self, seed: u64, salt: u64, step: usize, n: usize) -> Result<Vec<Chain>> {
        let ProblemSet::Builtin { task, held_out, trainable } = self else { return Ok(Vec::new()) };
        if n > 0 && *trainable == 0 {
            return Err(Error::invalid(
                "task",
                format!(
                    "the task's levels have too few distinct problems ({}), and every one of them is held \
                     out for evaluation: none is left to train on (lower eval.num_problems or add task.levels)",
                    task.distinct_problems()
                ),
            ));
        }
        let mut rng = Rng::stream(seed ^ salt, step as u64);
        if task.pool_size > 0 {
            let pool = self.pool(seed);
            if pool.is_empty() {
                return Err(Error::invalid("task.pool_size", "every problem of the pool is held out"));
            }
            return Ok((0..n).map(|_| pool[rng.below(pool.len())].clone()).collect());
        }
        let mut out = Vec::with_capacity(n);
        let mut rejected = 0;
        while out.len() < n {
            let c = Chain::sample(task, &mut rng);
            if !held_out.contains(&c.prompt()) {
                out.push(c);
                rejected = 0;
            } else if rejected == MAX_REJECTED {
                return Err(Error::invalid(
                    "task",
                    format!(
                        "{MAX_REJECTED} problems drawn in a row were all held out for evaluation: the task's \
                         levels have too few distinct problems for {} held-out ones (lower eval.num_problems \
                         or add task.levels)",
                        held_out.len()
                    ),
                ));
            } else {
                rejected += 1;
            }
        }
        Ok(out)
    }

    /// The fixed pool of training problems of `seed` (`task.pool_size` of them, less the held-out
    /// ones); empty for a user's list or without a pool.
    pub fn pool(&self, seed: u64) -> Vec<Chain> {
        let ProblemSet::Builtin { task, held_out, .. } = self else { return Vec::new() };
        let mut pool = problems(task, seed ^ seeds::POOL, task.pool_size);
        pool.retain(|c| !held_out.contains(&c.prompt()));
        pool
    }

    /// The `n` problems of RL generation `index`.
    pub fn batch(&self, seed: u64, index: usize, n: usize) -> Result<Vec<Problem>> {
        match self {
            ProblemSet::Builtin { .. } => {
                Ok(self.chains(seed, 0, index, n)?.iter().map(Chain::problem).collect())
            }
            ProblemSet::List(list) if list.is_empty() => Err(Error::invalid("problems", "the list is empty")),
            ProblemSet::List(list) => {
                let mut order: Option<(usize, Vec<usize>)> = None;
                Ok((index * n..(index + 1) * n)
                    .map(|i| {
                        let (epoch, at) = (i / list.len(), i % list.len());
                        let (_, perm) = order.take().filter(|(e, _)| *e == epoch).unwrap_or_else(|| {
                            (epoch, permutation(list.len(), seed ^ seeds::LIST_ORDER, epoch))
                        });
                        let problem = list[perm[at]].clone();
                        order = Some((epoch, perm));
                        problem
                    })
                    .collect())
            }
        }
    }
}

/// The fixed order of `n` items for `stream` of `seed`: Fisher-Yates.
fn permutation(n: usize, seed: u64, stream: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = Rng::stream(seed, stream as u64);
    for k in (1..n).rev() {
        order.swap(k, rng.below(k + 1));
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::Level;

    fn numbered(n: usize) -> Vec<Problem> {
        (0..n).map(|i| Problem { prompt: i.to_string(), answer: i.to_string() }).collect()
    }

    #[test]
    fn training_never_draws_a_held_out_problem_and_is_reproducible() {
        let (set, eval) = ProblemSet::builtin(&TaskConfig::default(), 3, 300);
        let held: HashSet<&str> = eval.iter().map(|p| p.prompt.as_str()).collect();
        for step in 0..50 {
            let batch = set.batch(3, step, 16).unwrap();
            assert!(batch.iter().all(|p| !held.contains(p.prompt.as_str())));
            assert_eq!(batch, set.batch(3, step, 16).unwrap());
        }
    }

    #[test]
    fn a_task_held_out_whole_is_an_error_not_a_hang() {
        // One level of one operation has 1,620 problems or fewer; 50,000 held-out draws cover them.
        let tiny = TaskConfig { levels: vec![Level { operands: 2, digits: 1 }], ..TaskConfig::default() };
        let (set, _) = ProblemSet::builtin(&tiny, 0, 50_000);
        let err = set.batch(0, 0, 4).unwrap_err().to_string();
        assert!(err.contains("too few distinct problems") && err.contains("eval.num_problems"), "{err}");
    }

    #[test]
    fn regression_a_task_held_out_whole_fails_at_once() {
        // Every distinct problem of the task held out: an error before any draw, naming the counts
        // (before, 100,000 rejected draws per problem asked for).
        let tiny = TaskConfig { levels: vec![Level { operands: 2, digits: 1 }], ..TaskConfig::default() };
        let all: Vec<Problem> = (10..=99i64)
            .flat_map(|s| (1..=9i64).flat_map(move |x| [format!("{s}+{x}"), format!("{s}-{x}")]))
            .filter_map(|text| Chain::parse(&text).ok().filter(|c| tiny.produces(c)))
            .map(|c| c.problem())
            .collect();
        assert_eq!(all.len() as u128, tiny.distinct_problems());
        let set = ProblemSet::builtin_excluding(&tiny, &all);
        let start = std::time::Instant::now();
        let err = set.batch(0, 0, 4).unwrap_err().to_string();
        assert!(err.contains(&format!("too few distinct problems ({})", all.len())), "{err}");
        assert!(err.contains("eval.num_problems"), "{err}");
        assert!(start.elapsed().as_secs_f64() < 1.0);
        assert!(ProblemSet::builtin_excluding(&tiny, &all[1..]).batch(0, 0, 1).is_ok(), "one left");
        assert!(ProblemSet::List(Vec::new()).batch(0, 0, 1).is_err(), "no division by zero");
    }

    #[test]
    fn a_list_is_visited_once_per_epoch() {
        let set = ProblemSet::List(numbered(10));
        let mut seen: Vec<String> =
            (0..5).flat_map(|s| set.batch(1, s, 2).unwrap()).map(|p| p.prompt).collect();
        seen.sort();
        assert_eq!(seen, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn a_split_holds_out_distinct_problems_and_every_copy_of_them() {
        let mut list = numbered(20);
        list.extend(numbered(5)); // problems 0..5 twice
        let (set, eval) = ProblemSet::split(list.clone(), 6, 9, "train.jsonl").unwrap();
        let ProblemSet::List(train) = &set else { unreachable!() };
        let held: HashSet<&str> = eval.iter().map(|p| p.prompt.as_str()).collect();
        assert_eq!(held.len(), 6, "distinct");
        assert!(train.iter().all(|p| !held.contains(p.prompt.as_str())));
        let copies = eval.iter().filter(|p| p.prompt.parse::<usize>().unwrap() < 5).count();
        assert_eq!(train.len(), 25 - 6 - copies, "duplicates of held-out problems go too");
        assert_eq!(ProblemSet::split(list.clone(), 6, 9, "train.jsonl").unwrap().1, eval, "seeded");
        let err = ProblemSet::split(list, 20, 9, "train.jsonl").unwrap_err().to_string();
        assert!(err.contains("train.jsonl") && err.contains("20 distinct"), "{err}");
    }
}
