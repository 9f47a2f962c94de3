//! Where the RL trainer's rollouts come from: the seam between the trainer and a rollout engine.
//! The in-process burn engine ([`LocalEngine`]) is one; a remote inference server is another.

use std::future::Future;
use std::pin::Pin;

use burn::module::Module;

use super::config::RolloutConfig;
use super::engine::rollout_rows;
use super::row::Rollout;
use crate::error::{Error, Result};
use crate::logprobs::LOGITS_PER_CHUNK;
use crate::model::CausalLm;
use crate::text::Tokenizer;

/// A boxed future that need not be `Send`: a browser runs everything on one thread.
pub type LocalFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// What one collection asks for.
#[derive(Debug, Clone, Copy)]
pub struct RolloutRequest<'a> {
    /// Prompt ids; each gets `config.num_generations` responses.
    pub prompts: &'a [Vec<u32>],
    /// Sampling (its seed included), budget, triggers and the truncated rollout's probes (`None`:
    /// plain sampling).
    pub config: &'a RolloutConfig,
}

/// A rollout engine: generates the responses of a step and follows the policy's weights.
pub trait RolloutSource {
    /// G responses per prompt, in any order; each names its prompt (its group), and carries its
    /// token ids, their sampled log-probs, step starts, probes and exit type.
    fn collect<'a>(&'a mut self, request: RolloutRequest<'a>) -> LocalFuture<'a, Result<Vec<Rollout>>>;

    /// Takes the policy's weights after optimizer step `version` (0: the starting weights); every
    /// rollout collected afterwards is stamped with it.
    fn load_weights<'a>(&'a mut self, policy: &'a CausalLm, version: u64) -> LocalFuture<'a, Result<()>>;

    /// A short name for messages (`local`, ...).
    fn name(&self) -> &str;

    /// Whether another program samples (a server): its log-probs and weights may differ from the
    /// trainer's, which the loss corrects for (`vllm_importance_sampling_correction`).
    fn is_remote(&self) -> bool {
        false
    }
}

/// Rollouts decoded in this process, on the policy's own device, with the batched engine of
/// [`rollout`](super::rollout): the current weights are the policy's tensors themselves (no copy).
/// Prompts are decoded in slices whose logits stay under
/// [`LOGITS_PER_CHUNK`](crate::logprobs::LOGITS_PER_CHUNK) per step and whose cache stays under
/// `max_cache_gib` (at least one group).
pub struct LocalEngine {
    tokenizer: Tokenizer,
    eos: Vec<u32>,
    policy: Option<(CausalLm, u64)>,
}

impl LocalEngine {
    /// An engine that decodes with `tokenizer` and stops at `eos`; it has no weights until
    /// [`RolloutSource::load_weights`].
    pub fn new(tokenizer: Tokenizer, eos: Vec<u32>) -> Self {
        LocalEngine { tokenizer, eos, policy: None }
    }
}

const GIB: f64 = (1u64 << 30) as f64;

/// The most bytes one row's key/value cache takes for `positions` positions: keys and values of
/// every layer in f32, in a buffer that doubles when it fills, so up to twice the positions.
pub fn cache_bytes_per_row(model: &CausalLm, positions: usize) -> usize {
    let c = &model.config;
    2 * positions * c.num_hidden_layers * 2 * c.num_key_value_heads * c.head_dim * 4
}

/// How many prompts of `request` the in-process engine decodes together: their rows' logits stay
/// under [`LOGITS_PER_CHUNK`] per step and their cache under `max_cache_gib`; at least one.
pub fn prompts_per_slice(model: &CausalLm, tokenizer: &Tokenizer, request: &RolloutRequest) -> Result<usize> {
    let c = request.config;
    let g = c.num_generations.max(1);
    let mut prompts = LOGITS_PER_CHUNK / model.config.vocab_size.max(1) / g;
    if let Some(gib) = c.max_cache_gib {
        let probe = match &c.truncation {
            Some(t) => tokenizer.encode(&t.inducer)?.len() + t.probe_max_tokens,
            None => 0,
        };
        let longest = request.prompts.iter().map(Vec::len).max().unwrap_or(0);
        let bytes = cache_bytes_per_row(model, longest + c.max_completion_length + probe);
        prompts = prompts.min((gib * GIB / bytes as f64) as usize / g);
    }
    Ok(prompts.max(1))
}

impl RolloutSource for LocalEngine {
    fn collect<'a>(&'a mut self, request: RolloutRequest<'a>) -> LocalFuture<'a, Result<Vec<Rollout>>> {
        Box::pin(async move {
            let (model, version) = self.policy.as_ref().ok_or_else(|| {
                Error::invalid("rollout engine", "no weights loaded before the first collection")
            })?;
            let g = request.config.num_generations;
            let per_slice = prompts_per_slice(model, &self.tokenizer, &request)?;
            let mut out = Vec::with_capacity(request.prompts.len() * g);
            for (s, prompts) in request.prompts.chunks(per_slice).enumerate() {
                let first = s * per_slice;
                let slice =
                    rollout_rows(model, &self.tokenizer, prompts, &self.eos, request.config, first * g);
                for mut r in slice.await? {
                    r.prompt += first;
                    r.policy_version = *version;
                    out.push(r);
                }
            }
            Ok(out)
        })
    }

    fn load_weights<'a>(&'a mut self, policy: &'a CausalLm, version: u64) -> LocalFuture<'a, Result<()>> {
        // Decoding needs no gradients: the same parameters on the inner device.
        self.policy = Some((policy.valid(), version));
        Box::pin(async { Ok(()) })
    }

    fn name(&self) -> &str {
        "local"
    }
}
