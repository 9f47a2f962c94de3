//! Generating continuations for a batch of prompts: one prefill, then one token per step for every
//! unfinished row; rows stop independently and finished rows leave the batch.

use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::sampler::{SamplingConfig, draw, uniform};
use crate::error::{Error, Result};
use crate::model::{CausalLm, KvCache};
use crate::rng::Rng;
use crate::text::Tokenizer;

/// What to generate and when to stop.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenerateConfig {
    /// New tokens per row at most.
    pub max_new_tokens: usize,
    /// How each token is chosen.
    pub sampling: SamplingConfig,
    /// Ids that end a row (included in its output).
    pub eos_token_ids: Vec<u32>,
    /// Texts that end a row once they appear in its decoded output (needs a tokenizer).
    pub stop_strings: Vec<String>,
}

/// Why a row stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// It produced an end-of-sequence id.
    Eos,
    /// Its text reached a stop string.
    Stop,
    /// It used `max_new_tokens`.
    Length,
}

/// One row's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// The new token ids.
    pub ids: Vec<u32>,
    /// Log-probability of each new id under the model (before temperature).
    pub logprobs: Vec<f32>,
    /// Why the row stopped.
    pub finish: FinishReason,
}

/// Reads a [rows, cols] tensor back to the host without blocking (safe in browsers).
pub async fn read_rows(t: Tensor<2>) -> Result<Vec<f32>> {
    let data = t.into_data_async().await.map_err(|e| Error::Readback(format!("{e:?}")))?;
    data.try_to_vec::<f32>().map_err(|e| Error::Readback(format!("{e:?}")))
}

/// Checks that every prompt has ids the model embeds and, with a tokenizer, ids it can decode.
fn check_prompts(prompts: &[Vec<u32>], model: &CausalLm, tokenizer: Option<&Tokenizer>) -> Result<()> {
    if prompts.is_empty() {
        return Err(Error::invalid("prompts", "no prompt given"));
    }
    let vocab = model.config.vocab_size;
    let (limit, whose) = match tokenizer {
        Some(t) if t.id_limit() < vocab => (t.id_limit(), format!("{} knows", t.path().display())),
        _ => (vocab, "the model's vocabulary has".to_string()),
    };
    let context = model.config.max_position_embeddings;
    for (i, p) in prompts.iter().enumerate() {
        if p.is_empty() {
            return Err(Error::invalid("prompt", format!("prompt {i} is empty")));
        }
        if p.len() >= context {
            return Err(Error::invalid(
                "prompt",
                format!(
                    "prompt {i} has {} tokens, and the model's context is {context} positions \
                     (max_position_embeddings in its config.json): no room for a new token",
                    p.len()
                ),
            ));
        }
        if let Some(bad) = p.iter().find(|&&id| id as usize >= limit) {
            return Err(Error::invalid(
                "token id",
                format!("prompt {i} has id {bad}, but {whose} {limit} ids"),
            ));
        }
    }
    Ok(())
}

/// Checks that the longest prompt and `new_tokens` more fit the model's context: past it the rotary
/// positions are ones the model never saw and the cache grows without bound. `option` names the
/// setting that asked for `new_tokens` (with its flag) in the error. A prompt that fills the context
/// by itself is left to [`prefill`]'s prompt checks, which name it.
pub(crate) fn check_context(
    model: &CausalLm,
    prompts: &[Vec<u32>],
    new_tokens: usize,
    option: &str,
) -> Result<()> {
    let context = model.config.max_position_embeddings;
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    if longest < context && longest.saturating_add(new_tokens) > context {
        let name = option.split(' ').next().unwrap_or(option);
        return Err(Error::invalid(
            name,
            format!(
                "{new_tokens} new tokens after a prompt of {longest} run past the model's context of \
                 {context} positions (max_position_embeddings in its config.json); lower {option} to at \
                 most {}",
                context.saturating_sub(longest)
            ),
        ));
    }
    Ok(())
}

/// Runs `prompts` through the model in one left-padded batch; returns the cache and the logits of
/// each prompt's next token [rows, vocab], left on the device. Prompt ids are checked against the
/// model and, when given, the tokenizer.
pub fn prefill(
    model: &CausalLm,
    prompts: &[Vec<u32>],
    tokenizer: Option<&Tokenizer>,
) -> Result<(KvCache, Tensor<2>)> {
    check_prompts(prompts, model, tokenizer)?;
    let width = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let pad: Vec<usize> = prompts.iter().map(|p| width - p.len()).collect();
    let ids: Vec<i64> = prompts
        .iter()
        .flat_map(|p| std::iter::repeat_n(0, width - p.len()).chain(p.iter().map(|&x| x as i64)))
        .collect();
    let mut cache = KvCache::new(model.config.num_hidden_layers, pad);
    let input = Tensor::<2, Int>::from_data(TensorData::new(ids, [prompts.len(), width]), &model.device());
    let logits = model.forward_cached(input, &mut cache);
    Ok((cache, logits))
}

/// Feeds one token to each row of `cache` and returns the logits that follow [rows, vocab].
pub fn feed(model: &CausalLm, cache: &mut KvCache, ids: Vec<i64>) -> Tensor<2> {
    let input = Tensor::<2, Int>::from_data(TensorData::new(ids, [cache.batch_size(), 1]), &model.device());
    model.forward_cached(input, cache)
}

/// Decodes continuations of `prompts` together. Left padding lines the prompts up for one prefill;
/// each row draws from its own seeded stream, so its output does not depend on the batch it is in.
pub async fn generate(
    model: &CausalLm,
    prompts: &[Vec<u32>],
    config: &GenerateConfig,
    tokenizer: Option<&Tokenizer>,
) -> Result<Vec<Generation>> {
    config.sampling.validate()?;
    if !config.stop_strings.is_empty() && tokenizer.is_none() {
        return Err(Error::invalid("stop_strings", "stop strings need a tokenizer"));
    }
    check_context(model, prompts, config.max_new_tokens, "max_new_tokens (--max-new-tokens)")?;
    let (mut cache, mut logits) = prefill(model, prompts, tokenizer)?;
    let vocab_limit = tokenizer.map(Tokenizer::id_limit);

    let mut rngs: Vec<Rng> =
        (0..prompts.len()).map(|r| Rng::stream(config.sampling.seed, r as u64)).collect();
    let mut out: Vec<Generation> = (0..prompts.len())
        .map(|_| Generation { ids: Vec::new(), logprobs: Vec::new(), finish: FinishReason::Length })
        .collect();
    // `active[i]` is the original row index of the cache's row i.
    let mut active: Vec<usize> = (0..prompts.len()).collect();
    let longest_stop = config.stop_strings.iter().map(String::len).max().unwrap_or(0);
    for step in 0..config.max_new_tokens {
        let mut still = Vec::with_capacity(active.len());
        let mut next = Vec::with_capacity(active.len());
        let uniforms = active.iter().map(|&row| uniform(&config.sampling, &mut rngs[row])).collect();
        let drawn = draw(logits, uniforms, &config.sampling, vocab_limit).await?;
        for (i, &row) in active.iter().enumerate() {
            let id = drawn.ids[i];
            let g = &mut out[row];
            g.ids.push(id);
            g.logprobs.push(drawn.log_probs[i]);
            if config.eos_token_ids.contains(&id) {
                g.finish = FinishReason::Eos;
            } else if longest_stop > 0 && hits_stop(tokenizer, &g.ids, &config.stop_strings, longest_stop)? {
                g.finish = FinishReason::Stop;
            } else {
                still.push(i);
                next.push(id as i64);
            }
        }
        if still.is_empty() || step + 1 == config.max_new_tokens {
            break;
        }
        if still.len() < active.len() {
            cache = cache.select_rows(&still);
            active = still.iter().map(|&i| active[i]).collect();
        }
        logits = feed(model, &mut cache, next);
    }
    Ok(out)
}

/// Whether the tail of `ids` decodes to text containing a stop string. Only the last few tokens are
/// decoded: a stop string that appeared earlier would already have stopped the row.
fn hits_stop(tokenizer: Option<&Tokenizer>, ids: &[u32], stops: &[String], longest: usize) -> Result<bool> {
    let Some(tok) = tokenizer else { return Ok(false) };
    let tail = &ids[ids.len().saturating_sub(longest + 2)..];
    let text = tok.decode(tail)?;
    Ok(stops.iter().any(|s| text.contains(s.as_str())))
}
