//! Picking the device to run on: wgpu (any Vulkan, Metal, DX12 or WebGPU adapter) or the CPU.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which burn backend to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The wgpu backend on the best available adapter.
    #[default]
    Wgpu,
    /// burn's pure-Rust CPU backend (flex), also available in wasm.
    Cpu,
}

impl FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "wgpu" | "gpu" => Ok(Backend::Wgpu),
            "cpu" | "flex" => Ok(Backend::Cpu),
            other => Err(Error::invalid("device", format!("{other:?}; expected wgpu or cpu"))),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Wgpu => "wgpu",
            Backend::Cpu => "cpu",
        })
    }
}

/// A ready device and a human-readable description of it (adapter name or "CPU").
#[derive(Debug, Clone)]
pub struct SelectedDevice {
    /// The burn device.
    pub device: Device,
    /// The backend actually in use (wgpu may have fallen back to the CPU).
    pub backend: Backend,
    /// e.g. "wgpu: llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan)" or "cpu (flex)".
    pub description: String,
}

/// Initialises `backend`. Asking for wgpu where no adapter exists falls back to the CPU with a
/// warning instead of failing, so the same command works on machines without a GPU. The wgpu
/// runtime is started once per process and shared by later calls.
#[cfg(not(target_family = "wasm"))]
pub fn select(backend: Backend) -> SelectedDevice {
    static WGPU: std::sync::OnceLock<Option<(Device, String)>> = std::sync::OnceLock::new();
    if backend == Backend::Wgpu {
        let wgpu = WGPU.get_or_init(|| match Device::wgpu_options().init_with_setup() {
            Ok((device, setup)) => {
                let info = setup.adapter.get_info();
                Some((device, format!("wgpu: {} ({:?})", info.name, info.backend)))
            }
            Err(e) => {
                log::warn!(
                    "no usable wgpu adapter ({e}); falling back to the CPU. On Linux without a GPU, \
                     `apt-get install mesa-vulkan-drivers` provides one"
                );
                None
            }
        });
        if let Some((device, description)) = wgpu {
            return SelectedDevice { device: device.clone(), backend, description: description.clone() };
        }
    }
    SelectedDevice { device: Device::flex(), backend: Backend::Cpu, description: "cpu (flex)".into() }
}
