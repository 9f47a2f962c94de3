//! Property-based fuzzing of everything that reads user files or model output (stable Rust:
//! proptest with a fixed seed, no cargo-fuzz). Every target asserts, per input: no panic, a result
//! within a time bound (a hang fails instead of stalling the run), and peak memory bounded by the
//! input's size. Inputs are built from hostile pieces (deep nesting, long runs, unbalanced braces,
//! huge numbers, broken UTF-8, fragments of valid files), not only random bytes.
//!
//! This is the shared harness (the targets live in `tests/tests/fuzz/` and `native/src/fuzz.rs`).
//! CI runs a few hundred cases per target; longer runs set `STEPGRPO_FUZZ_CASES=100000` (cases per
//! target) and `STEPGRPO_FUZZ_SEED=n` for another stream. A failure prints the shrunk input: it
//! becomes a named regression test.

mod alloc;
pub mod inputs;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use proptest::test_runner::{Config, RngSeed};

/// Cases per target: `STEPGRPO_FUZZ_CASES`, or `default` (sized so that every target together
/// stays under a minute in a debug build on two cores).
pub fn config(default: u32) -> Config {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    Config {
        cases: env("STEPGRPO_FUZZ_CASES").map_or(default, |n| n as u32),
        rng_seed: RngSeed::Fixed(env("STEPGRPO_FUZZ_SEED").unwrap_or(0x5eed_f022)),
        failure_persistence: None,
        // Shrinking an input that hangs costs a time bound per try.
        max_shrink_iters: 200,
        max_shrink_time: 120_000,
        ..Config::default()
    }
}

/// Time one input may take: generous, because two cores may be running other tests too; a
/// super-linear path takes minutes or forever on the long inputs generated.
fn time_bound() -> Duration {
    let ms = std::env::var("STEPGRPO_FUZZ_TIMEOUT_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    Duration::from_millis(ms)
}

/// Peak memory one input may take: a fixed allowance (lazy tables, a tokenizer's caches, a chat
/// template's fuel) plus a multiple of the input's size.
fn memory_bound(input_len: usize) -> usize {
    (128 << 20) + 256 * input_len
}

/// Runs `f` on a thread with a default-sized stack (2 MiB: where the trainer's threads run the
/// grader), failing when it panics, takes longer than the time bound, or allocates more than the
/// memory bound for an input of `input_len` bytes. `what` names the target in failures.
pub fn bounded<T: Send + 'static>(what: &str, input_len: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    bounded_with(what, input_len, time_bound(), f)
}

/// [`bounded`] with its own time bound (the harness's own test uses a short one).
pub fn bounded_with<T: Send + 'static>(
    what: &str,
    input_len: usize,
    time: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    let worker = std::thread::Builder::new()
        .name(format!("fuzz {what}"))
        .stack_size(2 << 20)
        .spawn(move || {
            // Four times the bound: past it the process aborts rather than the machine running out.
            let base = alloc::start_peak(4 * memory_bound(input_len));
            let out = f();
            let _ = tx.send((out, alloc::peak_since(base)));
        })
        .expect("a fuzz thread starts");
    match rx.recv_timeout(time) {
        Ok((out, peak)) => {
            let _ = worker.join();
            let bound = memory_bound(input_len);
            assert!(peak <= bound, "{what}: {peak} bytes at peak for an input of {input_len} bytes");
            out
        }
        // The sender is dropped without a result: the worker panicked (its message is printed).
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let message = match worker.join() {
                Err(e) => e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default(),
                Ok(()) => String::new(),
            };
            panic!("{what}: panicked on an input of {input_len} bytes: {message}");
        }
        // The worker is left running (it cannot be stopped); the failure names the input.
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: no result after {:?} on an input of {input_len} bytes", start.elapsed())
        }
    }
}

/// A fresh directory under the system's temporary one, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A new empty directory whose name holds `what`.
    pub fn new(what: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("stepgrpo-fuzz-{what}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Scratch(dir)
    }

    /// Writes `bytes` to `name` in the directory; returns the file's path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("a scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
