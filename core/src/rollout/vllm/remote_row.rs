//! One response decoded by a server, request by request, through the same [`Row`] state machine
//! as the in-process engine, so both follow spec section 2 alike. Thinking is sampled until a
//! trigger word or the end of thinking (vLLM's stop strings, which match substrings: the row
//! itself applies the standalone-word rule, from token ids, never from the server's text); one
//! more token is then sampled, which the row needs to see the word end; a probe is a greedy
//! request from the context before the trigger plus the inducer. The trained ids are the row's,
//! so a stop text the server drops or keeps changes nothing.

use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::client::{Client, Server};
use crate::decode::SamplingConfig;
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::rollout::config::RolloutConfig;
use crate::rollout::row::{Next, Rollout, Row, Shared};
use crate::text::Tokenizer;

/// What every row of a collection shares.
pub(super) struct Batch {
    pub config: RolloutConfig,
    pub tokenizer: Tokenizer,
    pub eos: Vec<u32>,
    pub inducer: Vec<u32>,
    pub client: Client,
    pub servers: Vec<Server>,
    pub permits: Semaphore,
}

impl Batch {
    /// The stop strings of a thinking request: every trigger word and the end of thinking.
    fn think_stops(&self) -> Vec<String> {
        let mut stops = self.config.triggers.words().to_vec();
        stops.push(self.config.think_end.clone());
        stops
    }
}

/// A request seed for row `row`'s `n`-th request: distinct per row and request, reproducible
/// from the collection's seed (vLLM takes a non-negative 32-bit-safe integer).
fn request_seed(seed: u64, row: usize, n: u64) -> u64 {
    Rng::stream(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15), row as u64).next_u64() & 0x7FFF_FFFF
}

/// The body of a completion request of `prompt`.
fn body(server: &Server, prompt: &[u32], max_tokens: usize, sampling: &SamplingConfig, seed: u64) -> Value {
    let mut body = json!({
        "model": server.model,
        "prompt": prompt,
        "n": 1,
        "max_tokens": max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "seed": seed,
        "logprobs": 0,
        "return_token_ids": true,
        "return_tokens_as_token_ids": true,
        "include_stop_str_in_output": true,
        "skip_special_tokens": false,
    });
    if sampling.top_k > 0 {
        body["top_k"] = json!(sampling.top_k);
    }
    body
}

/// Decodes row `row` (a response to `prompts[prompt]`) on `server` to its end.
pub(super) async fn decode_row(
    batch: &Batch,
    server: &Server,
    prompt: &[u32],
    index: usize,
    row: usize,
) -> Result<Rollout> {
    let s = Shared {
        config: &batch.config,
        tokenizer: &batch.tokenizer,
        eos: &batch.eos,
        inducer: batch.inducer.clone(),
    };
    let c = &batch.config;
    // The row's own random stream is unused: the server samples.
    let mut state = Row::new(index, prompt.len(), Rng::stream(c.sampling.seed, row as u64));
    let limit = batch.tokenizer.id_limit();
    let mut lookahead = false;
    for n in 0.. {
        let ids = &state.out.ids;
        let next = state.next(&s);
        let probing = matches!(next, Next::Probe { .. });
        let (context, mut request) = match next {
            Next::Done => break,
            Next::Answer { max_tokens: 0 } => {
                state.finish_at_length();
                break;
            }
            Next::Answer { max_tokens } => {
                let context = [prompt, ids].concat();
                let mut b =
                    body(server, &context, max_tokens, &c.sampling, request_seed(c.sampling.seed, row, n));
                b["stop_token_ids"] = json!(batch.eos);
                (context, b)
            }
            Next::Think { max_tokens } => {
                let context = [prompt, ids].concat();
                let max_tokens = if lookahead { 1 } else { max_tokens };
                let mut b =
                    body(server, &context, max_tokens, &c.sampling, request_seed(c.sampling.seed, row, n));
                b["stop_token_ids"] = json!(batch.eos);
                b["stop"] = json!(batch.think_stops());
                (context, b)
            }
            Next::Probe { pause, max_tokens } => {
                let t = c.truncation.as_ref().expect("probes run with truncation on");
                let context = [prompt, &ids[..pause], &batch.inducer].concat();
                // Greedy like the in-process probe, which runs past an EOS id too.
                let mut b = body(server, &context, max_tokens, &SamplingConfig::greedy(), 0);
                b["stop"] = json!([t.probe_stop]);
                b["ignore_eos"] = json!(true);
                (context, b)
            }
        };
        if context.len() + request["max_tokens"].as_u64().unwrap_or(0) as usize > server.max_model_len {
            // Checked for the whole response before the collection; this is the last guard.
            request["max_tokens"] = json!(server.max_model_len.saturating_sub(context.len()).max(1));
        }
        let permit = batch.permits.acquire().await.expect("the semaphore is never closed");
        let reply = batch.client.complete(server, &request, limit).await?;
        drop(permit);
        let mut changed = false;
        for (&id, &lp) in reply.ids.iter().zip(&reply.log_probs) {
            if state.accept(id, lp, &s)? {
                changed = true;
                break;
            }
        }
        if probing && !changed {
            return Err(Error::invalid(
                format!("vLLM server {}", server.url),
                format!("a probe ended after {} tokens, before its stop text or length", reply.ids.len()),
            ));
        }
        // Stopped at a trigger word: the row needs the next token to know whether the word ends there.
        lookahead =
            !changed && reply.stop.as_deref().is_some_and(|w| c.triggers.words().iter().any(|t| t == w));
    }
    let mut out = state.out;
    out.find_steps(&batch.tokenizer, &c.triggers)?;
    Ok(out)
}
