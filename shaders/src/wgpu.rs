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

/// One WGSL file, with the workgroup size filled in.
#[derive(Debug)]
struct Wgsl {
    name: &'static str,
    source: &'static str,
}

impl KernelSource for Wgsl {
    fn source(&self) -> SourceTemplate {
        SourceTemplate::new(self.source).register("wg", WG.to_string())
    }

    fn id(&self) -> KernelId {
        KernelId::new::<Self>().info(self.name)
    }

    fn lang(&self) -> &'static str {
        "wgsl"
    }
}

macro_rules! wgsl {
    ($name:literal) => {
        Wgsl { name: $name, source: include_str!(concat!("../wgsl/", $name, ".wgsl")) }
    };
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
