//! Shared helpers of the integration tests: fixture paths and the devices every test runs on.
// Every public item carries a doc line (clippy -D warnings makes this an error).
#![warn(missing_docs)]

pub mod builtin;
pub mod fuzz;
pub mod vllm;

use std::path::PathBuf;
use std::sync::Mutex;

use burn::tensor::Device;
use stepgrpo_core::device::{self, Backend};

/// `tests/fixtures/<rel>`: the reference fixtures kept in the repository (see its README).
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures")).join(rel)
}

/// The CPU device and the wgpu device. The wgpu one must exist: on machines without a GPU,
/// Mesa's lavapipe provides it (`apt-get install mesa-vulkan-drivers`), and CI installs it, so a
/// missing adapter is a failure rather than a silent skip.
pub fn devices() -> Vec<(&'static str, Device)> {
    let wgpu = device::select(Backend::Wgpu);
    assert_eq!(
        wgpu.backend,
        Backend::Wgpu,
        "no wgpu adapter: install mesa-vulkan-drivers (lavapipe) to run the wgpu tests"
    );
    vec![("cpu", device::select(Backend::Cpu).device), ("wgpu", wgpu.device)]
}

/// `f`'s result with `device` seeded with `seed` first, holding a lock that every seeded draw of
/// the tests takes: tests run in parallel, and a device's random stream is shared, so an
/// unguarded draw (a model's initial weights, say) would depend on what other tests drew.
pub fn seeded<T>(device: &Device, seed: u64, f: impl FnOnce() -> T) -> T {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    device.seed(seed);
    f()
}

/// Reads a JSON fixture.
pub fn json(rel: &str) -> serde_json::Value {
    let path = fixture(rel);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A JSON array of token ids.
pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    serde_json::from_value(v.clone()).expect("a list of token ids")
}

/// A word-level tokenizer over the fixture models' 384 ids: id n is the word "tn", except the ids
/// given in `words`. Decoding joins words with spaces, so every word is standalone.
pub fn word_tokenizer(words: &[(u32, &str)]) -> stepgrpo_core::text::Tokenizer {
    let json = word_tokenizer_json(words).to_string();
    stepgrpo_core::text::Tokenizer::from_bytes(json.as_bytes(), "word-level".as_ref()).unwrap()
}

/// The `tokenizer.json` of [`word_tokenizer`], for a model directory.
pub fn word_tokenizer_json(words: &[(u32, &str)]) -> serde_json::Value {
    let vocab: serde_json::Map<String, serde_json::Value> = (0..384u32)
        .map(|i| {
            let word = words.iter().find(|w| w.0 == i).map_or(format!("t{i}"), |w| w.1.to_string());
            (word, i.into())
        })
        .collect();
    serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
        "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "t0"}
    })
}
