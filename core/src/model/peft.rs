//! LoRA adapters as PEFT writes them: `adapter_config.json` and `adapter_model.safetensors` with
//! tensors `base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight` [r, in] and
//! `...lora_B.weight` [out, r]. `PeftModel.from_pretrained(base, dir)` and vLLM's LoRA support
//! (`--enable-lora`, `/v1/load_lora_adapter`) read the directory as it is.

use std::path::Path;

use burn::tensor::{Tensor, TensorData};
use serde_json::{Value, json};

use super::Dtype;
use super::lora::{Lora, LoraConfig, PROJECTIONS, short_name};
use super::transformer::CausalLm;
use super::weights::{WeightFiles, to_safetensors};
use crate::error::{Error, Result, read_file};

/// The adapter config file's name.
pub const ADAPTER_CONFIG: &str = "adapter_config.json";
/// The adapter weights file's name.
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";

/// PEFT's name of a tensor of layer `layer`'s projection `name` (`self_attn.q_proj`), `part` A or B.
fn tensor_name(layer: usize, name: &str, part: char) -> String {
    format!("base_model.model.model.layers.{layer}.{name}.lora_{part}.weight")
}

/// The adapters' settings, read off the model (every adapter shares them; see [`CausalLm::with_lora`]).
fn config_of(model: &CausalLm) -> Option<LoraConfig> {
    let (mut first, mut targets) = (None, Vec::new());
    for layer in &model.layers {
        for (name, p) in layer.projections() {
            if let Some(lora) = &p.lora {
                first.get_or_insert(lora);
                let short = short_name(name).to_string();
                if !targets.contains(&short) {
                    targets.push(short);
                }
            }
        }
    }
    let lora = first?;
    let r = lora.a.dims()[1];
    targets.sort_by_key(|t| PROJECTIONS.iter().position(|p| p == t));
    Some(LoraConfig {
        r,
        lora_alpha: f64::from(lora.scaling) * r as f64,
        lora_dropout: lora.dropout.prob,
        target_modules: targets,
    })
}

/// The model's adapters as PEFT's two files, for a base model PEFT will find at `base_model`
/// (its `base_model_name_or_path`). Reads back asynchronously, so it works in browsers too.
pub async fn adapter_files(model: &CausalLm, base_model: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let config = config_of(model).ok_or_else(|| Error::invalid("model", "has no LoRA adapters to save"))?;
    let mut tensors = Vec::new();
    for (i, layer) in model.layers.iter().enumerate() {
        for (name, p) in layer.projections() {
            let Some(lora) = &p.lora else { continue };
            // PEFT keeps nn.Linear layouts: A [r, in], B [out, r]; ours are their transposes.
            for (part, t) in [('A', lora.a.val()), ('B', lora.b.val())] {
                let tensor = tensor_name(i, name, part);
                let data = t
                    .transpose()
                    .into_data_async()
                    .await
                    .map_err(|e| Error::Readback(format!("{tensor}: {e:?}")))?;
                tensors.push((tensor, data));
            }
        }
    }
    let json = json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "r": config.r,
        "lora_alpha": config.lora_alpha,
        "lora_dropout": config.lora_dropout,
        "target_modules": config.target_modules,
        "bias": "none",
        "fan_in_fan_out": false,
        "use_rslora": false,
        "use_dora": false,
        "modules_to_save": null,
        "inference_mode": true,
    });
    Ok(vec![
        (ADAPTER_CONFIG.into(), serde_json::to_vec_pretty(&json).expect("config serialises")),
        (ADAPTER_WEIGHTS.into(), to_safetensors(tensors, Dtype::F32)?),
    ])
}

/// Reads `adapter_config.json` (the subset of PEFT's LoRA options this crate implements; any
/// other setting is an error naming it) into a [`LoraConfig`].
pub fn parse_adapter_config(raw: &Value) -> std::result::Result<LoraConfig, String> {
    let field = |k: &str| raw.get(k).filter(|v| !v.is_null());
    if let Some(t) = field("peft_type").and_then(Value::as_str).filter(|t| *t != "LORA") {
        return Err(format!("peft_type `{t}`: only LORA adapters are supported"));
    }
    for (k, plain) in [("fan_in_fan_out", false), ("use_rslora", false), ("use_dora", false)] {
        if field(k).and_then(Value::as_bool).is_some_and(|v| v != plain) {
            return Err(format!("`{k}: true` is not supported"));
        }
    }
    if let Some(b) = field("bias").and_then(Value::as_str).filter(|b| *b != "none") {
        return Err(format!("bias `{b}`: only `none` is supported"));
    }
    for k in ["rank_pattern", "alpha_pattern"] {
        if field(k).and_then(Value::as_object).is_some_and(|m| !m.is_empty()) {
            return Err(format!("`{k}` (per-module ranks) is not supported"));
        }
    }
    if field("modules_to_save").and_then(Value::as_array).is_some_and(|m| !m.is_empty()) {
        return Err("`modules_to_save` (fully trained modules) is not supported".into());
    }
    let r = field("r").and_then(Value::as_u64).ok_or("`r` must be a positive integer")? as usize;
    let lora_alpha = field("lora_alpha").and_then(Value::as_f64).unwrap_or(8.0);
    let lora_dropout = field("lora_dropout").and_then(Value::as_f64).unwrap_or(0.0);
    let target_modules = match field("target_modules") {
        Some(Value::String(s)) if s == "all-linear" => PROJECTIONS.iter().map(|s| s.to_string()).collect(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|m| m.as_str().map(str::to_string).ok_or(format!("target_modules: {m} is not a name")))
            .collect::<std::result::Result<Vec<_>, _>>()?,
        Some(other) => return Err(format!("target_modules {other}: give a list of projection names")),
        None => return Err("`target_modules` is missing".into()),
    };
    let config = LoraConfig { r, lora_alpha, lora_dropout, target_modules };
    config.validate("adapter_config").map_err(|e| e.to_string())?;
    Ok(config)
}

/// `model` with the PEFT adapter of directory `dir` attached (base frozen, as after
/// [`CausalLm::with_lora`]); every tensor is checked against the model's shapes.
pub fn load_adapter(model: CausalLm, dir: &Path) -> Result<CausalLm> {
    let config_path = dir.join(ADAPTER_CONFIG);
    let raw: Value = crate::error::read_json(&config_path)?;
    let config =
        parse_adapter_config(&raw).map_err(|message| Error::Config { path: config_path, message })?;
    let weights = dir.join(ADAPTER_WEIGHTS);
    let files = WeightFiles::from_bytes(vec![(read_file(&weights)?, weights)])?;
    attach_from(model, &config, files, &dir.join(ADAPTER_WEIGHTS))
}

/// [`load_adapter`] from the two files' bytes (a browser has no filesystem).
pub fn load_adapter_bytes(model: CausalLm, config: &[u8], weights: Vec<u8>) -> Result<CausalLm> {
    let raw: Value = serde_json::from_slice(config)
        .map_err(|source| Error::Json { path: ADAPTER_CONFIG.into(), source })?;
    let config = parse_adapter_config(&raw)
        .map_err(|message| Error::Config { path: ADAPTER_CONFIG.into(), message })?;
    let files = WeightFiles::from_bytes(vec![(weights, ADAPTER_WEIGHTS.into())])?;
    attach_from(model, &config, files, Path::new(ADAPTER_WEIGHTS))
}

fn attach_from(
    mut model: CausalLm,
    config: &LoraConfig,
    mut files: WeightFiles,
    at: &Path,
) -> Result<CausalLm> {
    let device = model.device();
    let r = config.r;
    for (i, layer) in model.layers.iter_mut().enumerate() {
        for (name, p) in layer.projections_mut() {
            if !config.targets(name) {
                continue;
            }
            let [d_in, d_out] = p.base.weight.dims();
            let a = files.take(&tensor_name(i, name, 'A'), &[r, d_in])?;
            let b = files.take(&tensor_name(i, name, 'B'), &[d_out, r])?;
            let a = Tensor::<2>::from_data(TensorData::new(a, [r, d_in]), &device).transpose();
            let b = Tensor::<2>::from_data(TensorData::new(b, [d_out, r]), &device).transpose();
            p.lora = Some(Lora::new(a, b, config));
        }
    }
    let leftovers = files.leftovers();
    if !leftovers.is_empty() {
        return Err(Error::Config {
            path: at.into(),
            message: format!(
                "{} tensors match no targeted projection of the model, e.g. `{}`",
                leftovers.len(),
                leftovers[0]
            ),
        });
    }
    Ok(model.freeze_base())
}
