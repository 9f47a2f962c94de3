//! Checkpoints: a Hugging Face model directory (weights in the model's dtype, config, tokenizer)
//! plus the optimizer and trainer state needed to continue exactly. Each is written whole through
//! a [`Store`], so a crash never leaves a half-written one to resume from.

use burn::module::Module;
use burn::store::ModuleRecord;
use serde::{Deserialize, Serialize};

use super::guard::NanGuard;
use super::optim::Optimizer;
use super::store::Store;
use crate::error::{Error, Result};
use crate::model::{CausalLm, ModelConfig, adapter_files, hf_files};

/// Where a phase stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// `sft` or a method's name.
    pub phase: String,
    /// Optimizer steps done.
    pub step: usize,
    /// Updates skipped for NaN or infinite values.
    #[serde(default)]
    pub nan_guard: NanGuard,
    /// The early-exit rates of the last RL steps, which the phase's summary averages.
    #[serde(default)]
    pub recent_exit_rates: Vec<f64>,
}

/// Checkpoints kept per phase (older ones are deleted).
const KEEP: usize = 2;

/// The file holding an RL trainer's generation of rollouts when a checkpoint falls inside one.
const GENERATION_FILE: &str = "generation.json";

/// The files of a Hugging Face model directory (see [`hf_files`]; adapters are merged in), then
/// `extra` (tokenizer and generation config); a model with adapters also gets them in PEFT's
/// format under `adapter/`, for the base at `base_model`.
pub async fn model_files(
    model: &CausalLm,
    extra: &[(String, Vec<u8>)],
    base_model: &str,
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = hf_files(model).await?;
    files.extend(extra.iter().cloned());
    if model.has_adapters() {
        let adapter = adapter_files(model, base_model).await?;
        files.extend(adapter.into_iter().map(|(name, bytes)| (format!("adapter/{name}"), bytes)));
    }
    Ok(files)
}

/// Writes `{phase}/checkpoint-{step}`: the model directory with `files`, the model record with
/// its parameter ids, the optimizer state, `trainer_state.json` and, when given, the pending
/// generation of an RL trainer. Keeps the newest two. Returns the checkpoint's path in `store`.
pub async fn save(
    store: &dyn Store,
    model: &CausalLm,
    optim: &Optimizer,
    state: &TrainerState,
    files: &[(String, Vec<u8>)],
    base_model: &str,
    generation: Option<Vec<u8>>,
) -> Result<String> {
    let dir = format!("{}/checkpoint-{}", state.phase, state.step);
    let mut all = model_files(model, files, base_model).await?;
    let record =
        model.clone().into_record().into_bytes().map_err(|e| Error::checkpoint(&dir, e.to_string()))?;
    all.push(("model.bpk".into(), record.to_vec()));
    all.push(("optimizer.bpk".into(), optim.to_bytes()?));
    all.push(("trainer_state.json".into(), serde_json::to_vec_pretty(state).expect("state serialises")));
    if let Some(g) = generation {
        all.push((GENERATION_FILE.into(), g));
    }
    store.write_dir(&dir, &all)?;
    let checkpoints = list(store, &state.phase)?;
    for (_, old) in checkpoints.iter().take(checkpoints.len().saturating_sub(KEEP)) {
        store.remove_dir(old)?;
    }
    Ok(dir)
}

/// The checkpoints of `phase`, oldest first, with their steps.
fn list(store: &dyn Store, phase: &str) -> Result<Vec<(usize, String)>> {
    let mut out: Vec<(usize, String)> = store
        .dirs(phase)?
        .into_iter()
        .filter_map(|name| Some((name.strip_prefix("checkpoint-")?.parse().ok()?, format!("{phase}/{name}"))))
        .collect();
    out.sort();
    Ok(out)
}

/// Deletes the checkpoints of `phase` past step `step`.
pub fn discard_after(store: &dyn Store, phase: &str, step: usize) -> Result<()> {
    for (_, dir) in list(store, phase)?.into_iter().filter(|(s, _)| *s > step) {
        store.remove_dir(&dir)?;
    }
    Ok(())
}

/// The newest checkpoint of `phase`, if any.
pub fn latest(store: &dyn Store, phase: &str) -> Result<Option<String>> {
    Ok(list(store, phase)?.pop().map(|(_, dir)| dir))
}

/// A loaded checkpoint.
pub struct Restored {
    /// The model with the parameter ids it was saved with (the optimizer state refers to them).
    pub model: CausalLm,
    /// Optimizer state bytes for [`Optimizer::load_bytes`].
    pub optimizer: Vec<u8>,
    /// Where they were read from, for messages.
    pub optimizer_file: String,
    /// The trainer state.
    pub state: TrainerState,
    /// The pending generation of an RL trainer, when it stopped inside one.
    pub generation: Option<Vec<u8>>,
}

/// Loads checkpoint `dir` of `store` into `model` (a freshly built model of the same config).
pub fn load(store: &dyn Store, dir: &str, model: CausalLm) -> Result<Restored> {
    let read = |name: &str| required(store, dir, name);
    let at = |name: &str| store.describe(&format!("{dir}/{name}"));
    let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(read("model.bpk")?))
        .map_err(|e| Error::checkpoint(at("model.bpk"), e.to_string()))?;
    let model =
        model.try_load_record(record).map_err(|e| Error::checkpoint(at("model.bpk"), e.to_string()))?;
    let state = serde_json::from_slice(&read("trainer_state.json")?)
        .map_err(|source| Error::Json { path: at("trainer_state.json").into(), source })?;
    let generation = store.read(&format!("{dir}/{GENERATION_FILE}"))?;
    let (optimizer, optimizer_file) = (read("optimizer.bpk")?, at("optimizer.bpk"));
    Ok(Restored { model, optimizer, optimizer_file, state, generation })
}

/// Loads the model directory `dir` of `store` (a phase's `final/`) onto `device`.
pub fn load_model(store: &dyn Store, dir: &str, device: &burn::tensor::Device) -> Result<CausalLm> {
    let read = |name: &str| required(store, dir, name);
    let at = store.describe(&format!("{dir}/config.json"));
    let raw: serde_json::Value = serde_json::from_slice(&read("config.json")?)
        .map_err(|source| Error::Json { path: at.clone().into(), source })?;
    let config =
        ModelConfig::from_hf_json(&raw).map_err(|message| Error::Config { path: at.into(), message })?;
    crate::model::from_safetensors(&config, read("model.safetensors")?, device)
}

/// File `name` of directory `dir`, which must exist.
fn required(store: &dyn Store, dir: &str, name: &str) -> Result<Vec<u8>> {
    let path = format!("{dir}/{name}");
    store.read(&path)?.ok_or_else(|| Error::checkpoint(store.describe(&path), "missing"))
}
