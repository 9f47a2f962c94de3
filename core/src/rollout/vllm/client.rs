//! HTTP to vLLM's OpenAI-compatible and development endpoints, with timeouts and bounded retries
//! of what may pass: a server down or slow, an error status of its own, a garbled reply.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::config::VllmConfig;
use crate::error::{Error, Result};

/// First pause between retries; each further one doubles.
const BACKOFF: Duration = Duration::from_millis(500);

/// One server as it described itself.
#[derive(Debug, Clone)]
pub(super) struct Server {
    /// Its base URL.
    pub url: String,
    /// The served model's name (what requests must name).
    pub model: String,
    /// The served model's path (`root` in `/v1/models`).
    pub root: String,
    /// Context positions it serves.
    pub max_model_len: usize,
}

/// The tokens of one completion.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Completion {
    /// Generated ids (a stop string's token and an EOS id included).
    pub ids: Vec<u32>,
    /// Each one's log-prob under the server's model.
    pub log_probs: Vec<f32>,
    /// The stop string that ended it, if one did.
    pub stop: Option<String>,
}

#[derive(Deserialize)]
struct Reply {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    token_ids: Option<Vec<u32>>,
    logprobs: Option<ChoiceLogprobs>,
    stop_reason: Option<Value>,
}

#[derive(Deserialize)]
struct ChoiceLogprobs {
    token_logprobs: Vec<Option<f64>>,
}

/// A client of every server, sharing one connection pool.
#[derive(Clone)]
pub(super) struct Client {
    http: reqwest::Client,
    retries: usize,
    reload_timeout: Duration,
}

fn error(url: &str, message: impl Into<String>) -> Error {
    Error::invalid(format!("vLLM server {url}"), message)
}

/// At most 300 characters of a reply, for messages.
fn clip(text: &str) -> &str {
    let end = text.char_indices().nth(300).map_or(text.len(), |(i, _)| i);
    &text[..end]
}

/// The completion in a `/v1/completions` reply, or what is wrong with it: at least one token, every
/// id below `id_limit`, one finite log-prob (at most 0, give or take rounding) per token.
fn completion(text: &str, id_limit: usize) -> std::result::Result<Completion, String> {
    let reply: Reply = serde_json::from_str(text).map_err(|e| format!("not a completion ({e})"))?;
    let choice = reply.choices.into_iter().next().ok_or("no choice in the reply")?;
    let ids = choice.token_ids.ok_or("no token_ids (a vLLM without return_token_ids?)")?;
    let log_probs = choice.logprobs.map(|l| l.token_logprobs).ok_or("no log-probs in the reply")?;
    if ids.is_empty() {
        return Err("a completion of no tokens".into());
    }
    if let Some(bad) = ids.iter().find(|&&id| id as usize >= id_limit) {
        return Err(format!("token id {bad}, past the tokenizer's {id_limit} ids"));
    }
    if log_probs.len() != ids.len() {
        return Err(format!("{} log-probs for {} tokens", log_probs.len(), ids.len()));
    }
    let log_probs = log_probs
        .into_iter()
        .map(|p| p.filter(|p| p.is_finite() && *p <= 1e-3).map(|p| p as f32))
        .collect::<Option<Vec<f32>>>()
        .ok_or("a missing, non-finite or positive log-prob")?;
    let stop = choice.stop_reason.and_then(|s| s.as_str().map(str::to_string));
    Ok(Completion { ids, log_probs, stop })
}

impl Client {
    /// A client with the configured timeouts and retries.
    pub fn new(config: &VllmConfig) -> Result<Client> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(config.request_timeout_s))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::invalid("vllm", format!("cannot start an HTTP client: {e}")))?;
        let reload_timeout = Duration::from_secs_f64(config.reload_timeout_s);
        Ok(Client { http, retries: config.max_retries, reload_timeout })
    }

    /// Sends a request (GET without a body, else POST) and reads its reply with `read`,
    /// retrying with backoff what may pass: connection failures, timeouts, HTTP 5xx and 429, and
    /// replies `read` rejects (garbage: invalid JSON, missing fields, impossible values). Any other
    /// HTTP error fails at once; after `max_retries` retries the last problem is the error.
    async fn request<T>(
        &self,
        url: &str,
        path: &str,
        body: Option<&Value>,
        timeout: Option<Duration>,
        read: impl Fn(&str) -> std::result::Result<T, String>,
    ) -> Result<T> {
        let what = format!("{} {path}", if body.is_some() { "POST" } else { "GET" });
        let mut last = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                tokio::time::sleep(BACKOFF * 2u32.saturating_pow(attempt as u32 - 1)).await;
            }
            let full = format!("{url}{path}");
            let mut request = match body {
                Some(body) => self.http.post(&full).json(body),
                None => self.http.get(&full),
            };
            if let Some(t) = timeout {
                request = request.timeout(t);
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    last = if e.is_timeout() { "timed out".into() } else { format!("{e}") };
                    continue;
                }
            };
            let status = response.status();
            let text = match response.text().await {
                Ok(t) => t,
                Err(e) => {
                    last = if e.is_timeout() { "timed out".into() } else { format!("reply cut off: {e}") };
                    continue;
                }
            };
            if status.is_success() {
                match read(&text) {
                    Ok(value) => return Ok(value),
                    Err(problem) => last = format!("{problem}: {}", clip(&text)),
                }
                continue;
            }
            last = format!("HTTP {status}: {}", clip(&text));
            if !(status.is_server_error() || status.as_u16() == 429) {
                return Err(error(url, format!("{what}: {last}")));
            }
        }
        Err(error(url, format!("{what} failed after {} tries; last: {last}", self.retries + 1)))
    }

    /// [`Client::request`] of a JSON reply.
    async fn json(
        &self,
        url: &str,
        path: &str,
        body: Option<&Value>,
        timeout: Option<Duration>,
    ) -> Result<Value> {
        self.request(url, path, body, timeout, |text| {
            serde_json::from_str(text).map_err(|e| format!("invalid JSON ({e})"))
        })
        .await
    }

    /// GET `path`, a JSON reply.
    pub async fn get(&self, url: &str, path: &str) -> Result<Value> {
        self.json(url, path, None, None).await
    }

    /// POST `body` to `path`, a JSON reply.
    pub async fn post(&self, url: &str, path: &str, body: &Value) -> Result<Value> {
        self.json(url, path, Some(body), None).await
    }

    /// What the server at `url` serves; fails with what is wrong when it is down, serves nothing,
    /// or cannot reload weights.
    pub async fn describe(&self, url: &str) -> Result<Server> {
        self.request(url, "/health", None, None, |_| Ok(())).await?;
        let models = self.get(url, "/v1/models").await?;
        let model = models["data"].get(0).ok_or_else(|| error(url, "GET /v1/models lists no model"))?;
        let name = model["id"].as_str().ok_or_else(|| error(url, "GET /v1/models: a model without an id"))?;
        let server = Server {
            url: url.into(),
            model: name.into(),
            root: model["root"].as_str().unwrap_or(name).into(),
            max_model_len: model["max_model_len"].as_u64().unwrap_or(u64::MAX) as usize,
        };
        // The development routes (pause, collective_rpc, ...) exist only with VLLM_SERVER_DEV_MODE=1.
        if let Err(e) = self.get(url, "/is_paused").await {
            return Err(error(
                url,
                format!(
                    "its weight-reload routes are off ({e}); start it with VLLM_SERVER_DEV_MODE=1 \
                     (see docs/vllm.md)"
                ),
            ));
        }
        Ok(server)
    }

    /// The server's ids for `text` (no special tokens added).
    pub async fn tokenize(&self, server: &Server, text: &str) -> Result<Vec<u32>> {
        let body = json!({ "model": server.model, "prompt": text, "add_special_tokens": false });
        let reply = self.post(&server.url, "/tokenize", &body).await?;
        serde_json::from_value(reply["tokens"].clone())
            .map_err(|e| error(&server.url, format!("POST /tokenize: no token list ({e})")))
    }

    /// One completion of `body` (a `/v1/completions` request for one prompt, `n` = 1), whose ids
    /// must be below `id_limit`; a reply that is not such a completion is retried (see
    /// [`Client::request`]).
    pub async fn complete(&self, server: &Server, body: &Value, id_limit: usize) -> Result<Completion> {
        self.request(&server.url, "/v1/completions", Some(body), None, |text| completion(text, id_limit))
            .await
    }

    /// Has the server load the weights in `dir` (a Hugging Face directory it can read): pause new
    /// requests, reload in place, drop the prefix cache (its keys and values are the old
    /// weights'), resume. Resumes even when the reload fails.
    pub async fn reload(&self, server: &Server, dir: &str) -> Result<()> {
        let url = &server.url;
        let t = Some(self.reload_timeout);
        self.json(url, "/pause?mode=wait", Some(&json!({})), t).await?;
        let rpc = json!({ "method": "reload_weights", "kwargs": { "weights_path": dir } });
        let reloaded = self.json(url, "/collective_rpc", Some(&rpc), t).await;
        let reset = match &reloaded {
            Ok(_) => self.json(url, "/reset_prefix_cache", Some(&json!({})), t).await.map(|_| ()),
            Err(_) => Ok(()),
        };
        self.json(url, "/resume", Some(&json!({})), t).await?;
        reloaded.map_err(|e| error(url, format!("could not load the weights in {dir}: {e}")))?;
        reset
    }
}
