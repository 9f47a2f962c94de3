//! Reading tensors out of (possibly sharded) safetensors checkpoints, converted to f32.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result, read_file, read_json};

/// The tensors of a checkpoint directory: `model.safetensors`, or the shards named by
/// `model.safetensors.index.json`.
pub struct WeightFiles {
    /// Tensor name -> index into `files`.
    location: HashMap<String, usize>,
    files: Vec<(PathBuf, Vec<u8>)>,
    /// Names not taken yet, to warn about leftovers.
    untaken: BTreeSet<String>,
}

impl WeightFiles {
    /// Opens the checkpoint in `dir`, reading each shard once.
    pub fn open(dir: &Path) -> Result<Self> {
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        let paths: Vec<PathBuf> = if single.exists() {
            vec![single]
        } else if index.exists() {
            let v: serde_json::Value = read_json(&index)?;
            let map = v
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| Error::checkpoint(&index, "has no `weight_map` object"))?;
            let mut shards: Vec<PathBuf> = map
                .values()
                .map(|f| {
                    f.as_str()
                        .map(|f| dir.join(f))
                        .ok_or_else(|| Error::checkpoint(&index, "`weight_map` values must be file names"))
                })
                .collect::<Result<_>>()?;
            shards.sort();
            shards.dedup();
            shards
        } else {
            return Err(Error::checkpoint(
                dir,
                "no model.safetensors or model.safetensors.index.json in this directory",
            ));
        };
        let files =
            paths.into_iter().map(|path| Ok((read_file(&path)?, path))).collect::<Result<Vec<_>>>()?;
        Self::from_bytes(files)
    }

    /// Indexes safetensors files already in memory, each with the name its errors report (browsers
    /// have no filesystem: they import a checkpoint's bytes).
    pub fn from_bytes(files: Vec<(Vec<u8>, PathBuf)>) -> Result<Self> {
        let mut location = HashMap::new();
        let mut indexed = Vec::with_capacity(files.len());
        for (bytes, path) in files {
            let st = SafeTensors::deserialize(&bytes)
                .map_err(|e| Error::checkpoint(&path, format!("unreadable safetensors header: {e}")))?;
            for name in st.names() {
                location.insert(name.to_string(), indexed.len());
            }
            indexed.push((path, bytes));
        }
        let untaken = location.keys().cloned().collect();
        Ok(WeightFiles { location, files: indexed, untaken })
    }

    /// Whether the checkpoint has a tensor called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.location.contains_key(name)
    }

    /// The f32 values of tensor `name`, checked against `shape`.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let Some(&file) = self.location.get(name) else {
            let path = self.files.first().map(|f| f.0.clone()).unwrap_or_default();
            return Err(Error::checkpoint(path, format!("missing tensor `{name}`")));
        };
        self.untaken.remove(name);
        let (path, bytes) = &self.files[file];
        let st = SafeTensors::deserialize(bytes).map_err(|e| Error::checkpoint(path, e.to_string()))?;
        let view = st.tensor(name).map_err(|e| Error::checkpoint(path, format!("tensor `{name}`: {e}")))?;
        if view.shape() != shape {
            return Err(Error::checkpoint(
                path,
                format!(
                    "tensor `{name}` has shape {:?}, expected {:?} from config.json",
                    view.shape(),
                    shape
                ),
            ));
        }
        let data = view.data();
        let values = match view.dtype() {
            Dtype::F32 => {
                data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
            }
            Dtype::BF16 => {
                data.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
            }
            Dtype::F16 => {
                data.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
            }
            Dtype::F64 => data
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("chunks of 8")) as f32)
                .collect(),
            other => {
                return Err(Error::checkpoint(
                    path,
                    format!("tensor `{name}` has dtype {other:?}; only F32, BF16, F16 and F64 are supported"),
                ));
            }
        };
        Ok(values)
    }

    /// Names in the checkpoint that were never taken (ignoring rotary caches some exporters write).
    pub fn leftovers(&self) -> Vec<&str> {
        self.untaken.iter().map(String::as_str).filter(|n| !n.ends_with("rotary_emb.inv_freq")).collect()
    }
}

/// Writes `tensors` (name, shape, f32 values) as one safetensors file of `dtype` (values rounded to
/// the nearest); the bytes are returned so the browser can export them too.
pub fn to_safetensors(
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    dtype: crate::model::Dtype,
) -> Result<Vec<u8>> {
    use crate::model::Dtype as D;
    let encode = |v: &[f32]| -> Vec<u8> {
        match dtype {
            D::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            D::BF16 => v.iter().flat_map(|&x| half::bf16::from_f32(x).to_le_bytes()).collect(),
            D::F16 => v.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect(),
        }
    };
    let st_dtype = match dtype {
        D::F32 => Dtype::F32,
        D::BF16 => Dtype::BF16,
        D::F16 => Dtype::F16,
    };
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|(_, _, v)| encode(v)).collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            safetensors::tensor::TensorView::new(st_dtype, shape.clone(), b)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::checkpoint(name, e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::checkpoint("model.safetensors", e.to_string()))
}
