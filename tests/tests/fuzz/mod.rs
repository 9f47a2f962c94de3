//! The fuzz targets of the library crates (harness and input strategies: `stepgrpo_tests::fuzz`).
//! `cargo test -p stepgrpo-tests --test integration fuzz` runs them with CI's case counts;
//! `STEPGRPO_FUZZ_CASES=N` runs N cases per target.

mod files;
mod safetensors;
mod text;

use std::time::Duration;

use stepgrpo_tests::fuzz::bounded_with;
pub(crate) use stepgrpo_tests::fuzz::{Scratch, bounded, config, inputs};

#[test]
fn fuzz_harness_catches_hangs_panics_and_memory() {
    let hang = std::panic::catch_unwind(|| {
        bounded_with("hang", 0, Duration::from_millis(50), || std::thread::sleep(Duration::from_secs(1)))
    });
    let panic = std::panic::catch_unwind(|| bounded("panic", 0, || panic!("expected")));
    let memory = std::panic::catch_unwind(|| {
        bounded("memory", 0, || std::hint::black_box(vec![1u8; 200 << 20]).len())
    });
    assert!(hang.is_err() && panic.is_err() && memory.is_err());
    assert_eq!(bounded("fine", 10, || 1 + 1), 2);
}
