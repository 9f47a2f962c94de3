//! Half precision: which dtype a model's matrices are kept in. The embedding, the projections and
//! the output head may be kept in bf16 or f16 (half the bytes); norms, biases, adapters and every
//! activation stay f32, and each matrix is widened where it is used (`model::linear`, the CPU
//! kernel reading half weights in place). Weights that train keep f32 master copies.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{DType, Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::transformer::CausalLm;

/// The floating-point type a checkpoint was saved in (`dtype` / `torch_dtype` in config.json), and
/// so the one its matrices are kept in (see [`storage_dtype`]). Computation is always f32; the
/// dtype still decides rotary-frequency rounding, and a model is saved in its own dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Dtype {
    /// float32.
    #[default]
    #[serde(rename = "float32", alias = "f32")]
    F32,
    /// bfloat16.
    #[serde(rename = "bfloat16", alias = "bf16")]
    BF16,
    /// float16.
    #[serde(rename = "float16", alias = "f16")]
    F16,
}

impl std::str::FromStr for Dtype {
    type Err = String;

    /// transformers' names (`float32`, `bfloat16`, `float16`, with or without `torch.`) or the
    /// short ones (`f32`, `bf16`, `f16`).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "f32" => Ok(Dtype::F32),
            "bf16" => Ok(Dtype::BF16),
            "f16" => Ok(Dtype::F16),
            _ => Dtype::from_hf(s).ok_or_else(|| {
                format!("{s:?} is not a dtype (float32, bfloat16, float16; or f32, bf16, f16)")
            }),
        }
    }
}

impl Dtype {
    /// Rounds `x` to this dtype's precision (and back to f32).
    pub fn round(self, x: f32) -> f32 {
        match self {
            Dtype::F32 => x,
            Dtype::BF16 => half::bf16::from_f32(x).to_f32(),
            Dtype::F16 => half::f16::from_f32(x).to_f32(),
        }
    }

    /// burn's name for it.
    pub fn burn(self) -> burn::tensor::DType {
        match self {
            Dtype::F32 => burn::tensor::DType::F32,
            Dtype::BF16 => burn::tensor::DType::BF16,
            Dtype::F16 => burn::tensor::DType::F16,
        }
    }

    /// The name transformers writes (`float32`, `bfloat16`, `float16`).
    pub fn hf_name(self) -> &'static str {
        match self {
            Dtype::F32 => "float32",
            Dtype::BF16 => "bfloat16",
            Dtype::F16 => "float16",
        }
    }

    pub(super) fn from_hf(name: &str) -> Option<Self> {
        match name.trim_start_matches("torch.") {
            "float32" | "float" => Some(Dtype::F32),
            "bfloat16" => Some(Dtype::BF16),
            "float16" | "half" => Some(Dtype::F16),
            _ => None,
        }
    }
}

/// The dtype a device keeps matrices of `wanted` in: `wanted` where the device computes with it
/// (the CPU backend: bf16 and f16); else bf16 becomes f16 (wgpu has f16 where the adapter has the
/// `shader-f16` feature, and no bf16); else f32.
pub fn storage_dtype(wanted: Dtype, device: &Device) -> DType {
    let supported = |d: DType| device.supports_dtype(d);
    match wanted {
        Dtype::BF16 if supported(DType::BF16) => DType::BF16,
        Dtype::BF16 | Dtype::F16 if supported(DType::F16) => DType::F16,
        _ => DType::F32,
    }
}

/// Checkpoint matrix `name` as `storage` keeps it. A bf16 matrix with a value beyond f16's range
/// (65,504) stays f32 where f16 stands in for bf16.
pub(super) fn stored(name: &str, data: TensorData, storage: DType, device: &Device) -> Tensor<2> {
    let fits_f16 = |d: &TensorData| {
        d.as_slice::<half::bf16>().is_ok_and(|v| v.iter().all(|x| x.to_f32().abs() <= 65504.0))
    };
    let dtype = if storage == DType::F16 && data.dtype() == DType::BF16 && !fits_f16(&data) {
        log::warn!("{name}: values beyond f16's range, kept in f32");
        DType::F32
    } else {
        storage
    };
    Tensor::from_data(data.convert_dtype(dtype), (device, dtype))
}

/// Casts every float parameter to one dtype, keeping ids and gradient flags.
struct CastParams(DType);

impl ModuleMapper for CastParams {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let dtype = self.0;
        param.map(|t| {
            if t.dtype() == dtype {
                return t;
            }
            // A new leaf: gradients must reach the f32 copy, not flow back to the half one.
            let trains = t.is_require_grad();
            let t = t.cast(dtype).detach();
            if trains { t.require_grad() } else { t }
        })
    }
}

impl CausalLm {
    /// The dtype the embedding (and with it every matrix of a loaded model) is kept in.
    pub fn matrix_dtype(&self) -> DType {
        self.embed_tokens.weight.val().dtype()
    }

    /// The model with every parameter in f32: the master weights of full fine-tuning.
    pub fn in_f32(self) -> CausalLm {
        self.map(&mut CastParams(DType::F32))
    }
}
