//! Every seed of a run in one place. Each random stream is the run's seed mixed with its own salt
//! (or a stream number of [`Rng::stream`]), so no two streams coincide, and each draws the same
//! numbers whether a run is resumed, split over threads or not.

use crate::rng::Rng;

/// The built-in task's held-out problems.
pub const HELD_OUT: u64 = 0x4e1d_5eed_0000_0000;
/// The built-in task's SFT problems (a stream per step).
pub const SFT_PROBLEMS: u64 = 0x5f7_0000;
/// The fixed pool of training problems (`task.pool_size`).
pub const POOL: u64 = 0x9001_0000_0000;
/// The traces written for SFT problems (a stream per step).
pub const SFT_TRACES: u64 = 0x5f7_7ace;
/// Which problems of a training file are held out for evaluation.
pub const SPLIT: u64 = 0x5b11_7000_0000_0000;
/// The order a problem file is visited in (a stream per epoch).
pub const LIST_ORDER: u64 = 0x0dde_0000_0000_0000;
/// Sampling of the held-out evaluation of a finished model (`stepgrpo eval --seed S` repeats a
/// run's); the evaluations during RL sample from the seed itself.
pub const EVAL_SAMPLING: u64 = 0xe7a1;

/// The sampling seed of the rollouts of generation `generation` (the built-in task's RL problems
/// come from the seed itself, a stream per generation).
pub fn rollout_seed(seed: u64, generation: usize) -> u64 {
    Rng::stream(seed, generation as u64).next_u64()
}
