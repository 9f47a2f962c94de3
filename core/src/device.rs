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
    /// wgpu on a hardware adapter; the CPU when the only adapter is a software one (llvmpipe),
    /// which is slower than the CPU backend itself.
    #[default]
    Auto,
    /// The wgpu backend on the best available adapter.
    Wgpu,
    /// burn's pure-Rust CPU backend (flex), also available in wasm.
    Cpu,
}

impl FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Backend::Auto),
            "wgpu" | "gpu" => Ok(Backend::Wgpu),
            "cpu" | "flex" => Ok(Backend::Cpu),
            other => Err(Error::invalid("device", format!("{other:?}; expected auto, wgpu or cpu"))),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Auto => "auto",
            Backend::Wgpu => "wgpu",
            Backend::Cpu => "cpu",
        })
    }
}

/// Whether `device` (with or without autodiff) is burn's CPU backend.
pub fn is_cpu(device: &Device) -> bool {
    matches!(device.clone().without_autodiff().as_dispatch(), burn::backend::DispatchDevice::Flex(_))
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
    static WGPU: std::sync::OnceLock<Option<(Device, String, bool)>> = std::sync::OnceLock::new();
    if backend != Backend::Cpu {
        let wgpu = WGPU.get_or_init(|| match Device::wgpu_options().init_with_setup() {
            Ok((device, setup)) => {
                let info = setup.adapter.get_info();
                let software = format!("{:?}", info.device_type) == "Cpu";
                Some((device, format!("wgpu: {} ({:?})", info.name, info.backend), software))
            }
            Err(e) => {
                log::warn!(
                    "no usable wgpu adapter ({e}); falling back to the CPU. On Linux without a GPU, \
                     `apt-get install mesa-vulkan-drivers` provides one"
                );
                None
            }
        });
        match wgpu {
            Some((_, name, true)) if backend == Backend::Auto => {
                let description = format!("cpu (flex; the only wgpu adapter is software: {name})");
                return SelectedDevice { device: Device::flex(), backend: Backend::Cpu, description };
            }
            Some((device, description, _)) => {
                let backend = Backend::Wgpu;
                return SelectedDevice { device: device.clone(), backend, description: description.clone() };
            }
            None => {}
        }
    }
    SelectedDevice { device: Device::flex(), backend: Backend::Cpu, description: "cpu (flex)".into() }
}
