//! stepgrpo in the browser: the same `stepgrpo-core` trainer compiled to WebAssembly with
//! wasm-bindgen, training the built-in task's tiny model on WebGPU, or on burn's CPU backend where
//! WebGPU is missing.
//!
//! JavaScript sees one class, [`api::Trainer`]; `js/client.js` runs it in a Web Worker and gives
//! the page the same methods as promises. [`session::Session`] is the flow behind it in plain Rust:
//! SFT steps, then RL steps of one method, metrics and the first group's responses after each step.
// Every public item carries a doc line (clippy -D warnings makes this an error).
#![warn(missing_docs)]

pub mod api;
pub mod config;
pub mod device;
pub mod error;
pub mod session;
pub mod view;

pub use api::Trainer;
pub use config::{DeviceChoice, WebConfig};
pub use error::{WebError, WebResult};
pub use session::Session;

/// Runs when the module is instantiated: panics reach the browser console with their message
/// instead of an opaque `unreachable` trap.
#[cfg(target_family = "wasm")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}
