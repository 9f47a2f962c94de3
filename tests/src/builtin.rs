//! The built-in task at test size.

use stepgrpo_core::task;
use stepgrpo_core::train::{RlConfig, RunData};

/// The built-in recipe's RL phase at test size: `steps` steps of 2 prompts x 3 responses of up to
/// 24 tokens, lr 1e-3.
pub fn small_rl(steps: usize) -> RlConfig {
    let mut c = stepgrpo_core::train::builtin_recipe().rl;
    c.max_steps = steps;
    c.prompts_per_step = 2;
    c.gradient_accumulation_steps = 2;
    c.rollout.num_generations = 3;
    c.rollout.max_completion_length = 24;
    c.optim.learning_rate = 1e-3;
    c
}

/// The built-in task's data with 20 held-out problems (seed 1).
pub fn data(task: task::TaskConfig) -> RunData {
    let mut c = stepgrpo_core::train::builtin_recipe();
    (c.seed, c.task, c.eval.num_problems) = (1, task, 20);
    RunData::builtin(&c).unwrap()
}
