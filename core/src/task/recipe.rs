//! The built-in task's training recipe: the settings that were measured to show the paper's
//! trade-off on its tiny model (README, "The built-in task"). Only the built-in task uses them; a
//! model directory starts from [`TrainConfig::default`], the paper's release setting.

use crate::train::{Method, OptimConfig, Schedule, TrainConfig};

/// The built-in task's configuration: SFT, then Step-GRPO and two baselines from the same warm
/// start. The probe closes the thinking as the task's traces do and stops at the closing brace of
/// `\boxed{N}`; its first token, `\boxed{`, is the one the confidence skips, so the confidence is
/// that of the answer itself. Responses are short.
pub fn recipe() -> TrainConfig {
    let mut c = TrainConfig {
        methods: vec![Method::StepGrpo, Method::Grpo, Method::GrpoLengthPenalty],
        // The tiny model's small operations keep about one core busy: train two methods at once.
        jobs: 2,
        save_steps: 50,
        ..TrainConfig::default()
    };
    // 600 steps reached 81.5-83.5 % held-out accuracy at lr 3e-3 in two runs, 81.0 % at 2e-3,
    // 59.1 % at 1e-3.
    c.sft.max_steps = 600;
    c.sft.optim = OptimConfig {
        learning_rate: 3e-3,
        warmup_steps: 100,
        lr_scheduler_type: Schedule::Cosine,
        ..OptimConfig::default()
    };
    // RL updates are noisy at this size, and from a weaker warm start 4e-5 and 5e-5 cost
    // accuracy: 3e-5 after a short warm-up. 120 steps of 16 prompts x 8 responses keep the run,
    // with its 5000-problem evaluations, under 15 minutes on two cores.
    c.rl.max_steps = 120;
    c.rl.prompts_per_step = 16;
    c.rl.steps_per_generation = 1;
    c.rl.optim = OptimConfig { learning_rate: 3e-5, warmup_steps: 10, ..OptimConfig::default() };
    c.rl.rollout.num_generations = 8;
    c.rl.rollout.max_completion_length = 128;
    c.eval.max_completion_length = 128;
    // The paper's criterion is within 1 point of SFT: at 500 problems one run's accuracy has a
    // standard error of 2 points, at 5000 of 0.65 (about 20 s of decoding on two cores).
    c.eval.num_problems = 5000;
    c.eval.eval_steps = 10;
    if let Some(t) = &mut c.rl.rollout.truncation {
        // The tiny model is sure of its last line whether it is right or wrong: at 0.95 83 % of
        // the first rollouts exit at their first trigger, every group is all k = 1 and the step
        // reward has nothing to compare; at 0.999 about a quarter exit and the rest think on,
        // so a short correct response earns its bonus against long ones (README).
        t.delta = 0.999;
        t.inducer = "</think>\n\n".into();
        t.probe_stop = "}".into();
        t.probe_max_tokens = 5;
        t.budget_margin = 8;
    }
    c
}
