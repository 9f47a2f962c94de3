//! The batched rollout loop: every unfinished row feeds one token per forward pass, whatever it is
//! doing (thinking, probing, closing, answering), so probes of many rows run together and no row
//! waits for another. Rows rewind their own cache positions after a probe.

use burn::tensor::{Int, Tensor, TensorData};

use super::config::RolloutConfig;
use super::row::{Rollout, Row, Shared};
use crate::decode::{check_context, draw, feed, prefill};
use crate::error::Result;
use crate::model::CausalLm;
use crate::rng::Rng;
use crate::text::Tokenizer;

/// Generates `config.num_generations` responses for each prompt; responses of prompt `p` are
/// returned contiguously, in order. Row `r` samples from its own stream of `config.sampling.seed`;
/// no row draws an id the tokenizer does not know.
pub async fn rollout(
    model: &CausalLm,
    tokenizer: &Tokenizer,
    prompts: &[Vec<u32>],
    eos_token_ids: &[u32],
    config: &RolloutConfig,
) -> Result<Vec<Rollout>> {
    rollout_rows(model, tokenizer, prompts, eos_token_ids, config, 0).await
}

/// [`rollout`] of a slice of a larger batch whose first row is `first_row`: each row samples from
/// the stream of its place in the whole batch, so cutting a batch into slices changes nothing.
pub(super) async fn rollout_rows(
    model: &CausalLm,
    tokenizer: &Tokenizer,
    prompts: &[Vec<u32>],
    eos_token_ids: &[u32],
    config: &RolloutConfig,
    first_row: usize,
) -> Result<Vec<Rollout>> {
    config.validate()?;
    let option = "max_completion_length (rl.rollout.max_completion_length, eval.max_completion_length)";
    check_context(model, prompts, config.max_completion_length, option)?;
    let inducer = match &config.truncation {
        Some(t) => tokenizer.encode(&t.inducer)?,
        None => Vec::new(),
    };
    let shared = Shared { config, tokenizer, eos: eos_token_ids, inducer };
    let g = config.num_generations;

    // One prefill per prompt, then each prompt's cache row is copied to its G responses.
    let (prompt_cache, prompt_logits) = prefill(model, prompts, Some(tokenizer))?;
    let vocab_limit = Some(tokenizer.id_limit());
    let copies: Vec<usize> = (0..prompts.len()).flat_map(|p| std::iter::repeat_n(p, g)).collect();
    let mut cache = prompt_cache.select_rows(&copies);
    let rows_of = copies.iter().map(|&p| p as i64).collect::<Vec<_>>();
    let rows_of = Tensor::<1, Int>::from_data(TensorData::new(rows_of, [copies.len()]), &model.device());
    let mut logits = prompt_logits.select(0, rows_of);

    let mut rows: Vec<Row> = copies
        .iter()
        .enumerate()
        .map(|(r, &p)| {
            Row::new(p, prompts[p].len(), Rng::stream(config.sampling.seed, (first_row + r) as u64))
        })
        .collect();
    // `active[i]` is the row held in cache row i.
    let mut active: Vec<usize> = (0..rows.len()).collect();
    while !active.is_empty() {
        let mut tokens = Vec::with_capacity(active.len());
        let mut keep = Vec::with_capacity(active.len());
        // Only ids and log-probs come back from the device: probing rows draw greedily.
        let uniforms = active.iter().map(|&r| rows[r].uniform(&shared)).collect();
        let drawn = draw(logits, uniforms, &config.sampling, vocab_limit).await?;
        for (i, &r) in active.iter().enumerate() {
            let step = rows[r].step(drawn.ids[i], drawn.log_probs[i], &shared)?;
            if let Some(len) = step.rewind {
                cache.rewind_row(i, len);
            }
            if let Some(id) = step.feed {
                tokens.push(id as i64);
                keep.push(i);
            }
        }
        if keep.is_empty() {
            break;
        }
        if keep.len() < active.len() {
            cache = cache.select_rows(&keep);
            active = keep.iter().map(|&i| active[i]).collect();
        }
        logits = feed(model, &mut cache, tokens);
    }
    rows.into_iter()
        .map(|r| {
            let mut out = r.out;
            out.find_steps(tokenizer, &config.triggers)?;
            Ok(out)
        })
        .collect()
}
