//! [`VllmEngine`]: running vLLM servers as a [`RolloutSource`]. Every response of a step is in
//! flight at once (bounded by `max_concurrent_requests`), the responses to one prompt on one
//! server so its prefix cache serves the whole group; after each optimizer step the policy is
//! written as a Hugging Face directory that every server reloads in place.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::module::Module;
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;

use super::client::{Client, Completion, Server};
use super::config::VllmConfig;
use super::remote_row::{Batch, decode_row};
use crate::decode::{GenerateConfig, SamplingConfig, generate, read_rows};
use crate::error::{Error, Result};
use crate::model::{CausalLm, hf_files_untied, write_atomic};
use crate::rollout::config::RolloutConfig;
use crate::rollout::row::Rollout;
use crate::rollout::source::{LocalFuture, RolloutRequest, RolloutSource};
use crate::text::Tokenizer;
use crate::train::{Sequence, TokenBatch, token_log_probs};

/// Greedy tokens compared with the trainer after the first weight load.
const AGREEMENT_TOKENS: usize = 12;

/// Rollouts sampled by vLLM servers (see the module docs).
pub struct VllmEngine {
    runtime: Runtime,
    client: Client,
    servers: Vec<Server>,
    tokenizer: Tokenizer,
    eos: Vec<u32>,
    config: VllmConfig,
    weights_dir: PathBuf,
    /// The weights version the servers hold, once loaded.
    version: Option<u64>,
    /// Whether the servers' log-probs are of the tempered (sampling) distribution, as with
    /// `--logprobs-mode processed_logprobs`, rather than the raw one; found by the first check.
    tempered: Option<bool>,
    /// Whether the log-probs feed a loss (false for an evaluation of the served weights).
    training: bool,
}

fn to_error(e: tokio::task::JoinError) -> Error {
    Error::invalid("vllm", format!("a request task failed: {e}"))
}

impl VllmEngine {
    /// Connects to every server of `config`: each must be up, serve a model whose tokenizer
    /// encodes like `tokenizer`, and have its weight-reload routes on. `weights_dir` (default
    /// `<output_dir>/vllm-weights`) is where weights are written for the servers to load.
    pub fn connect(
        config: &VllmConfig,
        weights_dir: &Path,
        tokenizer: Tokenizer,
        eos: Vec<u32>,
    ) -> Result<Self> {
        config.validate()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::invalid("vllm", format!("cannot start the request runtime: {e}")))?;
        let client = Client::new(config)?;
        let sample = format!("12 + 3 = 15\n{}\n\n\\boxed{{15}}", "</think>");
        let ours = tokenizer.encode(&sample)?;
        let servers = runtime.block_on(async {
            let mut servers = Vec::new();
            for url in config.base_urls() {
                let server = client.describe(&url).await?;
                let theirs = client.tokenize(&server, &sample).await?;
                if theirs != ours {
                    return Err(Error::invalid(
                        format!("vLLM server {url}"),
                        format!(
                            "its tokenizer ({}) encodes {sample:?} as {theirs:?}, ours ({}) as {ours:?}; \
                             serve a model with the same tokenizer (a WordLevel tokenizer needs \
                             \"tokenizer_class\": \"PreTrainedTokenizerFast\" in tokenizer_config.json)",
                            server.root,
                            tokenizer.path().display()
                        ),
                    ));
                }
                servers.push(server);
            }
            Ok(servers)
        })?;
        std::fs::create_dir_all(weights_dir).map_err(|e| Error::io(weights_dir, e))?;
        let weights_dir = weights_dir.canonicalize().map_err(|e| Error::io(weights_dir, e))?;
        Ok(VllmEngine {
            runtime,
            client,
            servers,
            tokenizer,
            eos,
            config: config.clone(),
            weights_dir,
            version: None,
            tempered: None,
            training: true,
        })
    }

    /// The servers' URLs and models, for messages.
    pub fn describe(&self) -> String {
        let servers: Vec<String> = self.servers.iter().map(|s| format!("{} ({})", s.url, s.model)).collect();
        servers.join(", ")
    }

    /// Samples with the weights the servers already serve (an evaluation of the model they were
    /// started with, whose log-probs feed no loss), once they agree with `model`'s.
    pub async fn use_served_weights(&mut self, model: &CausalLm) -> Result<()> {
        self.check_agreement(&model.valid()).await?;
        self.version = Some(0);
        self.training = false;
        Ok(())
    }

    /// Checks that every response fits the servers' context: prompt, response, inducer and probe.
    fn check_lengths(&self, request: &RolloutRequest, inducer: usize) -> Result<()> {
        let c = request.config;
        let probe = c.truncation.as_ref().map_or(0, |t| inducer + t.probe_max_tokens);
        let longest =
            request.prompts.iter().map(Vec::len).max().unwrap_or(0) + c.max_completion_length + probe;
        match self.servers.iter().find(|s| s.max_model_len < longest) {
            Some(s) => Err(Error::invalid(
                format!("vLLM server {}", s.url),
                format!(
                    "serves {} positions, but a rollout needs up to {longest} (longest prompt + \
                     max_completion_length + inducer and probe); raise --max-model-len",
                    s.max_model_len
                ),
            )),
            None => Ok(()),
        }
    }

    /// Greedy ids and log-probs of the servers and of `policy` for the same short prompt must
    /// agree: proof that the servers run the policy's weights.
    async fn check_agreement(&mut self, policy: &CausalLm) -> Result<()> {
        let prompt = self.tokenizer.encode("12 + 3 =")?;
        let config = GenerateConfig {
            max_new_tokens: AGREEMENT_TOKENS,
            sampling: SamplingConfig::greedy(),
            eos_token_ids: Vec::new(),
            stop_strings: Vec::new(),
        };
        let ours = generate(policy, std::slice::from_ref(&prompt), &config, None).await?.remove(0);
        let servers = self.servers.clone();
        for server in &servers {
            let body = serde_json::json!({
                "model": server.model, "prompt": prompt, "max_tokens": AGREEMENT_TOKENS,
                "temperature": 0.0, "logprobs": 0, "ignore_eos": true,
                "return_token_ids": true, "return_tokens_as_token_ids": true,
            });
            let theirs = self.complete(server, body).await?;
            let same = ours.ids.iter().zip(&theirs.ids).take_while(|(a, b)| a == b).count();
            let worst = ours.logprobs[..same]
                .iter()
                .zip(&theirs.log_probs)
                .map(|(a, b)| (a - b).abs() as f64)
                .fold(0.0, f64::max);
            if same < AGREEMENT_TOKENS.min(ours.ids.len()) || worst > self.config.agreement_tolerance {
                return Err(Error::invalid(
                    format!("vLLM server {}", server.url),
                    format!(
                        "after loading the policy's weights it disagrees with the trainer: greedy ids \
                         {:?} vs ours {:?}, log-probs differ by up to {worst:.2e} (tolerance \
                         vllm.agreement_tolerance = {}). It must serve the policy's architecture; a \
                         tied embedding on vLLM's CPU backend needs an untied copy (`stepgrpo export`)",
                        theirs.ids, ours.ids, self.config.agreement_tolerance
                    ),
                ));
            }
            let tempered = self.tempered_log_probs(policy, server, &prompt).await?;
            if self.tempered.is_some_and(|t| t != tempered) {
                return Err(Error::invalid(
                    format!("vLLM server {}", server.url),
                    "its --logprobs-mode differs from the other servers'",
                ));
            }
            self.tempered = Some(tempered);
        }
        Ok(())
    }

    /// One completion of `body` by `server`, on the request runtime.
    async fn complete(&self, server: &Server, body: serde_json::Value) -> Result<Completion> {
        let (client, server, limit) = (self.client.clone(), server.clone(), self.tokenizer.id_limit());
        self.runtime
            .spawn(async move { client.complete(&server, &body, limit).await })
            .await
            .map_err(to_error)?
    }

    /// Whether `server` reports log-probs of the tempered distribution: a sample at temperature
    /// 0.5 is scored by the trainer with and without the temperature, and one must match.
    async fn tempered_log_probs(&self, policy: &CausalLm, server: &Server, prompt: &[u32]) -> Result<bool> {
        let body = serde_json::json!({
            "model": server.model, "prompt": prompt, "max_tokens": AGREEMENT_TOKENS,
            "temperature": 0.5, "seed": 1, "logprobs": 0, "ignore_eos": true,
            "return_token_ids": true, "return_tokens_as_token_ids": true,
        });
        let theirs = self.complete(server, body).await?;
        let sequence = [Sequence { prompt, completion: &theirs.ids, trained: None }];
        let batch = TokenBatch::new(&sequence, 0, &policy.device());
        let mut worst = [0f64; 2];
        for (w, temperature) in worst.iter_mut().zip([1.0, 0.5]) {
            let read = read_rows(token_log_probs(policy, &batch, temperature).log_probs).await?;
            let ours = batch.take(&read).remove(0);
            *w = ours.iter().zip(&theirs.log_probs).map(|(a, b)| (a - b).abs() as f64).fold(0.0, f64::max);
        }
        let [raw, tempered] = worst;
        if raw.min(tempered) > self.config.agreement_tolerance {
            return Err(Error::invalid(
                format!("vLLM server {}", server.url),
                format!(
                    "its log-probs of a sample at temperature 0.5 are neither the trainer's raw ones \
                     (off by {raw:.2e}) nor its tempered ones (off by {tempered:.2e})"
                ),
            ));
        }
        Ok(tempered < raw)
    }
}

impl RolloutSource for VllmEngine {
    fn collect<'a>(&'a mut self, request: RolloutRequest<'a>) -> LocalFuture<'a, Result<Vec<Rollout>>> {
        Box::pin(async move {
            let version = self.version.ok_or_else(|| {
                Error::invalid("rollout engine vllm", "no weights loaded before the first collection")
            })?;
            let config: RolloutConfig = request.config.clone();
            config.validate()?;
            let t = config.sampling.temperature;
            if self.training && t != 0.0 && t != 1.0 && self.tempered == Some(false) {
                return Err(Error::invalid(
                    format!("vLLM servers {}", self.describe()),
                    format!(
                        "they report raw log-probs, but rollouts sample at temperature {t}: start \
                         them with --logprobs-mode processed_logprobs so the loss gets the sampling \
                         distribution's"
                    ),
                ));
            }
            let inducer = match &config.truncation {
                Some(t) => self.tokenizer.encode(&t.inducer)?,
                None => Vec::new(),
            };
            self.check_lengths(&request, inducer.len())?;
            let g = config.num_generations;
            let batch = Arc::new(Batch {
                config,
                tokenizer: self.tokenizer.clone(),
                eos: self.eos.clone(),
                inducer,
                client: self.client.clone(),
                servers: self.servers.clone(),
                permits: Semaphore::new(self.config.max_concurrent_requests),
            });
            let prompts = Arc::new(request.prompts.to_vec());
            let tasks: Vec<_> = (0..prompts.len() * g)
                .map(|row| {
                    let (batch, prompts) = (batch.clone(), prompts.clone());
                    self.runtime.spawn(async move {
                        let p = row / g;
                        let server = &batch.servers[p % batch.servers.len()];
                        decode_row(&batch, server, &prompts[p], p, row).await
                    })
                })
                .collect();
            let mut out = Vec::with_capacity(tasks.len());
            let mut failed = None;
            for task in tasks {
                match task.await.map_err(to_error).and_then(|r| r) {
                    Ok(mut r) => {
                        r.policy_version = version;
                        out.push(r);
                    }
                    Err(e) => {
                        failed.get_or_insert(e);
                    }
                }
            }
            match failed {
                Some(e) => Err(e),
                None => Ok(out),
            }
        })
    }

    fn load_weights<'a>(&'a mut self, policy: &'a CausalLm, version: u64) -> LocalFuture<'a, Result<()>> {
        Box::pin(async move {
            let policy = policy.valid();
            let dir = self.weights_dir.join(format!("v{version}"));
            let tmp = self.weights_dir.join(format!("v{version}.tmp"));
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
            for (name, bytes) in hf_files_untied(&policy).await? {
                write_atomic(&tmp.join(name), &bytes)?;
            }
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::rename(&tmp, &dir).map_err(|e| Error::io(&dir, e))?;
            let path = dir.to_string_lossy().into_owned();
            let reloads: Vec<_> = self
                .servers
                .iter()
                .map(|server| {
                    let (client, server, path) = (self.client.clone(), server.clone(), path.clone());
                    self.runtime.spawn(async move { client.reload(&server, &path).await })
                })
                .collect();
            for reload in reloads {
                reload.await.map_err(to_error)??;
            }
            let first = self.version.is_none();
            self.version = Some(version);
            // Older versions are of no further use to the servers.
            for entry in
                std::fs::read_dir(&self.weights_dir).map_err(|e| Error::io(&self.weights_dir, e))?.flatten()
            {
                if entry.path() != dir && entry.file_name().to_string_lossy().starts_with('v') {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
            if first {
                self.check_agreement(&policy).await?;
            }
            Ok(())
        })
    }

    fn name(&self) -> &str {
        "vllm"
    }

    fn is_remote(&self) -> bool {
        true
    }
}
