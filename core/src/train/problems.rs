//! Where each step's problems come from: the built-in task (drawn afresh every step, never a
//! held-out problem) or a user's fixed list (shuffled per epoch). Both depend only on the seed and
//! the step, so a resumed run sees the same problems as an uninterrupted one.

use std::collections::HashSet;

use crate::data::Problem;
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
    },
    /// A fixed list (a user's JSONL file).
    List(Vec<Problem>),
}

/// Salt of the held-out stream, so it never coincides with a training stream.
const HELD_OUT: u64 = 0x4e1d_5eed_0000_0000;

impl ProblemSet {
    /// The built-in task and its held-out set of `eval_problems` problems.
    pub fn builtin(task: &TaskConfig, seed: u64, eval_problems: usize) -> (ProblemSet, Vec<Problem>) {
        let eval: Vec<Problem> =
            problems(task, seed ^ HELD_OUT, eval_problems).iter().map(Chain::problem).collect();
        let held_out = eval.iter().map(|p| p.prompt.clone()).collect();
        (ProblemSet::Builtin { task: task.clone(), held_out }, eval)
    }

    /// Training chains of the built-in task for `step` of the stream `salt` (used for SFT).
    pub fn chains(&self, seed: u64, salt: u64, step: usize, n: usize) -> Vec<Chain> {
        let ProblemSet::Builtin { task, held_out } = self else { return Vec::new() };
        let mut rng = Rng::stream(seed ^ salt, step as u64);
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let c = Chain::sample(task, &mut rng);
            if !held_out.contains(&c.prompt()) {
                out.push(c);
            }
        }
        out
    }

    /// The `n` problems of RL step `step`.
    pub fn batch(&self, seed: u64, step: usize, n: usize) -> Vec<Problem> {
        match self {
            ProblemSet::Builtin { .. } => self.chains(seed, 0, step, n).iter().map(Chain::problem).collect(),
            ProblemSet::List(list) => {
                let mut order: Option<(usize, Vec<usize>)> = None;
                (step * n..(step + 1) * n)
                    .map(|i| {
                        let (epoch, at) = (i / list.len(), i % list.len());
                        let (_, perm) = order
                            .take()
                            .filter(|(e, _)| *e == epoch)
                            .unwrap_or_else(|| (epoch, permutation(list.len(), seed, epoch)));
                        let problem = list[perm[at]].clone();
                        order = Some((epoch, perm));
                        problem
                    })
                    .collect()
            }
        }
    }
}

/// The epoch's fixed order of `n` items: Fisher-Yates from the epoch's stream.
fn permutation(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = Rng::stream(seed, epoch as u64);
    for k in (1..n).rev() {
        order.swap(k, rng.below(k + 1));
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_never_draws_a_held_out_problem_and_is_reproducible() {
        let (set, eval) = ProblemSet::builtin(&TaskConfig::default(), 3, 300);
        let held: HashSet<&str> = eval.iter().map(|p| p.prompt.as_str()).collect();
        for step in 0..50 {
            let batch = set.batch(3, step, 16);
            assert!(batch.iter().all(|p| !held.contains(p.prompt.as_str())));
            assert_eq!(batch, set.batch(3, step, 16));
        }
    }

    #[test]
    fn a_list_is_visited_once_per_epoch() {
        let list: Vec<Problem> =
            (0..10).map(|i| Problem { prompt: i.to_string(), answer: i.to_string() }).collect();
        let set = ProblemSet::List(list);
        let mut seen: Vec<String> = (0..5).flat_map(|s| set.batch(1, s, 2)).map(|p| p.prompt).collect();
        seen.sort();
        assert_eq!(seen, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
    }
}
