//! Reading tensors out of (possibly sharded) safetensors checkpoints, one tensor at a time and in
//! the checkpoint's own dtype: a shard is never read whole, so loading a model needs about one
//! tensor of memory on top of the model itself.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use burn::tensor::{DType, TensorData};

use crate::error::{Error, Result, read_json};

/// The largest header a safetensors file may have (the reference implementation's limit).
const MAX_HEADER: u64 = 100_000_000;

/// Where a tensor's bytes are: an open file (native) or bytes already in memory (browsers).
enum Shard {
    File(File),
    Bytes(Vec<u8>),
}

/// One tensor of a shard, as its header describes it.
struct Entry {
    /// Index into `WeightFiles::shards`.
    shard: usize,
    /// The header's dtype name (`F32`, `BF16`, ...).
    dtype: String,
    shape: Vec<usize>,
    /// Byte range from the start of the file.
    start: u64,
    end: u64,
}

/// The tensors of a checkpoint directory: `model.safetensors`, or the shards named by
/// `model.safetensors.index.json`. Opening reads only the headers; [`WeightFiles::take_data`]
/// reads one tensor's bytes.
pub struct WeightFiles {
    entries: HashMap<String, Entry>,
    shards: Vec<(PathBuf, Shard)>,
    /// Names not taken yet, to warn about leftovers.
    untaken: BTreeSet<String>,
}

impl WeightFiles {
    /// Opens the checkpoint in `dir`, reading each shard's header.
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
                .map(|f| match f.as_str() {
                    // A shard must sit in the checkpoint's own directory.
                    Some(f) if !f.is_empty() && Path::new(f).file_name() == Some(f.as_ref()) => {
                        Ok(dir.join(f))
                    }
                    _ => Err(Error::checkpoint(&index, format!("`weight_map` value {f} is not a file name"))),
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
        let shards = paths
            .into_iter()
            .map(|path| {
                File::open(&path).map(|f| (path.clone(), Shard::File(f))).map_err(|e| Error::io(&path, e))
            })
            .collect::<Result<Vec<_>>>()?;
        Self::index(shards)
    }

    /// Indexes safetensors files already in memory, each with the name its errors report (browsers
    /// have no filesystem: they import a checkpoint's bytes).
    pub fn from_bytes(files: Vec<(Vec<u8>, PathBuf)>) -> Result<Self> {
        Self::index(files.into_iter().map(|(bytes, path)| (path, Shard::Bytes(bytes))).collect())
    }

    fn index(mut shards: Vec<(PathBuf, Shard)>) -> Result<Self> {
        let mut entries = HashMap::new();
        for (i, (path, shard)) in shards.iter_mut().enumerate() {
            for (name, entry) in read_header(shard, i).map_err(|m| Error::checkpoint(&*path, m))? {
                entries.insert(name, entry);
            }
        }
        let untaken = entries.keys().cloned().collect();
        Ok(WeightFiles { entries, shards, untaken })
    }

    /// Whether the checkpoint has a tensor called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// Tensor `name`, checked against `shape`, in the checkpoint's dtype (F32, BF16 or F16; F64
    /// becomes F32).
    pub fn take_data(&mut self, name: &str, shape: &[usize]) -> Result<TensorData> {
        let Some(entry) = self.entries.get(name) else {
            let path = self.shards.first().map(|f| f.0.clone()).unwrap_or_default();
            return Err(Error::checkpoint(path, format!("missing tensor `{name}`")));
        };
        let (path, shard) = &mut self.shards[entry.shard];
        if entry.shape != shape {
            return Err(Error::checkpoint(
                &*path,
                format!("tensor `{name}` has shape {:?}, expected {:?} from config.json", entry.shape, shape),
            ));
        }
        let (dtype, width) = match entry.dtype.as_str() {
            "F32" => (DType::F32, 4),
            "BF16" => (DType::BF16, 2),
            "F16" => (DType::F16, 2),
            "F64" => (DType::F64, 8),
            other => {
                return Err(Error::checkpoint(
                    &*path,
                    format!("tensor `{name}` has dtype {other}; only F32, BF16, F16 and F64 are supported"),
                ));
            }
        };
        let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if count.and_then(|n| n.checked_mul(width)) != Some((entry.end - entry.start) as usize) {
            return Err(Error::checkpoint(
                &*path,
                format!(
                    "tensor `{name}`: {} bytes do not hold shape {shape:?} of {}",
                    entry.end - entry.start,
                    entry.dtype
                ),
            ));
        }
        let bytes = read_range(shard, entry.start, entry.end)
            .map_err(|e| Error::checkpoint(&*path, format!("tensor `{name}`: {e}")))?;
        self.untaken.remove(name);
        Ok(match dtype {
            DType::F64 => {
                let values: Vec<f32> = bytes
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
                    .collect();
                TensorData::new(values, shape.to_vec())
            }
            dtype => TensorData::from_bytes_vec(bytes, shape.to_vec(), dtype),
        })
    }

    /// The f32 values of tensor `name`, checked against `shape`.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let data = self.take_data(name, shape)?.convert::<f32>();
        Ok(data.try_into_vec::<f32>().expect("converted to f32"))
    }

    /// Names in the checkpoint that were never taken (ignoring rotary caches some exporters write).
    pub fn leftovers(&self) -> Vec<&str> {
        self.untaken.iter().map(String::as_str).filter(|n| !n.ends_with("rotary_emb.inv_freq")).collect()
    }
}

/// The tensors a shard's header lists, with their byte ranges checked against the shard's size.
fn read_header(shard: &mut Shard, index: usize) -> std::result::Result<Vec<(String, Entry)>, String> {
    let size = match shard {
        Shard::File(f) => f.metadata().map_err(|e| e.to_string())?.len(),
        Shard::Bytes(b) => b.len() as u64,
    };
    let too_small = || format!("{size} bytes is too small for a safetensors file");
    let n = u64::from_le_bytes(read_range(shard, 0, 8.min(size))?.try_into().map_err(|_| too_small())?);
    if n > MAX_HEADER || 8 + n > size {
        return Err(format!(
            "unreadable safetensors header: a header of {n} bytes does not fit the file's {size}"
        ));
    }
    let header = read_range(shard, 8, 8 + n)?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| format!("unreadable safetensors header: {e}"))?;
    let data = 8 + n;
    let mut entries = Vec::with_capacity(header.len());
    for (name, info) in header {
        if name == "__metadata__" {
            continue;
        }
        let bad = |what: &str| format!("unreadable safetensors header: tensor `{name}` {what}");
        let dtype = info.get("dtype").and_then(|d| d.as_str()).ok_or_else(|| bad("has no `dtype`"))?;
        let shape = info
            .get("shape")
            .and_then(|s| s.as_array())
            .and_then(|s| {
                s.iter().map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok())).collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| bad("has no `shape` list of sizes"))?;
        let range = info
            .get("data_offsets")
            .and_then(|o| o.as_array())
            .and_then(|o| match o.as_slice() {
                [a, b] => Some((a.as_u64()?, b.as_u64()?)),
                _ => None,
            })
            .ok_or_else(|| bad("has no `data_offsets` pair"))?;
        let (start, end) = (data.checked_add(range.0), data.checked_add(range.1));
        let (Some(start), Some(end)) = (start, end) else { return Err(bad("has offsets past the file")) };
        if start > end || end > size {
            return Err(bad(&format!(
                "has bytes {}..{} past the file's {} bytes of data",
                range.0,
                range.1,
                size - data
            )));
        }
        entries.push((name, Entry { shard: index, dtype: dtype.to_string(), shape, start, end }));
    }
    Ok(entries)
}

/// Bytes `start..end` of a shard (checked against its size by the caller).
fn read_range(shard: &mut Shard, start: u64, end: u64) -> std::result::Result<Vec<u8>, String> {
    match shard {
        Shard::Bytes(b) => Ok(b[start as usize..end as usize].to_vec()),
        Shard::File(f) => {
            use std::io::{Read, Seek, SeekFrom};
            let mut buf = vec![0u8; (end - start) as usize];
            f.seek(SeekFrom::Start(start)).and_then(|_| f.read_exact(&mut buf)).map_err(|e| e.to_string())?;
            Ok(buf)
        }
    }
}

/// Writes `tensors` (name, data) as one safetensors file of `dtype` (values rounded to the
/// nearest); the bytes are returned so the browser can export them too.
pub fn to_safetensors(tensors: Vec<(String, TensorData)>, dtype: crate::model::Dtype) -> Result<Vec<u8>> {
    let st_dtype = match dtype {
        crate::model::Dtype::F32 => safetensors::Dtype::F32,
        crate::model::Dtype::BF16 => safetensors::Dtype::BF16,
        crate::model::Dtype::F16 => safetensors::Dtype::F16,
    };
    let tensors: Vec<(String, TensorData)> =
        tensors.into_iter().map(|(name, data)| (name, data.convert_dtype(dtype.burn()))).collect();
    let views = tensors
        .iter()
        .map(|(name, data)| {
            safetensors::tensor::TensorView::new(st_dtype, data.shape().to_vec(), data.as_bytes())
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::checkpoint(name, e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::checkpoint("model.safetensors", e.to_string()))
}
