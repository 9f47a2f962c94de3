//! One RL method, step by step: rollouts (truncated or plain), rewards, group advantages, and the
//! GRPO update with a frozen reference model for the KL term.

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};
use web_time::Instant;

use super::batch::{Sequence, TokenBatch, length_buckets, token_log_probs};
use super::checkpoint::Restored;
use super::config::RlConfig;
use super::method::Method;
use super::metrics::{RlMetrics, RolloutStats, group_spread};
use super::optim::Optimizer;
use super::problems::ProblemSet;
use crate::decode::read_rows;
use crate::error::{Error, Result};
use crate::grpo::{MiniBatchSize, PolicyBatch, group_advantages, grpo_loss};
use crate::model::CausalLm;
use crate::reward::{Reward, RewardBatch, RewardOutput};
use crate::rng::Rng;
use crate::rollout::{Rollout, rollout};
use crate::text::Tokenizer;

/// One response of a step with its text and reward, for display.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredRollout {
    /// The prompt text.
    pub prompt: String,
    /// The trained response text.
    pub text: String,
    /// The rollout (ids, exit, probes).
    pub rollout: Rollout,
    /// Its reward and parts.
    pub reward: RewardOutput,
    /// Its advantage.
    pub advantage: f64,
}

/// What one step produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RlStep {
    /// The step's metrics.
    pub metrics: RlMetrics,
    /// The first group's responses.
    pub group: Vec<ScoredRollout>,
}

/// RL training of one method.
pub struct RlTrainer {
    /// The method.
    pub method: Method,
    /// The policy being trained (on an autodiff device).
    pub model: CausalLm,
    /// The optimizer.
    pub optim: Optimizer,
    /// Steps done.
    pub step: usize,
    reference: Option<CausalLm>,
    config: RlConfig,
    reward: Box<dyn Reward>,
    problems: ProblemSet,
    tokenizer: Tokenizer,
    eos: Vec<u32>,
    seed: u64,
}

impl RlTrainer {
    /// A trainer at step 0. `model` lives on an autodiff device; the reference model is a frozen
    /// copy of it, kept only when `config.grpo.beta > 0` (so a resumed run passes its starting model
    /// here and then restores the checkpoint).
    pub fn new(
        method: Method,
        model: CausalLm,
        tokenizer: Tokenizer,
        eos: Vec<u32>,
        problems: ProblemSet,
        config: RlConfig,
        seed: u64,
    ) -> Result<Self> {
        config.grpo.validate()?;
        config.rollout.validate()?;
        if method.truncates() && config.rollout.truncation.is_none() {
            return Err(Error::invalid(
                "rl.rollout.truncation",
                format!("{} needs probe settings", method.name()),
            ));
        }
        let reward = method.reward(&config.reward, &config.rollout)?;
        let reference = (config.grpo.beta > 0.0).then(|| model.valid());
        let optim = Optimizer::new(&config.optim, config.max_steps);
        Ok(RlTrainer {
            method,
            model,
            optim,
            step: 0,
            reference,
            config,
            reward,
            problems,
            tokenizer,
            eos,
            seed,
        })
    }

    /// Continues from a checkpoint of this phase (model, optimizer state, step).
    pub fn restore(&mut self, restored: Restored) -> Result<()> {
        self.optim.load_bytes(restored.optimizer)?;
        self.model = restored.model;
        self.step = restored.state.step;
        Ok(())
    }

    /// Whether every configured step has run.
    pub fn is_done(&self) -> bool {
        self.step >= self.config.max_steps
    }

    /// Generates, scores and learns from one batch of problems.
    pub async fn step(&mut self) -> Result<RlStep> {
        let start = Instant::now();
        let c = &self.config;
        let problems = self.problems.batch(self.seed, self.step, c.prompts_per_step);
        let prompts =
            problems.iter().map(|p| self.tokenizer.encode(&p.prompt)).collect::<Result<Vec<_>>>()?;
        let mut rollout_config = c.rollout.clone();
        rollout_config.sampling.seed = Rng::stream(self.seed, self.step as u64).next_u64();
        if !self.method.truncates() {
            rollout_config.truncation = None;
        }
        let rollouts =
            rollout(&self.model.valid(), &self.tokenizer, &prompts, &self.eos, &rollout_config).await?;
        let rollout_seconds = start.elapsed().as_secs_f64();

        // Rewards and group advantages; responses of prompt p are contiguous.
        let texts = rollouts.iter().map(|r| self.tokenizer.decode(&r.ids)).collect::<Result<Vec<_>>>()?;
        let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let truths: Vec<&str> = rollouts.iter().map(|r| problems[r.prompt].answer.as_str()).collect();
        let uids: Vec<String> = rollouts.iter().map(|r| r.prompt.to_string()).collect();
        let uid_refs: Vec<&str> = uids.iter().map(String::as_str).collect();
        let lengths: Vec<usize> = rollouts.iter().map(|r| r.ids.len()).collect();
        let bad = |e: crate::reward::RewardError| Error::invalid("reward", e.to_string());
        let batch = RewardBatch::new(&text_refs, &truths, &uid_refs)
            .and_then(|b| b.with_lengths(&lengths))
            .map_err(bad)?;
        let scores = self.reward.score(&batch).map_err(bad)?;
        let rewards: Vec<f64> = scores.iter().map(|s| s.overall).collect();
        let device = self.model.device();
        let n = rewards.len();
        let reward_tensor = rewards.iter().map(|&r| r as f32).collect::<Vec<_>>();
        let group_of = rollouts.iter().map(|r| r.prompt as i64).collect::<Vec<_>>();
        let advantages = group_advantages(
            Tensor::from_data(TensorData::new(reward_tensor, [n]), &device),
            Tensor::from_data(TensorData::new(group_of, [n]), &device),
            c.grpo.scale_rewards,
        );

        // The update, in micro-batches of rows of similar length (see `length_buckets`); each
        // averages over the whole batch's size, so their gradients add up to the batch's.
        let pad = self.eos.first().copied().unwrap_or(0);
        let g = c.rollout.num_generations;
        let lengths: Vec<usize> = rollouts.iter().map(|r| prompts[r.prompt].len() + r.ids.len()).collect();
        let whole = MiniBatchSize { tokens: rollouts.iter().map(|r| r.ids.len()).sum(), responses: n };
        // Log-probs of the policy that sampled: the rollout's tempered distribution (greedy
        // rollouts, temperature 0, have none; they are scored untempered).
        let temperature = match c.rollout.sampling.temperature {
            t if t > 0.0 => t as f64,
            _ => 1.0,
        };
        let mut accumulator = GradientsAccumulator::new();
        let mut parts: Vec<Tensor<1>> = Vec::new();
        for rows in length_buckets(&lengths, c.gradient_accumulation_steps, c.micro_batch_tokens) {
            let sequences: Vec<Sequence> = rows
                .iter()
                .map(|&i| Sequence {
                    prompt: &prompts[rollouts[i].prompt],
                    completion: &rollouts[i].ids,
                    trained: None,
                })
                .collect();
            let tokens = TokenBatch::new(&sequences, pad, &device);
            let log_probs = token_log_probs(&self.model, &tokens, temperature);
            let ref_log_probs =
                self.reference.as_ref().map(|r| token_log_probs(r, &tokens.inner(), temperature));
            let index = rows.iter().map(|&i| i as i64).collect::<Vec<_>>();
            let index = Tensor::from_data(TensorData::new(index, [rows.len()]), &device);
            let loss = grpo_loss(
                PolicyBatch {
                    // One update per batch: the sampling policy is the current one, so the old
                    // log-probs are these very log-probs, detached (recomputed on the trained sequence).
                    old_log_probs: log_probs.clone().detach(),
                    log_probs,
                    ref_log_probs: ref_log_probs.map(Tensor::from_inner),
                    advantages: advantages.clone().select(0, index),
                    mask: tokens.mask.clone(),
                    mini_batch: Some(whole),
                },
                &c.grpo,
            );
            accumulator
                .accumulate(&self.model, GradientsParams::from_grads(loss.loss.backward(), &self.model));
            parts.extend(
                [loss.loss, loss.kl_loss, loss.clip_ratio_low, loss.clip_ratio_high, loss.entropy]
                    .map(|t| t.inner()),
            );
        }
        let learning_rate = self.optim.lr(self.step);
        let (model, norm) = self.optim.step(self.step, self.model.clone(), accumulator.grads());
        self.model = model;
        self.step += 1;

        let micro = parts.len() / 5;
        // One readback: the loss terms, the gradient norm and the shown group's advantages.
        parts.push(norm);
        parts.push(advantages.slice(0..g.min(n)));
        let read = read_rows(Tensor::cat(parts, 0).unsqueeze()).await?;
        let (grad_norm, shown_advantages) = (read[5 * micro] as f64, &read[5 * micro + 1..]);
        // Each micro-batch's terms are its share of the batch's averages.
        let mean_of = |k: usize| read[..5 * micro].chunks(5).map(|c| c[k] as f64).sum::<f64>();
        let stats = RolloutStats::new(&rollouts, &scores);
        let groups: Vec<Vec<usize>> = (0..prompts.len()).map(|p| (p * g..(p + 1) * g).collect()).collect();
        let (reward_std, frac_reward_zero_std) = group_spread(&rewards, &groups);
        let metrics = RlMetrics {
            method: self.method.name().into(),
            step: self.step,
            reward: rewards.iter().sum::<f64>() / rewards.len().max(1) as f64,
            reward_std,
            frac_reward_zero_std,
            mean_length: stats.mean_tokens,
            clipped_ratio: stats.clipped_ratio,
            kl: mean_of(1),
            clip_ratio_low: mean_of(2),
            clip_ratio_high: mean_of(3),
            entropy: mean_of(4),
            steps_mean: stats.mean_steps,
            early_exit_rate: stats.early_exit_rate,
            mean_probes: stats.mean_probes,
            mean_confidence: stats.mean_confidence,
            early_exit_accuracy: stats.early_exit_accuracy,
            accuracy: stats.accuracy,
            tokens_per_correct: stats.tokens_per_correct,
            loss: mean_of(0),
            grad_norm,
            learning_rate,
            rollout_seconds,
            step_seconds: start.elapsed().as_secs_f64(),
        };
        let group = rollouts
            .iter()
            .zip(texts)
            .zip(scores.iter().zip(shown_advantages))
            .take(g)
            .map(|((r, text), (s, &a))| ScoredRollout {
                prompt: problems[r.prompt].prompt.clone(),
                text,
                rollout: r.clone(),
                reward: *s,
                advantage: a as f64,
            })
            .collect();
        Ok(RlStep { metrics, group })
    }
}
