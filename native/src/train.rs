//! `stepgrpo train`: the command-line face of the core run driver. It builds the configuration,
//! runs every phase ([`Run::execute`]) with records going to `metrics.jsonl` files and progress
//! bars, then prints the comparison table and writes the plot and `results.json`.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Result;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use stepgrpo_core::error::Error;
use stepgrpo_core::model::write_atomic;
use stepgrpo_core::train::{DirStore, Event, Run, RunSink, Store, prepare};
use web_time::Instant;

use crate::report::{self, Row};
use crate::train_args::Args;

pub fn run(args: Args) -> Result<()> {
    let config = args.config()?;
    if args.seeds.is_empty() {
        return run_seed(config, &args);
    }
    // Every seed's run is checked before the first one starts.
    let root = config.output_dir.clone();
    let mut runs = Vec::new();
    for &seed in &args.seeds {
        let mut c = config.clone();
        c.seed = seed;
        c.output_dir = root.join(format!("seed-{seed}"));
        c.validate()?;
        runs.push(c);
    }
    for c in &runs {
        eprintln!("seed {}: {}", c.seed, c.output_dir.display());
        run_seed(c.clone(), &args)?;
    }
    report::across_seeds(&root, &runs)
}

/// One run of `config`: every phase, the table, the plot and `results.json`.
fn run_seed(config: stepgrpo_core::train::TrainConfig, args: &Args) -> Result<()> {
    let out = config.output_dir.clone();
    let store = DirStore::new(&out);
    store.write("config.toml", toml::to_string_pretty(&config)?.as_bytes())?;
    let selected = args.device.select();
    eprintln!("device: {}  run directory: {}", selected.description, out.display());
    let run_start = Instant::now();
    let sink = FileSink::new(&out);
    let (data, start) = prepare(&config, &selected.device.autodiff())?;
    let run = Run::new(config, data, start, Box::new(store), args.resume, &sink)?;
    let outcomes = run.execute(&sink)?;
    let mut rows: Vec<Row> = outcomes.iter().map(Row::from).collect();
    report::finish(&out, &run.config, &mut rows, run_start.elapsed().as_secs_f64())
}

/// Records into `{phase}/metrics.jsonl` under the run directory, progress as one bar per phase.
struct FileSink {
    root: PathBuf,
    progress: MultiProgress,
    phases: Mutex<HashMap<String, (File, ProgressBar)>>,
    evals: Mutex<HashMap<String, ProgressBar>>,
}

impl FileSink {
    fn new(root: &Path) -> Self {
        FileSink {
            root: root.into(),
            progress: MultiProgress::new(),
            phases: Mutex::new(HashMap::new()),
            evals: Mutex::new(HashMap::new()),
        }
    }

    /// Prints a line above the bars (also when stderr is not a terminal, where bars are hidden).
    fn say(&self, line: String) {
        self.progress.suspend(|| eprintln!("{line}"));
    }

    fn bar(&self, len: usize, prefix: &str) -> ProgressBar {
        let bar = self.progress.add(ProgressBar::new(len as u64).with_prefix(prefix.to_string()));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>24} [{bar:30}] {pos}/{len} {elapsed_precise} (eta {eta}) {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar
    }
}

/// Opens `path` for appending records, keeping only those up to step `keep_through` that an
/// interrupted run wrote (a resumed phase writes the later ones again; a line cut short by a kill
/// does not parse and goes too). The file is replaced whole, so a kill here loses nothing.
fn metrics_file(path: &Path, keep_through: usize) -> stepgrpo_core::Result<File> {
    let kept: Vec<String> = match std::fs::read_to_string(path) {
        Ok(text) if keep_through > 0 => text
            .lines()
            .filter(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .and_then(|v| v["step"].as_u64())
                    .is_some_and(|s| s as usize <= keep_through)
            })
            .map(|l| format!("{l}\n"))
            .collect(),
        _ => Vec::new(),
    };
    write_atomic(path, kept.concat().as_bytes())?;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|source| Error::Io { path: path.into(), source })
}

impl RunSink for FileSink {
    fn event(&self, phase: &str, event: Event<'_>) -> stepgrpo_core::Result<()> {
        let io = |path: &Path, source: std::io::Error| Error::Io { path: path.into(), source };
        let mut phases = self.phases.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            Event::Started { step, total, resumed_from } => {
                let dir = self.root.join(phase);
                std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
                let path = dir.join("metrics.jsonl");
                let file = metrics_file(&path, step)?;
                let bar = self.bar(total, phase);
                bar.set_position(step as u64);
                if let Some(from) = resumed_from {
                    self.say(format!("{phase}: resumed from {from}"));
                }
                phases.insert(phase.into(), (file, bar));
            }
            Event::Stepped { step, summary } => {
                if let Some((_, bar)) = phases.get(phase) {
                    bar.set_position(step as u64);
                    bar.set_message(summary.to_string());
                }
            }
            Event::Record(record) => {
                if let Some((file, _)) = phases.get_mut(phase) {
                    let path = self.root.join(phase).join("metrics.jsonl");
                    // One write per record: a kill leaves whole lines (and at most one cut short).
                    file.write_all(format!("{record}\n").as_bytes()).map_err(|e| io(&path, e))?;
                }
            }
            Event::Saved { .. } => {}
            Event::Evaluating { problems } => {
                let bar = self.bar(problems, "eval");
                bar.set_message(phase.to_string());
                self.evals.lock().unwrap_or_else(|p| p.into_inner()).insert(phase.into(), bar);
            }
            Event::Evaluated(_) => {
                if let Some(bar) = self.evals.lock().unwrap_or_else(|p| p.into_inner()).remove(phase) {
                    bar.finish_and_clear();
                }
            }
            Event::Finished { model, reused, .. } => {
                if let Some((_, bar)) = phases.remove(phase) {
                    bar.finish();
                }
                if reused {
                    self.say(format!("{phase}: already finished, loaded {model}"));
                }
            }
            Event::Note(note) => self.say(note.to_string()),
        }
        Ok(())
    }
}

impl From<&stepgrpo_core::train::Outcome> for Row {
    fn from(o: &stepgrpo_core::train::Outcome) -> Row {
        Row::new(&o.label, &o.report, o.early_exit_rate, o.train_seconds)
    }
}
