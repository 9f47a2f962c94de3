//! Where the vLLM servers are and how patiently to talk to them.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use crate::error::{Error, Result};

/// Which engine samples the training rollouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RolloutEngineKind {
    /// The in-process burn engine, on the policy's own device.
    #[default]
    Local,
    /// Running vLLM servers (`[vllm]`), which load the policy's weights after every optimizer step.
    Vllm,
}

/// Running vLLM servers as the rollout engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VllmConfig {
    /// Base URLs of the servers (`http://host:port`; TRL: `vllm_server_base_url`, here one or
    /// several); the prompts of a step are spread over them. A single URL may be given as a string.
    #[serde(deserialize_with = "one_or_many")]
    pub vllm_server_base_url: Vec<String>,
    /// Where the policy's weights are written for the servers to load after each optimizer step;
    /// a server must see it at the same path. Default `<output_dir>/vllm-weights`.
    pub weights_dir: Option<PathBuf>,
    /// Seconds one request may take. Default 600.
    pub request_timeout_s: f64,
    /// Retries of a failed request (connection refused, timeout, HTTP 5xx or 429), with backoff
    /// from 0.5 s, doubling. Default 4.
    pub max_retries: usize,
    /// Seconds a weight reload (pause, reload, cache reset, resume) may take. Default 300.
    pub reload_timeout_s: f64,
    /// Requests in flight at once over all servers. Default 256.
    pub max_concurrent_requests: usize,
    /// After the first weight load, the largest |log-prob difference| allowed between the server
    /// and the trainer on a short greedy continuation; more stops the run (wrong model or
    /// tokenizer, weights not loaded). Default 0.05 (bf16 serving of an f32 policy fits).
    pub agreement_tolerance: f64,
}

impl Default for VllmConfig {
    fn default() -> Self {
        VllmConfig {
            vllm_server_base_url: Vec::new(),
            weights_dir: None,
            request_timeout_s: 600.0,
            max_retries: 4,
            reload_timeout_s: 300.0,
            max_concurrent_requests: 256,
            agreement_tolerance: 0.05,
        }
    }
}

impl VllmConfig {
    /// Checks every knob, naming the one at fault.
    pub fn validate(&self) -> Result<()> {
        let name = "vllm.vllm_server_base_url";
        if self.vllm_server_base_url.is_empty() {
            return Err(Error::invalid(
                name,
                "rollout_engine vllm needs at least one server URL (--vllm-server-base-url)",
            ));
        }
        if let Some(bad) = self.vllm_server_base_url.iter().find(|u| !u.starts_with("http://")) {
            return Err(Error::invalid(name, format!("`{bad}` must start with http://")));
        }
        for (name, v) in
            [("request_timeout_s", self.request_timeout_s), ("reload_timeout_s", self.reload_timeout_s)]
        {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(format!("vllm.{name}"), format!("{v} must be > 0")));
            }
        }
        if self.max_concurrent_requests == 0 {
            return Err(Error::invalid("vllm.max_concurrent_requests", "must be at least 1"));
        }
        if !(self.agreement_tolerance.is_finite() && self.agreement_tolerance > 0.0) {
            return Err(Error::invalid("vllm.agreement_tolerance", "must be > 0"));
        }
        Ok(())
    }

    /// The URLs without a trailing slash.
    pub fn base_urls(&self) -> Vec<String> {
        self.vllm_server_base_url.iter().map(|u| u.trim_end_matches('/').to_string()).collect()
    }
}

/// A list of strings, or one string as a list of one.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(url) => vec![url],
        OneOrMany::Many(urls) => urls,
    })
}
