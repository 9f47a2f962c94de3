//! The batched rollout loop: every unfinished row feeds one token per forward pass, whatever it is
//! doing (thinking, probing, closing, answering), so probes of many rows run together and no row
//! waits for another. Rows rewind their own cache positions after a probe.

use super::config::RolloutConfig;
use super::row::{Rollout, Row, Shared};
use crate::decode::{feed, prefill};
use crate::error::Result;
use crate::model::CausalLm;
use crate::rng::Rng;
use crate::text::Tokenizer;

/// Generates `config.num_generations` responses for each prompt; responses of prompt `p` are
/// returned contiguously, in order. Row `r` samples from its own stream of `config.sampling.seed`.
pub async fn rollout(
    model: &CausalLm,
    tokenizer: &Tokenizer,
    prompts: &[Vec<u32>],
    eos_token_ids: &[u32],
    config: &RolloutConfig,
) -> Result<Vec<Rollout>> {
    config.validate()?;
    let vocab = model.config.vocab_size;
    let inducer = match &config.truncation {
        Some(t) => tokenizer.encode(&t.inducer)?,
        None => Vec::new(),
    };
    let shared = Shared { config, tokenizer, eos: eos_token_ids, inducer };
    let g = config.num_generations;

    // One prefill per prompt, then each prompt's cache row is copied to its G responses.
    let (prompt_cache, prompt_logits) = prefill(model, prompts).await?;
    let copies: Vec<usize> = (0..prompts.len()).flat_map(|p| std::iter::repeat_n(p, g)).collect();
    let mut cache = prompt_cache.select_rows(&copies);
    let mut logits: Vec<f32> =
        copies.iter().flat_map(|&p| prompt_logits[p * vocab..(p + 1) * vocab].iter().copied()).collect();

    let mut rows: Vec<Row> = copies
        .iter()
        .enumerate()
        .map(|(r, &p)| Row::new(p, prompts[p].len(), Rng::stream(config.sampling.seed, r as u64)))
        .collect();
    // `active[i]` is the row held in cache row i.
    let mut active: Vec<usize> = (0..rows.len()).collect();
    while !active.is_empty() {
        let mut tokens = Vec::with_capacity(active.len());
        let mut keep = Vec::with_capacity(active.len());
        for (i, &r) in active.iter().enumerate() {
            let step = rows[r].step(&logits[i * vocab..(i + 1) * vocab], &shared)?;
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
        logits = feed(model, &mut cache, tokens).await?;
    }
    Ok(rows.into_iter().map(|r| r.out).collect())
}
