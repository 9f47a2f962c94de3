//! Hugging Face checkpoint directories: load a [`CausalLm`] from one, write one back.

use std::path::Path;

use burn::module::Param;
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::tensor::{DType, Device, Tensor, TensorData};

use super::attention::Attention;
use super::config::ModelConfig;
use super::lora::Projection;
use super::mlp::Mlp;
use super::precision::{Dtype, storage_dtype, stored};
use super::transformer::{CausalLm, DecoderLayer};
use super::weights::{WeightFiles, to_safetensors};
use crate::error::{Error, Result};

/// Loads `config.json` and the safetensors weights of `dir` onto `device`, its matrices kept in the
/// checkpoint's dtype where the device computes with it (see [`storage_dtype`]).
pub fn load(dir: &Path, device: &Device) -> Result<CausalLm> {
    load_as(dir, device, None)
}

/// [`load`] with the matrices kept in `dtype` (`None`: the checkpoint's), as far as the device
/// supports it. Norms and biases are always f32, and so is every computation: half precision
/// halves what the weights hold, not the arithmetic.
pub fn load_as(dir: &Path, device: &Device, dtype: Option<Dtype>) -> Result<CausalLm> {
    let config = ModelConfig::from_file(&dir.join("config.json"))?;
    let mut files = WeightFiles::open(dir)?;
    let storage = storage_dtype(dtype.unwrap_or(config.dtype), device);
    let model = build(&config, &mut files, device, storage)?;
    let leftovers = files.leftovers();
    if !leftovers.is_empty() {
        log::warn!("{}: ignoring {} unused tensors, e.g. `{}`", dir.display(), leftovers.len(), leftovers[0]);
    }
    Ok(model)
}

/// Builds a model of `config` from the bytes of one `model.safetensors` file (matrices in the
/// checkpoint's dtype where the device supports it, as [`load`]): how a browser, which has no
/// filesystem, imports a checkpoint.
pub fn from_safetensors(config: &ModelConfig, bytes: Vec<u8>, device: &Device) -> Result<CausalLm> {
    let mut files = WeightFiles::from_bytes(vec![(bytes, "model.safetensors".into())])?;
    let model = build(config, &mut files, device, storage_dtype(config.dtype, device))?;
    let leftovers = files.leftovers();
    if !leftovers.is_empty() {
        log::warn!("model.safetensors: ignoring {} unused tensors, e.g. `{}`", leftovers.len(), leftovers[0]);
    }
    Ok(model)
}

fn build(c: &ModelConfig, w: &mut WeightFiles, device: &Device, storage: DType) -> Result<CausalLm> {
    let (h, hd) = (c.hidden_size, c.head_dim);
    let tensor1 = |w: &mut WeightFiles, name: &str, n: usize| -> Result<Tensor<1>> {
        Ok(Tensor::from_data(TensorData::new(w.take(name, &[n])?, [n]), device))
    };
    let matrix = |w: &mut WeightFiles, name: &str, shape: [usize; 2]| -> Result<Tensor<2>> {
        Ok(stored(name, w.take_data(name, &shape)?, storage, device))
    };
    // HF stores [out, in]; burn's Linear multiplies by [in, out].
    let linear = |w: &mut WeightFiles, name: &str, d_in: usize, d_out: usize, bias: bool| -> Result<Linear> {
        let weight = matrix(w, &format!("{name}.weight"), [d_out, d_in])?.transpose();
        let bias =
            if bias { Some(Param::from_tensor(tensor1(w, &format!("{name}.bias"), d_out)?)) } else { None };
        Ok(Linear { weight: Param::from_tensor(weight), bias })
    };
    let norm = |w: &mut WeightFiles, name: &str, n: usize| -> Result<RmsNorm> {
        Ok(RmsNorm {
            gamma: Param::from_tensor(tensor1(w, &format!("{name}.weight"), n)?),
            epsilon: c.rms_norm_eps,
        })
    };
    let embed_tokens =
        Embedding { weight: Param::from_tensor(matrix(w, "model.embed_tokens.weight", [c.vocab_size, h])?) };
    let mut layers = Vec::with_capacity(c.num_hidden_layers);
    for i in 0..c.num_hidden_layers {
        let p = format!("model.layers.{i}");
        let a = format!("{p}.self_attn");
        let (q_out, kv_out) = (c.num_attention_heads * hd, c.num_key_value_heads * hd);
        let self_attn = Attention {
            q_proj: linear(w, &format!("{a}.q_proj"), h, q_out, c.qkv_bias)?.into(),
            k_proj: linear(w, &format!("{a}.k_proj"), h, kv_out, c.qkv_bias)?.into(),
            v_proj: linear(w, &format!("{a}.v_proj"), h, kv_out, c.qkv_bias)?.into(),
            o_proj: linear(w, &format!("{a}.o_proj"), q_out, h, c.o_bias)?.into(),
            q_norm: if c.qk_norm { Some(norm(w, &format!("{a}.q_norm"), hd)?) } else { None },
            k_norm: if c.qk_norm { Some(norm(w, &format!("{a}.k_norm"), hd)?) } else { None },
            num_heads: c.num_attention_heads,
            num_kv_heads: c.num_key_value_heads,
            head_dim: hd,
        };
        let m = format!("{p}.mlp");
        let mlp = Mlp {
            gate_proj: linear(w, &format!("{m}.gate_proj"), h, c.intermediate_size, c.mlp_bias)?.into(),
            up_proj: linear(w, &format!("{m}.up_proj"), h, c.intermediate_size, c.mlp_bias)?.into(),
            down_proj: linear(w, &format!("{m}.down_proj"), c.intermediate_size, h, c.mlp_bias)?.into(),
        };
        layers.push(DecoderLayer {
            input_layernorm: norm(w, &format!("{p}.input_layernorm"), h)?,
            self_attn,
            post_attention_layernorm: norm(w, &format!("{p}.post_attention_layernorm"), h)?,
            mlp,
        });
    }
    let final_norm = norm(w, "model.norm", h)?;
    // Some tied checkpoints still store lm_head.weight; the embedding is the one that is used.
    let lm_head =
        if c.tie_word_embeddings { None } else { Some(linear(w, "lm_head", h, c.vocab_size, false)?) };
    if c.tie_word_embeddings && w.contains("lm_head.weight") {
        w.take("lm_head.weight", &[c.vocab_size, h])?;
    }
    Ok(CausalLm::from_parts(c.clone(), embed_tokens, layers, final_norm, lm_head))
}

/// A parameter on its way out: matrices are transposed back to HF's [out, in]; vectors keep 1-D.
enum Out {
    Matrix(Tensor<2>),
    Vector(Tensor<1>),
}

/// The model's weights under their Hugging Face names, as a `model.safetensors` file in the
/// model's dtype (`config.dtype`: a bf16 checkpoint is saved as bf16, so it reloads with the same
/// logits). Reads back asynchronously, so it works in browsers too.
pub async fn to_hf_safetensors(model: &CausalLm) -> Result<Vec<u8>> {
    weights_file(model, false).await
}

/// The weights file, with a tied embedding written a second time as `lm_head.weight` when `untie`.
async fn weights_file(model: &CausalLm, untie: bool) -> Result<Vec<u8>> {
    let lin = |l: &Linear| Out::Matrix(l.weight.val().transpose());
    // Adapters are folded in: the file is a plain model that any loader (or server) reads.
    let proj = |p: &Projection| Out::Matrix(p.merged_weight().transpose());
    let vec = |p: &Param<Tensor<1>>| Out::Vector(p.val());
    let mut params: Vec<(String, Out)> =
        vec![("model.embed_tokens.weight".into(), Out::Matrix(model.embed_tokens.weight.val()))];
    for (i, layer) in model.layers.iter().enumerate() {
        let p = format!("model.layers.{i}");
        let a = &layer.self_attn;
        for (n, l) in layer.projections() {
            params.push((format!("{p}.{n}.weight"), proj(l)));
            if let Some(b) = &l.base.bias {
                params.push((format!("{p}.{n}.bias"), vec(b)));
            }
        }
        for (n, norm) in [("q_norm", &a.q_norm), ("k_norm", &a.k_norm)] {
            if let Some(norm) = norm {
                params.push((format!("{p}.self_attn.{n}.weight"), vec(&norm.gamma)));
            }
        }
        params.push((format!("{p}.input_layernorm.weight"), vec(&layer.input_layernorm.gamma)));
        params.push((
            format!("{p}.post_attention_layernorm.weight"),
            vec(&layer.post_attention_layernorm.gamma),
        ));
    }
    params.push(("model.norm.weight".into(), vec(&model.norm.gamma)));
    match &model.lm_head {
        Some(head) => params.push(("lm_head.weight".into(), lin(head))),
        // HF's lm_head is [vocab, hidden], the embedding's own layout.
        None if untie => params.push(("lm_head.weight".into(), Out::Matrix(model.embed_tokens.weight.val()))),
        None => {}
    }
    let dtype = model.config.dtype;
    let mut out = Vec::with_capacity(params.len());
    for (name, t) in params {
        let data = match t {
            Out::Matrix(t) => t.into_data_async().await,
            Out::Vector(t) => t.into_data_async().await,
        }
        .map_err(|e| Error::Readback(format!("{name}: {e:?}")))?;
        // Rounded as it arrives: the host never holds the whole model in f32.
        out.push((name, data.convert_dtype(dtype.burn())));
    }
    to_safetensors(out, dtype)
}

/// The files of a Hugging Face model directory: `model.safetensors` (in the model's dtype) and
/// `config.json`.
pub async fn hf_files(model: &CausalLm) -> Result<Vec<(String, Vec<u8>)>> {
    let config = serde_json::to_vec_pretty(&model.config.to_hf_json()).expect("config serializes");
    Ok(vec![("model.safetensors".into(), to_hf_safetensors(model).await?), ("config.json".into(), config)])
}

/// [`hf_files`] with the output projection untied (`tie_word_embeddings: false` and its own copy of
/// the embedding): what a server that keeps a separate copy of every projection (vLLM's CPU
/// backend) reloads correctly.
pub async fn hf_files_untied(model: &CausalLm) -> Result<Vec<(String, Vec<u8>)>> {
    let mut config = model.config.to_hf_json();
    config["tie_word_embeddings"] = serde_json::Value::Bool(false);
    let config = serde_json::to_vec_pretty(&config).expect("config serializes");
    Ok(vec![("model.safetensors".into(), weights_file(model, true).await?), ("config.json".into(), config)])
}

/// Writes `config.json` and `model.safetensors` into `dir` (created if needed), each atomically
/// (temp file + rename), so transformers can open the result.
pub async fn save(model: &CausalLm, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for (name, bytes) in hf_files(model).await? {
        write_atomic(&dir.join(name), &bytes)?;
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a crash never leaves a half file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp =
        path.with_extension(format!("{}.tmp", path.extension().and_then(|e| e.to_str()).unwrap_or_default()));
    if let Err(e) = std::fs::write(&tmp, bytes) {
        // A full disk leaves part of the file: give the space back; `path` is as it was.
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
