//! The device a page trains on, chosen once per page (worker): WebGPU when the browser offers an
//! adapter, else burn's CPU backend compiled to WebAssembly.

use burn::tensor::Device;
use serde::Serialize;

use crate::config::DeviceChoice;
use crate::error::{WebError, WebResult};

/// The device in use and how to show it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceInfo {
    /// `webgpu` or `cpu`.
    pub backend: &'static str,
    /// The WebGPU adapter's description (empty when the browser hides it), or `CPU (WebAssembly)`.
    pub name: String,
    /// Why the CPU is used when WebGPU was asked for (`auto`), if it is.
    pub fallback_reason: Option<String>,
}

/// A ready device (not yet autodiff) and its description.
#[derive(Debug, Clone)]
pub struct Picked {
    /// The burn device.
    pub device: Device,
    /// What it is.
    pub info: DeviceInfo,
}

fn cpu(fallback_reason: Option<String>) -> Picked {
    let name = if cfg!(target_family = "wasm") { "CPU (WebAssembly)" } else { "CPU (native)" };
    Picked { device: Device::flex(), info: DeviceInfo { backend: "cpu", name: name.into(), fallback_reason } }
}

/// Picks the device for `choice`. The wgpu runtime can be registered only once per page, so the
/// first WebGPU device (or the reason there is none) is kept and shared by later trainers.
pub async fn pick(choice: DeviceChoice) -> WebResult<Picked> {
    if choice == DeviceChoice::Cpu {
        return Ok(cpu(None));
    }
    let webgpu = webgpu().await;
    match (webgpu, choice) {
        (Ok((device, name)), _) => {
            Ok(Picked { device, info: DeviceInfo { backend: "webgpu", name, fallback_reason: None } })
        }
        (Err(reason), DeviceChoice::Webgpu) => Err(WebError::Device(reason)),
        (Err(reason), _) => {
            log::warn!("WebGPU unavailable ({reason}); training on the CPU");
            Ok(cpu(Some(reason)))
        }
    }
}

#[cfg(target_family = "wasm")]
thread_local! {
    static WEBGPU: std::cell::RefCell<Option<Result<(Device, String), String>>> =
        const { std::cell::RefCell::new(None) };
}

/// The page's WebGPU device and adapter name, initialised on first use.
#[cfg(target_family = "wasm")]
async fn webgpu() -> Result<(Device, String), String> {
    if let Some(known) = WEBGPU.with(|w| w.borrow().clone()) {
        return known;
    }
    let result = init_webgpu().await;
    WEBGPU.with(|w| *w.borrow_mut() = Some(result.clone()));
    result
}

#[cfg(target_family = "wasm")]
async fn init_webgpu() -> Result<(Device, String), String> {
    // Without `navigator.gpu` wgpu would fail deep inside; say plainly why instead.
    let navigator = js_sys::Reflect::get(&js_sys::global(), &"navigator".into()).ok();
    let gpu = navigator.and_then(|n| js_sys::Reflect::get(&n, &"gpu".into()).ok());
    if gpu.is_none_or(|g| g.is_undefined() || g.is_null()) {
        return Err("this browser exposes no WebGPU (navigator.gpu is missing)".into());
    }
    let (device, setup) = Device::wgpu_options()
        .init_with_setup_async()
        .await
        .map_err(|e| format!("no WebGPU adapter: {e}"))?;
    // Empty where the browser hides the description; js/worker.js fills in vendor and architecture.
    Ok((device, setup.adapter.get_info().name))
}

/// Natively (for measurements and checks), the CLI's device selection stands in for WebGPU.
#[cfg(not(target_family = "wasm"))]
async fn webgpu() -> Result<(Device, String), String> {
    let selected = stepgrpo_core::device::select(stepgrpo_core::device::Backend::Wgpu);
    match selected.backend {
        stepgrpo_core::device::Backend::Wgpu => Ok((selected.device, selected.description)),
        _ => Err("no wgpu adapter".into()),
    }
}
