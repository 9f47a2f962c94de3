//! Checkpoints: a Hugging Face model directory (weights, config, tokenizer) plus the optimizer and
//! trainer state needed to continue exactly. A checkpoint is built in a temporary directory and
//! renamed into place, so a crash never leaves a half-written one.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use serde::{Deserialize, Serialize};

use super::optim::Optimizer;
use crate::error::{Error, Result};
use crate::model::{self, CausalLm, write_atomic};

/// Where a phase stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainerState {
    /// `sft` or a method's name.
    pub phase: String,
    /// Optimizer steps done.
    pub step: usize,
}

/// Checkpoints kept per phase (older ones are deleted).
const KEEP: usize = 2;

/// Writes `{dir}/checkpoint-{step}`: the HF model directory with `files` (tokenizer and generation
/// config), the model record with its parameter ids, the optimizer state and `trainer_state.json`.
pub async fn save(
    dir: &Path,
    model: &CausalLm,
    optim: &Optimizer,
    state: &TrainerState,
    files: &[(String, Vec<u8>)],
) -> Result<PathBuf> {
    let target = dir.join(format!("checkpoint-{}", state.step));
    let tmp = dir.join(format!(".checkpoint-{}.tmp", state.step));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    save_model_dir(&tmp, model, files).await?;
    let record =
        model.clone().into_record().into_bytes().map_err(|e| Error::checkpoint(&tmp, e.to_string()))?;
    write_atomic(&tmp.join("model.bpk"), &record)?;
    write_atomic(&tmp.join("optimizer.bpk"), &optim.to_bytes()?)?;
    write_atomic(
        &tmp.join("trainer_state.json"),
        &serde_json::to_vec_pretty(state).expect("state serialises"),
    )?;
    if target.exists() {
        std::fs::remove_dir_all(&target).map_err(|e| Error::io(&target, e))?;
    }
    std::fs::rename(&tmp, &target).map_err(|e| Error::io(&target, e))?;
    let all = list(dir)?;
    for (_, old) in all.iter().take(all.len().saturating_sub(KEEP)) {
        std::fs::remove_dir_all(old).map_err(|e| Error::io(old, e))?;
    }
    Ok(target)
}

/// Writes a Hugging Face model directory: weights and config, then `files`.
pub async fn save_model_dir(dir: &Path, model: &CausalLm, files: &[(String, Vec<u8>)]) -> Result<()> {
    model::save(model, dir).await?;
    for (name, bytes) in files {
        write_atomic(&dir.join(name), bytes)?;
    }
    Ok(())
}

/// The complete checkpoints in `dir`, oldest first.
fn list(dir: &Path) -> Result<Vec<(usize, PathBuf)>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut out: Vec<(usize, PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let step = e.file_name().to_str()?.strip_prefix("checkpoint-")?.parse().ok()?;
            Some((step, e.path()))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The newest complete checkpoint in `dir`, if any.
pub fn latest(dir: &Path) -> Result<Option<PathBuf>> {
    Ok(list(dir)?.pop().map(|(_, p)| p))
}

/// A loaded checkpoint.
pub struct Restored {
    /// The model with the parameter ids it was saved with (the optimizer state refers to them).
    pub model: CausalLm,
    /// Optimizer state bytes for [`Optimizer::load_bytes`].
    pub optimizer: Vec<u8>,
    /// The trainer state.
    pub state: TrainerState,
}

/// Loads checkpoint `path` into `model` (a freshly built model of the same config).
pub fn load(path: &Path, model: CausalLm) -> Result<Restored> {
    let read = |name: &str| crate::error::read_file(&path.join(name));
    let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(read("model.bpk")?))
        .map_err(|e| Error::checkpoint(path.join("model.bpk"), e.to_string()))?;
    let model = model
        .try_load_record(record)
        .map_err(|e| Error::checkpoint(path.join("model.bpk"), e.to_string()))?;
    let state = crate::error::read_json(&path.join("trainer_state.json"))?;
    Ok(Restored { model, optimizer: read("optimizer.bpk")?, state })
}
