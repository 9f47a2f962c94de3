//! The WGSL kernels launched on burn-wgpu tensors (`CubeBackend` on the wgpu runtime).

use burn::backend::ops::IntTensorOps;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::wgpu::{
    CubeBackend, CubeDim, CubeTensor, KernelSource, SourceKernel, SourceTemplate, into_contiguous,
};
use burn::cubecl::prelude::KernelId;
use burn::cubecl::server::KernelArguments;
use burn::cubecl::{CubeCount, server::Handle};
use burn::tensor::{DType, IntDType, Shape};

use crate::ops::{GradKernelOps, KernelOps};

/// Threads per workgroup of every kernel.
const WG: u32 = 256;
/// The most workgroups one dispatch dimension may have (WebGPU's limit).
const MAX_GROUPS: u32 = 65535;

/// Ids per workgroup tile of `fused_head.wgsl` (its layout is written for [`WG`] = 256 threads).
pub(crate) const FUSED_TILE: usize = 512;
/// Rows per workgroup block of `fused_head.wgsl`.
pub(crate) const FUSED_ROWS: usize = 64;
const _: () = assert!(WG == 256, "fused_head.wgsl lays 256 threads out as 4 x 64");

/// The line of a kernel that names the element type of the weight it reads.
const WEIGHT_F32: &str = "alias Weight = f32;";

/// One WGSL file, with the workgroup size filled in, and the element type of a weight it reads.
#[derive(Debug)]
struct Wgsl {
    name: &'static str,
    source: &'static str,
    /// Whether the weight is f16 (WGSL's `enable f16`, the adapter's `shader-f16`). The file is
    /// written for f32 (so it compiles as it is, as the browser test compiles every file).
    half: bool,
}

impl KernelSource for Wgsl {
    fn source(&self) -> SourceTemplate {
        let source = if self.half {
            assert!(self.source.contains(WEIGHT_F32), "{} reads no weight", self.name);
            format!("enable f16;\n{}", self.source.replace(WEIGHT_F32, "alias Weight = f16;"))
        } else {
            self.source.to_string()
        };
        SourceTemplate::new(source).register("wg", WG.to_string())
    }

    fn id(&self) -> KernelId {
        KernelId::new::<Self>().info((self.name, self.half))
    }

    fn lang(&self) -> &'static str {
        "wgsl"
    }
}

macro_rules! wgsl {
    ($name:literal) => {
        wgsl!($name, false)
    };
    ($name:literal, $half:expr) => {
        Wgsl { name: $name, source: include_str!(concat!("../wgsl/", $name, ".wgsl")), half: $half }
    };
}

/// Rows of `vocab` ids one launch of `fused_head.wgsl` takes: its partials (3 floats per row and
/// tile) within 16 MiB, and at most 65,536 rows (1,024 blocks).
pub(crate) fn fused_head_rows(vocab: usize) -> usize {
    ((1 << 22) / (3 * vocab.div_ceil(FUSED_TILE))).clamp(1, 1 << 16)
}

/// Whether `fused_head.wgsl` can take a [vocab, d] weight: its tiles within WebGPU's 65,535
/// workgroups per dimension and every index within u32, for launches of [`fused_head_rows`] rows.
pub(crate) fn fused_head_fits(vocab: usize, d: usize) -> bool {
    let fits = |x: usize| x < u32::MAX as usize;
    vocab.div_ceil(FUSED_TILE) <= MAX_GROUPS as usize && fits(vocab * d) && fits(fused_head_rows(vocab) * d)
}

/// Workgroups for one per row: x wraps at 65535 into y, as the kernels expect.
fn per_row(rows: usize) -> CubeCount {
    let rows = rows.max(1) as u32;
    CubeCount::Static(rows.min(MAX_GROUPS), rows.div_ceil(MAX_GROUPS), 1)
}

fn launch(like: &CubeTensor, kernel: Wgsl, count: CubeCount, buffers: Vec<&Handle>) {
    let bindings = buffers.into_iter().map(|h| h.clone().binding()).collect();
    like.client.launch(
        Box::new(SourceKernel::new(kernel, CubeDim::new_1d(WG))),
        count,
        KernelArguments::new().with_buffers(bindings),
    );
}

/// A new contiguous tensor on `like`'s device.
fn empty(like: &CubeTensor, shape: Shape, dtype: DType) -> CubeTensor {
    let handle = like.client.empty(shape.num_elements() * dtype.size());
    CubeTensor::new_contiguous(like.client.clone(), like.device.clone(), shape, handle, dtype)
}

fn params(like: &CubeTensor, values: &[u32]) -> Handle {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    like.client.create_from_slice(&bytes)
}

/// The kernels read ids as i32, the wgpu default; anything else is converted first.
fn ids_i32(ids: IntTensor<CubeBackend>) -> CubeTensor {
    let ids = if ids.dtype == DType::I32 { ids } else { CubeBackend::int_cast(ids, IntDType::I32) };
    into_contiguous(ids)
}

fn dims(t: &CubeTensor) -> Vec<usize> {
    t.meta.shape().iter().copied().collect()
}

impl KernelOps for CubeBackend {
    fn log_softmax_select(
        logits: FloatTensor<Self>,
        ids: IntTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let logits = into_contiguous(logits);
        let ids = ids_i32(ids);
        let [rows, vocab] = dims(&logits)[..] else { panic!("logits must be [N, V]") };
        let out = || empty(&logits, Shape::from([rows]), DType::F32);
        let (logp, entropy, lse) = (out(), out(), out());
        let p = params(&logits, &[rows as u32, vocab as u32]);
        let buffers = vec![&logits.handle, &ids.handle, &logp.handle, &entropy.handle, &lse.handle, &p];
        launch(&logits, wgsl!("selective_log_softmax"), per_row(rows), buffers);
        (logp, entropy, lse)
    }

    fn log_softmax_select_backward(
        logits: FloatTensor<Self>,
        ids: IntTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let logits = into_contiguous(logits);
        let (ids, lse, grad) = (ids_i32(ids), into_contiguous(lse), into_contiguous(grad));
        let [rows, vocab] = dims(&logits)[..] else { panic!("logits must be [N, V]") };
        let out = empty(&logits, Shape::from([rows, vocab]), DType::F32);
        let p = params(&logits, &[rows as u32, vocab as u32]);
        let count =
            CubeCount::Static((vocab as u32).div_ceil(WG).max(1), (rows as u32).clamp(1, MAX_GROUPS), 1);
        let buffers = vec![&logits.handle, &ids.handle, &lse.handle, &grad.handle, &out.handle, &p];
        launch(&logits, wgsl!("selective_log_softmax_backward"), count, buffers);
        out
    }

    fn sample(
        logits: FloatTensor<Self>,
        uniforms: FloatTensor<Self>,
        temperature: f32,
        top_k: u32,
        top_p: f32,
        limit: u32,
    ) -> (IntTensor<Self>, FloatTensor<Self>) {
        let logits = into_contiguous(logits);
        let uniforms = into_contiguous(uniforms);
        let [rows, vocab] = dims(&logits)[..] else { panic!("logits must be [N, V]") };
        let ids = empty(&logits, Shape::from([rows]), DType::I32);
        let logp = empty(&logits, Shape::from([rows]), DType::F32);
        let limit = limit.clamp(1, vocab as u32);
        let p = params(
            &logits,
            &[rows as u32, vocab as u32, temperature.to_bits(), top_k, top_p.to_bits(), limit],
        );
        let buffers = vec![&logits.handle, &uniforms.handle, &ids.handle, &logp.handle, &p];
        launch(&logits, wgsl!("sample"), per_row(rows), buffers);
        (ids, logp)
    }

    fn probe_confidence(logits: FloatTensor<Self>, lengths: IntTensor<Self>) -> FloatTensor<Self> {
        let logits = into_contiguous(logits);
        let lengths = ids_i32(lengths);
        let [rows, steps, vocab] = dims(&logits)[..] else { panic!("probe logits must be [N, T, V]") };
        let out = empty(&logits, Shape::from([rows]), DType::F32);
        let p = params(&logits, &[rows as u32, steps as u32, vocab as u32]);
        let buffers = vec![&logits.handle, &lengths.handle, &out.handle, &p];
        launch(&logits, wgsl!("probe_confidence"), per_row(rows), buffers);
        out
    }

    fn fused_head_log_probs(
        hidden: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        ids: IntTensor<Self>,
        temperature: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let hidden = into_contiguous(hidden);
        // The weight is read through its strides, in place: a checkpoint's [V, d] rows and the
        // [d, V] buffer an optimizer step leaves behind an untied head alike (a copy would be the
        // whole weight). Only a storage-tiled layout, which strides do not describe, is laid back.
        let weight = if weight.meta.is_tiled() { into_contiguous(weight) } else { weight };
        let ids = ids_i32(ids);
        let [rows, d] = dims(&hidden)[..] else { panic!("hidden states must be [N, d]") };
        let [vocab, wd] = dims(&weight)[..] else { panic!("the weight must be [V, d]") };
        assert_eq!(d, wd, "hidden states and weight disagree on d");
        assert!(hidden.dtype == DType::F32 && matches!(weight.dtype, DType::F32 | DType::F16));
        let (sv, sd) = (weight.meta.strides()[0], weight.meta.strides()[1]);
        assert!((vocab - 1) * sv + (d - 1) * sd < u32::MAX as usize, "weight indices past u32");
        let (sv, sd) = (sv as u32, sd as u32);
        let tiles = vocab.div_ceil(FUSED_TILE);
        let partials = empty(&hidden, Shape::from([rows, tiles, 3]), DType::F32);
        let chosen = empty(&hidden, Shape::from([rows]), DType::F32);
        let p = params(
            &hidden,
            &[rows as u32, vocab as u32, d as u32, tiles as u32, sv, sd, temperature.to_bits()],
        );
        let count = CubeCount::Static(tiles as u32, rows.div_ceil(FUSED_ROWS) as u32, 1);
        let kernel = wgsl!("fused_head", weight.dtype == DType::F16);
        let buffers = vec![&hidden.handle, &weight.handle, &ids.handle, &partials.handle, &chosen.handle, &p];
        launch(&hidden, kernel, count, buffers);

        let out = || empty(&hidden, Shape::from([rows]), DType::F32);
        let (logp, entropy) = (out(), out());
        let p = params(&hidden, &[rows as u32, vocab as u32, tiles as u32]);
        let buffers = vec![&partials.handle, &chosen.handle, &ids.handle, &logp.handle, &entropy.handle, &p];
        launch(&hidden, wgsl!("fused_head_combine"), per_row(rows), buffers);
        (logp, entropy)
    }

    fn group_advantages(
        rewards: FloatTensor<Self>,
        groups: IntTensor<Self>,
        scale: u32,
    ) -> FloatTensor<Self> {
        let rewards = into_contiguous(rewards);
        let groups = ids_i32(groups);
        let n = dims(&rewards)[0];
        let out = empty(&rewards, Shape::from([n]), DType::F32);
        let p = params(&rewards, &[n as u32, scale]);
        let buffers = vec![&rewards.handle, &groups.handle, &out.handle, &p];
        launch(&rewards, wgsl!("group_advantages"), CubeCount::Static(1, 1, 1), buffers);
        out
    }
}

impl GradKernelOps for CubeBackend {
    fn selective_log_softmax(
        logits: FloatTensor<Self>,
        ids: IntTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (logp, entropy, _lse) = Self::log_softmax_select(logits, ids);
        (logp, entropy)
    }
}
