//! Held-out evaluation: accuracy, tokens, steps and tokens per correct answer, with plain sampling
//! (the paper's protocol) or with the probe loop at inference time (DEER).

use serde::{Deserialize, Serialize};

use super::config::EvalConfig;
use super::metrics::RolloutStats;
use crate::data::Problem;
use crate::decode::SamplingConfig;
use crate::error::{Error, Result};
use crate::logprobs::LOGITS_PER_CHUNK;
use crate::model::CausalLm;
use crate::reward::{AccuracyConfig, AccuracyReward, Reward, RewardBatch};
use crate::rollout::{LocalEngine, Rollout, RolloutConfig, RolloutRequest, RolloutSource};
use crate::text::Tokenizer;

/// Prompts decoded together at most (bounds the key/value cache); fewer when their logits would
/// pass [`LOGITS_PER_CHUNK`] (a large vocabulary).
const CHUNK: usize = 256;

/// One evaluated response, for inspection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The prompt.
    pub prompt: String,
    /// The response text.
    pub response: String,
    /// The ground truth.
    pub answer: String,
    /// Whether the response was graded correct.
    pub correct: bool,
}

/// The result of an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Accuracy, tokens, steps, early exits.
    pub stats: RolloutStats,
    /// Every response, in problem order.
    pub samples: Vec<Sample>,
}

impl EvalConfig {
    /// The rollout settings of an evaluation: one response per problem, this config's sampling, and
    /// the triggers and cache bound of `base` (the training rollout); when `deer` is on, its probes
    /// too, exiting at `deer_threshold`.
    pub fn rollout(&self, base: &RolloutConfig, seed: u64) -> RolloutConfig {
        RolloutConfig {
            num_generations: 1,
            max_completion_length: self.max_completion_length,
            sampling: SamplingConfig { temperature: self.temperature, top_k: 0, top_p: self.top_p, seed },
            triggers: base.triggers.clone(),
            think_end: base.think_end.clone(),
            truncation: base.truncation.clone().filter(|_| self.deer).map(|mut t| {
                t.probe_threshold = self.deer_threshold;
                t
            }),
            max_cache_gib: base.max_cache_gib,
        }
    }
}

/// Answers every problem once with `model` under `rollout_config` (see [`EvalConfig::rollout`]) and
/// grades the answers.
pub async fn evaluate(
    model: &CausalLm,
    tokenizer: &Tokenizer,
    eos_token_ids: &[u32],
    problems: &[Problem],
    rollout_config: &RolloutConfig,
) -> Result<EvalReport> {
    let mut engine = LocalEngine::new(tokenizer.clone(), eos_token_ids.to_vec());
    engine.load_weights(model, 0).await?;
    let chunk = CHUNK.min(LOGITS_PER_CHUNK / model.config.vocab_size.max(1)).max(1);
    evaluate_with(&mut engine, tokenizer, problems, rollout_config, chunk).await
}

/// [`evaluate`] through any rollout engine (one that holds the weights to evaluate), `chunk`
/// prompts per collection.
pub async fn evaluate_with(
    engine: &mut dyn RolloutSource,
    tokenizer: &Tokenizer,
    problems: &[Problem],
    rollout_config: &RolloutConfig,
    chunk: usize,
) -> Result<EvalReport> {
    if problems.is_empty() {
        return Err(Error::invalid("eval problems", "none given"));
    }
    let seed = rollout_config.sampling.seed;
    let mut rollouts: Vec<Rollout> = Vec::with_capacity(problems.len());
    for (c, chunk) in problems.chunks(chunk.max(1)).enumerate() {
        let prompts = chunk.iter().map(|p| tokenizer.encode(&p.prompt)).collect::<Result<Vec<_>>>()?;
        // Each chunk samples from its own streams, so results do not depend on the chunk size.
        let config = RolloutConfig {
            sampling: SamplingConfig { seed: seed.wrapping_add(c as u64), ..rollout_config.sampling },
            ..rollout_config.clone()
        };
        let mut answers = engine.collect(RolloutRequest { prompts: &prompts, config: &config }).await?;
        answers.sort_by_key(|r| r.prompt);
        rollouts.extend(answers);
    }
    let texts = rollouts.iter().map(|r| tokenizer.decode(&r.ids)).collect::<Result<Vec<_>>>()?;
    let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let truths: Vec<&str> = problems.iter().map(|p| p.answer.as_str()).collect();
    let uids: Vec<String> = (0..problems.len()).map(|i| i.to_string()).collect();
    let uid_refs: Vec<&str> = uids.iter().map(String::as_str).collect();
    let triggers = rollout_config.triggers.clone();
    let reward = AccuracyReward::new(AccuracyConfig { alpha: 1.0, triggers })
        .map_err(|e| Error::invalid("eval", e.to_string()))?;
    let batch = RewardBatch::new(&text_refs, &truths, &uid_refs)
        .map_err(|e| Error::invalid("eval", e.to_string()))?;
    let scores = reward.score(&batch).map_err(|e| Error::invalid("eval", e.to_string()))?;
    let samples = problems
        .iter()
        .zip(&texts)
        .zip(&scores)
        .map(|((p, t), s)| Sample {
            prompt: p.prompt.clone(),
            response: t.clone(),
            answer: p.answer.clone(),
            correct: s.accuracy > 0.0,
        })
        .collect();
    Ok(EvalReport { stats: RolloutStats::new(&rollouts, &scores), samples })
}
