//! One RL method, step by step: collect rollouts through a [`RolloutSource`], score them (rewards,
//! group advantages), update the policy with the GRPO objective, report the step's metrics.
//! A generation of rollouts may serve several optimizer steps (`steps_per_generation`,
//! `num_iterations`); those steps train on the sampling policy's log-probs, so the ratio moves
//! off 1 and the clipping acts.

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};
use web_time::Instant;

use super::checkpoint::Restored;
use super::config::RlConfig;
use super::generation::{Generation, Groups, MiniBatch};
use super::guard::NanGuard;
use super::method::Method;
use super::metrics::{RlMetrics, RolloutStats, group_spread};
use super::optim::Optimizer;
use super::problems::ProblemSet;
use super::seeds;
use super::setup::RunData;
use super::update::{LOSS_TERMS, policy_gradients, sampling_log_probs};
use crate::data::Problem;
use crate::decode::read_rows;
use crate::error::{Error, Result};
use crate::grpo::group_advantages;
use crate::model::CausalLm;
use crate::reward::{Reward, RewardBatch, RewardOutput};
use crate::rollout::{Rollout, RolloutRequest, RolloutSource};
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
    /// The first group of the step's mini-batch.
    pub group: Vec<ScoredRollout>,
}

/// The generation being trained on, with its groups.
struct Pending {
    generation: Generation,
    groups: Groups,
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
    /// Updates skipped for NaN or infinite values.
    pub guard: NanGuard,
    reference: Option<CausalLm>,
    config: RlConfig,
    reward: Box<dyn Reward>,
    problems: ProblemSet,
    tokenizer: Tokenizer,
    pad: u32,
    seed: u64,
    source: Box<dyn RolloutSource>,
    /// The optimizer step whose weights the source holds.
    synced: Option<usize>,
    pending: Option<Pending>,
}

impl RlTrainer {
    /// A trainer at step 0 collecting rollouts from `source`. `model` lives on an autodiff device
    /// and gets fresh adapters with `config.lora` (its base stays in the dtype it was loaded in),
    /// or trains in f32 without; the reference model is a frozen copy of it as loaded (with
    /// adapters: the base itself), kept only when `config.grpo.beta > 0` (so a resumed run passes
    /// its starting model here and then restores the checkpoint).
    pub fn new(
        method: Method,
        model: CausalLm,
        data: &RunData,
        config: RlConfig,
        seed: u64,
        source: Box<dyn RolloutSource>,
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
        let kl = config.grpo.beta > 0.0;
        let (model, reference) = match &config.lora {
            Some(lora) => {
                // With adapters the reference is the frozen base itself, sharing the policy's
                // weights (in the checkpoint's dtype).
                let model = model.with_lora(lora, seed)?;
                let reference = kl.then(|| model.valid().without_adapters());
                (model, reference)
            }
            // The reference keeps the loaded dtype (bf16 of a bf16 checkpoint); the policy trains
            // f32 master weights.
            None => (model.clone().in_f32(), kl.then(|| model.valid())),
        };
        let optim = Optimizer::new(&config.optim, config.max_steps);
        Ok(RlTrainer {
            method,
            model,
            optim,
            step: 0,
            guard: NanGuard::default(),
            reference,
            config,
            reward,
            problems: data.problems.clone(),
            tokenizer: data.tokenizer.clone(),
            pad: data.eos.first().copied().unwrap_or(0),
            seed,
            source,
            synced: None,
            pending: None,
        })
    }

    /// Scores rollouts with `reward` instead of the method's (a custom reward function).
    pub fn with_reward(mut self, reward: Box<dyn Reward>) -> Self {
        self.reward = reward;
        self
    }

    /// Continues from a checkpoint of this phase (model, optimizer state, step, and the generation
    /// of rollouts it stopped inside, if any).
    pub fn restore(&mut self, restored: Restored) -> Result<()> {
        self.optim.load_bytes(restored.optimizer, &restored.optimizer_file)?;
        // A record carries no gradient flags: freeze the base again.
        self.model = match self.config.lora {
            Some(_) => restored.model.freeze_base(),
            None => restored.model,
        };
        self.step = restored.state.step;
        self.guard = restored.state.nan_guard;
        self.synced = None;
        self.pending = match restored.generation {
            Some(bytes) => {
                let generation: Generation = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::invalid("checkpoint generation.json", e.to_string()))?;
                let g = self.config.rollout.num_generations;
                let groups = Groups::new(&generation.rollouts, generation.prompts.len(), g, "checkpoint")?;
                Some(Pending { generation, groups })
            }
            None => None,
        };
        Ok(())
    }

    /// Whether every configured step has run.
    pub fn is_done(&self) -> bool {
        self.step >= self.config.max_steps
    }

    /// The generation that step `step` (0-based) trains on, serialised, when it is the one held:
    /// what a checkpoint after `step` steps keeps to resume exactly (the rollouts of a generation
    /// that later steps still train on).
    pub fn generation_for(&self, step: usize) -> Option<Vec<u8>> {
        let p = self.pending.as_ref().filter(|p| p.generation.index == self.generation_of(step))?;
        Some(serde_json::to_vec(&p.generation).expect("a generation serialises"))
    }

    fn generation_of(&self, step: usize) -> usize {
        step / self.config.steps_per_rollout()
    }

    /// Trains one optimizer step: collect rollouts through the source and score them (when the
    /// step starts a generation), update the policy on the step's mini-batch, report the metrics.
    pub async fn step(&mut self) -> Result<RlStep> {
        let start = Instant::now();
        let index = self.generation_of(self.step);
        let mut rollout_seconds = 0.0;
        if self.pending.as_ref().is_none_or(|p| p.generation.index != index) {
            let (problems, prompts, rollouts, groups) = self.collect(index).await?;
            rollout_seconds = start.elapsed().as_secs_f64();
            let generation = self.score(index, problems, prompts, rollouts, &groups).await?;
            self.pending = Some(Pending { generation, groups });
        }
        let c = &self.config;
        let chunk = (self.step % c.steps_per_rollout()) % c.steps_per_generation;
        let pending = self.pending.as_ref().expect("collected above");
        let mini = MiniBatch::new(&pending.groups, chunk, c.prompts_per_step);
        let learning_rate = self.optim.lr(self.step);
        let generation = &pending.generation;
        let (grads, mut parts) =
            policy_gradients(&self.model, self.reference.as_ref(), c, generation, &mini.rows, self.pad);
        let norm = Optimizer::grad_norm(&self.model, &grads);
        parts.push(norm.clone());
        // One readback, before the update: the loss terms of every micro-batch and the gradient norm.
        let read = read_rows(Tensor::cat(parts, 0).unsqueeze()).await?;
        let (terms, grad_norm) = (&read[..read.len() - 1], read[read.len() - 1] as f64);
        // Each micro-batch's terms are its share of the mini-batch's averages.
        let total = |k: usize| terms.chunks(LOSS_TERMS).map(|c| c[k] as f64).sum::<f64>();
        let rollouts: Vec<Rollout> = mini.rows.iter().map(|&i| generation.rollouts[i].clone()).collect();
        let scores: Vec<RewardOutput> = mini.rows.iter().map(|&i| generation.scores[i]).collect();
        let rewards: Vec<f64> = scores.iter().map(|s| s.overall).collect();
        let reward_fault = rewards.iter().copied().find(|r| !r.is_finite());
        let faults = reward_fault.map(|r| ("reward", r)).into_iter();
        if self.guard.check(faults.chain([("loss", total(0)), ("gradient norm", grad_norm)])) {
            self.model = self.optim.apply(self.step, self.model.clone(), grads, norm);
        }
        self.step += 1;
        let stats = RolloutStats::new(&rollouts, &scores);
        let (reward_std, frac_reward_zero_std) = group_spread(&rewards, &mini.groups);
        let metrics = RlMetrics {
            method: self.method.name().into(),
            step: self.step,
            reward: rewards.iter().sum::<f64>() / rewards.len().max(1) as f64,
            reward_std,
            frac_reward_zero_std,
            mean_length: stats.mean_tokens,
            clipped_ratio: stats.clipped_ratio,
            kl: total(1),
            clip_ratio_low: total(2),
            clip_ratio_high: total(3),
            clip_ratio_region: total(2) + total(3),
            clip_ratio_dual: total(4),
            entropy: total(5),
            steps_mean: stats.mean_steps,
            early_exit_rate: stats.early_exit_rate,
            mean_probes: stats.mean_probes,
            mean_confidence: stats.mean_confidence,
            early_exit_accuracy: stats.early_exit_accuracy,
            accuracy: stats.accuracy,
            tokens_per_correct: stats.tokens_per_correct,
            loss: total(0),
            grad_norm,
            learning_rate,
            rollout_seconds,
            step_seconds: start.elapsed().as_secs_f64(),
            engine_mismatch_mean: generation.engine_corrected.then(|| total(6) / total(8).max(1.0)),
            engine_mismatch_max: generation
                .engine_corrected
                .then(|| terms.chunks(LOSS_TERMS).map(|c| c[7] as f64).fold(0.0, f64::max)),
            nan_skipped: self.guard.skipped,
        };
        let group = mini.groups[0]
            .iter()
            .map(|&j| {
                let i = mini.rows[j];
                ScoredRollout {
                    prompt: generation.problems[generation.rollouts[i].prompt].prompt.clone(),
                    text: generation.texts[i].clone(),
                    rollout: generation.rollouts[i].clone(),
                    reward: generation.scores[i],
                    advantage: generation.advantages[i] as f64,
                }
            })
            .collect();
        Ok(RlStep { metrics, group })
    }

    /// The rollouts of generation `index`, sampled by the source with the current weights, checked
    /// against the request: G responses per prompt, every id in the model's vocabulary.
    async fn collect(&mut self, index: usize) -> Result<(Vec<Problem>, Vec<Vec<u32>>, Vec<Rollout>, Groups)> {
        let c = &self.config;
        let problems = self.problems.batch(self.seed, index, c.prompts_per_step * c.steps_per_generation)?;
        let prompts =
            problems.iter().map(|p| self.tokenizer.encode(&p.prompt)).collect::<Result<Vec<_>>>()?;
        let mut config = c.rollout.clone();
        config.sampling.seed = seeds::rollout_seed(self.seed, index);
        if !self.method.truncates() {
            config.truncation = None;
        }
        if self.synced != Some(self.step) {
            self.source.load_weights(&self.model, self.step as u64).await?;
            self.synced = Some(self.step);
        }
        let rollouts = self.source.collect(RolloutRequest { prompts: &prompts, config: &config }).await?;
        let groups = Groups::new(&rollouts, prompts.len(), c.rollout.num_generations, self.source.name())?;
        let vocab = self.model.config.vocab_size;
        let stray = rollouts
            .iter()
            .enumerate()
            .find_map(|(i, r)| r.ids.iter().find(|&&id| id as usize >= vocab).map(|&id| (i, id)));
        if let Some((i, id)) = stray {
            return Err(Error::invalid(
                format!("rollout engine `{}`", self.source.name()),
                format!("response {i} has token id {id}, but the model has {vocab}"),
            ));
        }
        // Rollouts of older weights are off-policy: only the engine correction may train them.
        let stale = rollouts.iter().find(|r| r.policy_version != self.step as u64);
        if let Some(r) = stale.filter(|_| !self.config.grpo.vllm_importance_sampling_correction) {
            return Err(Error::invalid(
                format!("rollout engine `{}`", self.source.name()),
                format!(
                    "a rollout came from the weights of step {} while the policy is at step {}; \
                     enable vllm_importance_sampling_correction to train on it",
                    r.policy_version, self.step
                ),
            ));
        }
        Ok((problems, prompts, rollouts, groups))
    }

    /// Rewards of the rollouts, each response's advantage within its group and, when later steps
    /// reuse the generation, the sampling policy's log-probs.
    async fn score(
        &self,
        index: usize,
        problems: Vec<Problem>,
        prompts: Vec<Vec<u32>>,
        rollouts: Vec<Rollout>,
        groups: &Groups,
    ) -> Result<Generation> {
        let texts = rollouts.iter().map(|r| self.tokenizer.decode(&r.ids)).collect::<Result<Vec<_>>>()?;
        let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let truths: Vec<&str> = rollouts.iter().map(|r| problems[r.prompt].answer.as_str()).collect();
        let group_of = groups.ids(rollouts.len());
        let uids: Vec<String> = group_of.iter().map(usize::to_string).collect();
        let uid_refs: Vec<&str> = uids.iter().map(String::as_str).collect();
        let lengths: Vec<usize> = rollouts.iter().map(|r| r.ids.len()).collect();
        let bad = |e: crate::reward::RewardError| Error::invalid("reward", e.to_string());
        let batch = RewardBatch::new(&text_refs, &truths, &uid_refs)
            .and_then(|b| b.with_lengths(&lengths))
            .map_err(bad)?;
        let scores = self.reward.score(&batch).map_err(bad)?;
        let device = self.model.device();
        let n = scores.len();
        let rewards: Vec<f32> = scores.iter().map(|s| s.overall as f32).collect();
        let group_ids: Vec<i64> = group_of.iter().map(|&g| g as i64).collect();
        let advantages = group_advantages(
            Tensor::from_data(TensorData::new(rewards, [n]), &device),
            Tensor::from_data(TensorData::new(group_ids, [n]), &device),
            self.config.grpo.scale_rewards,
        );
        let advantages = read_rows(advantages.unsqueeze()).await?;
        let engine_corrected =
            self.source.is_remote() && self.config.grpo.vllm_importance_sampling_correction;
        let mut generation = Generation {
            index,
            problems,
            prompts,
            rollouts,
            texts,
            scores,
            advantages,
            old_log_probs: None,
            engine_corrected,
        };
        if self.config.steps_per_rollout() > 1 {
            let old = sampling_log_probs(&self.model, &self.config, &generation, self.pad).await?;
            generation.old_log_probs = Some(old);
        }
        Ok(generation)
    }
}
