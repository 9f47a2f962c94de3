//! `stepgrpo train` under the faults a long run meets: killed (SIGKILL) at random moments and
//! inside its checkpoint writes, again and again, each time resumed with `--resume`, it ends with
//! the weights, metrics and evaluations of an uninterrupted run; on a disk that fills up, a
//! checkpoint write fails with a clear error and leaves the earlier checkpoint whole.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stepgrpo_core::train::checkpoint;
use stepgrpo_core::train::{DirStore, Store};

/// The main job at smoke size: SFT with a checkpoint every step, then two methods side by side.
const TRAIN: &[&str] = &[
    "train",
    "--quick",
    "--sft-steps",
    "24",
    "--rl-steps",
    "4",
    "--methods",
    "step_grpo,grpo",
    "--device",
    "cpu",
];

fn train(out: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stepgrpo"));
    cmd.args(TRAIN).args(["--output-dir", out.to_str().unwrap()]).args(extra);
    cmd
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stepgrpo-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The temporary directories (`.checkpoint-3.tmp`) and files (`eval.json.tmp`) under the run
/// directory: writes under way, or left by a kill.
fn temporaries(run: &Path) -> BTreeSet<PathBuf> {
    let entries = |dir: &Path| std::fs::read_dir(dir).into_iter().flatten().filter_map(|e| e.ok());
    entries(run)
        .chain(entries(run).filter(|e| e.path().is_dir()).flat_map(|e| entries(&e.path())))
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".tmp")))
        .map(|e| e.path())
        .collect()
}

/// Every checkpoint a resume could pick up is whole.
fn checkpoints_whole(run: &Path) {
    let store = DirStore::new(run);
    for phase in ["sft", "step_grpo", "grpo"] {
        for dir in store.dirs(phase).unwrap().into_iter().filter(|d| d.starts_with("checkpoint-")) {
            for file in
                ["model.bpk", "optimizer.bpk", "trainer_state.json", "model.safetensors", "config.json"]
            {
                let path = run.join(phase).join(&dir).join(file);
                assert!(path.is_file(), "{} is missing from a visible checkpoint", path.display());
            }
            // RL checkpoints carry the early-exit rates the phase's summary averages.
            let state: serde_json::Value = serde_json::from_slice(
                &std::fs::read(run.join(phase).join(&dir).join("trainer_state.json")).unwrap(),
            )
            .unwrap();
            let rates = state["recent_exit_rates"].as_array().map_or(0, Vec::len) as u64;
            let expected = if phase == "sft" { 0 } else { state["step"].as_u64().unwrap().min(10) };
            assert_eq!(rates, expected, "{phase}/{dir}: {state}");
        }
    }
}

/// A JSON record without its wall-clock times (`*seconds`), which no two runs share.
fn timeless(mut v: serde_json::Value) -> serde_json::Value {
    match &mut v {
        serde_json::Value::Object(map) => {
            map.retain(|k, _| !k.ends_with("seconds"));
            map.values_mut().for_each(|x| *x = timeless(x.take()));
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|x| *x = timeless(x.take())),
        _ => {}
    }
    v
}

fn metrics(run: &Path, phase: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(run.join(phase).join("metrics.jsonl")).unwrap();
    text.lines().map(|l| timeless(serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))).collect()
}

/// A small xorshift stream for the kill times (printed seed, reproducible choices).
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Kills `child` at `deadline`, or, when `in_a_write`, as soon as it writes (until the deadline):
/// `Ok(whether a write was under way)`, or `Err(its success)` when it exited first.
fn kill(child: &mut Child, run: &Path, deadline: Instant, in_a_write: bool) -> Result<bool, bool> {
    // Those a kill left are not writes of this process.
    let left = temporaries(run);
    let writes = || temporaries(run).difference(&left).next().is_some();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Err(status.success());
        }
        if Instant::now() >= deadline || (in_a_write && writes()) {
            let during_write = writes();
            child.kill().unwrap();
            child.wait().unwrap();
            return Ok(during_write);
        }
        std::thread::sleep(Duration::from_micros(if in_a_write { 200 } else { 5000 }));
    }
}

#[test]
fn killed_again_and_again_a_run_resumes_to_the_same_end() {
    let root = scratch("kill");
    let (straight, killed) = (root.join("straight"), root.join("killed"));
    let t0 = Instant::now();
    let out = train(&straight, &[]).stderr(Stdio::piped()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let span = t0.elapsed();

    let kills_wanted: usize = std::env::var("STEPGRPO_KILLS").map_or(16, |v| v.parse().unwrap());
    let seed: u64 = std::env::var("STEPGRPO_KILL_SEED").map_or(1, |v| v.parse().unwrap());
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let (mut kills, mut in_writes, mut finished) = (0, 0, false);
    while kills < kills_wanted && !finished {
        // Every third kill waits for a write; the others fall anywhere in the first fifth of a run.
        let in_a_write = kills % 3 == 2;
        let delay = span.mul_f64(if in_a_write { 1.0 } else { 0.03 + 0.15 * rng.unit() });
        let log = std::fs::File::create(root.join(format!("killed-{kills}.log"))).unwrap();
        let mut child = train(&killed, &["--resume"]).stdout(Stdio::null()).stderr(log).spawn().unwrap();
        match kill(&mut child, &killed, Instant::now() + delay, in_a_write) {
            Ok(during_write) => {
                kills += 1;
                in_writes += usize::from(during_write);
                checkpoints_whole(&killed);
            }
            Err(success) => {
                assert!(
                    success,
                    "a resumed run failed: see {}",
                    root.join(format!("killed-{kills}.log")).display()
                );
                finished = true;
            }
        }
    }
    if !finished {
        let out = train(&killed, &["--resume"]).stderr(Stdio::piped()).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    eprintln!(
        "{kills} kills ({in_writes} during a write), seed {seed}, uninterrupted run {:.1} s, all {:.1} s",
        span.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    assert!(kills >= kills_wanted / 2, "the run finished after {kills} kills: kill sooner");

    for phase in ["sft", "step_grpo", "grpo"] {
        let model = |run: &Path| std::fs::read(run.join(phase).join("final/model.safetensors")).unwrap();
        assert!(model(&straight) == model(&killed), "{phase}: the final weights differ");
        let (a, b) = (metrics(&straight, phase), metrics(&killed, phase));
        let steps: Vec<u64> = b.iter().map(|r| r["step"].as_u64().unwrap()).collect();
        assert_eq!(steps, (1..=a.len() as u64).collect::<Vec<_>>(), "{phase}: each step exactly once");
        assert_eq!(a, b, "{phase}: the metrics differ");
        let eval = |run: &Path| std::fs::read(run.join(phase).join("eval.json")).unwrap();
        assert!(eval(&straight) == eval(&killed), "{phase}: the evaluations differ");
    }
    let results = |run: &Path| {
        timeless(serde_json::from_slice(&std::fs::read(run.join("results.json")).unwrap()).unwrap())
    };
    assert_eq!(results(&straight), results(&killed));
    std::fs::remove_dir_all(&root).unwrap();
}

/// A tmpfs of `size` at `dir`, unmounted on drop; `None` where this process may not mount one
/// (not root), except in CI, where it must.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", dir.to_str().unwrap()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok || std::env::var("CI").is_err(), "CI runs as root and must mount a tmpfs");
        ok.then(|| Tmpfs(dir.into()))
    }

    fn resize(&self, size: &str) {
        let remount = format!("remount,size={size}");
        let status = Command::new("mount").args(["-o", &remount, self.0.to_str().unwrap()]).status().unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_the_checkpoint_and_keeps_the_one_before() {
    let root = scratch("full-disk");
    // One checkpoint of the tiny model is about 13 MB: the first fits, the second does not.
    let Some(disk) = Tmpfs::mount(&root, "20m") else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let run = root.join("run");
    let args = ["--sft-steps", "4", "--methods", "step_grpo", "--rl-steps", "1"];
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stepgrpo"));
    cmd.args(["train", "--quick", "--device", "cpu", "--output-dir", run.to_str().unwrap()]).args(args);
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for part in
        ["cannot write", "sft/checkpoint-2", "No space left on device", "earlier checkpoints are intact"]
    {
        assert!(err.contains(part), "{part:?} missing from: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    // The failed write gave its space back, and the checkpoint before it loads.
    assert!(temporaries(&run).is_empty(), "a temporary directory was left behind");
    let store = DirStore::new(&run);
    assert_eq!(store.dirs("sft").unwrap(), ["checkpoint-1"]);
    let template = stepgrpo_core::model::init(
        &stepgrpo_core::task::model_config(),
        &burn::tensor::Device::flex().autodiff(),
    );
    let restored = checkpoint::load(&store, "sft/checkpoint-1", template).unwrap();
    assert_eq!(restored.state.step, 1);

    // With room again, --resume continues from it to the end.
    disk.resize("200m");
    let out = cmd.arg("--resume").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains("resumed from") && err.contains("checkpoint-1"), "{err}");
    assert!(run.join("step_grpo/final/model.safetensors").exists());
    drop(disk);
    let _ = std::fs::remove_dir_all(&root);
}
