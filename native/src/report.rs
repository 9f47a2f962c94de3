//! The end of a run: the comparison table (the paper's Table 1 for this task), `results.json`, and
//! an SVG plot of reward, accuracy, tokens and steps per training step for every method.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use stepgrpo_core::model::write_atomic;
use stepgrpo_core::train::{EvalReport, TrainConfig};

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `sft`, `base` or a method's name.
    pub method: String,
    /// Held-out accuracy.
    pub accuracy: f64,
    /// Accuracy minus the starting model's, on the same problems.
    pub accuracy_vs_start: f64,
    /// Standard error of `accuracy_vs_start`, from the per-problem differences (a paired estimate:
    /// both models answer the same problems, so problem difficulty cancels).
    pub accuracy_vs_start_se: f64,
    /// Mean response tokens.
    pub mean_tokens: f64,
    /// Mean steps.
    pub mean_steps: f64,
    /// Mean tokens relative to the starting model's.
    pub tokens_relative: f64,
    /// Response tokens per correct answer; none without a correct one.
    pub tokens_per_correct: Option<f64>,
    /// Share of training rollouts a probe ended (last 10 steps); none for the starting model.
    pub early_exit_rate: Option<f64>,
    /// Seconds of training (wall clock; 0 for a starting model that was not trained).
    pub wall_seconds: f64,
    /// Per held-out problem, whether the answer was right.
    #[serde(skip)]
    correct: Vec<bool>,
}

impl Row {
    pub fn new(method: &str, r: &EvalReport, early_exit_rate: Option<f64>, wall_seconds: f64) -> Row {
        Row {
            method: method.into(),
            accuracy: r.stats.accuracy,
            accuracy_vs_start: 0.0,
            accuracy_vs_start_se: 0.0,
            mean_tokens: r.stats.mean_tokens,
            mean_steps: r.stats.mean_steps,
            tokens_relative: 1.0,
            tokens_per_correct: r.stats.tokens_per_correct,
            early_exit_rate,
            wall_seconds,
            correct: r.samples.iter().map(|s| s.correct).collect(),
        }
    }
}

/// Mean and standard error of the per-problem differences `a - b` of two graded runs.
fn paired_difference(a: &[bool], b: &[bool]) -> (f64, f64) {
    let n = a.len().min(b.len());
    if n == 0 {
        return (0.0, 0.0);
    }
    let d: Vec<f64> =
        a.iter().zip(b).map(|(&x, &y)| f64::from(u8::from(x)) - f64::from(u8::from(y))).collect();
    let mean = d.iter().sum::<f64>() / n as f64;
    let var = if n > 1 { d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64 } else { 0.0 };
    (mean, (var / n as f64).sqrt())
}

/// Prints the table and writes `results.json` and `plot.svg` into `out`.
pub fn finish(out: &Path, config: &TrainConfig, rows: &mut [Row], wall_seconds: f64) -> Result<()> {
    let base_tokens = rows[0].mean_tokens.max(1e-9);
    let base_correct = rows[0].correct.clone();
    for r in rows.iter_mut() {
        r.tokens_relative = r.mean_tokens / base_tokens;
        (r.accuracy_vs_start, r.accuracy_vs_start_se) = paired_difference(&r.correct, &base_correct);
    }
    let problems = base_correct.len();
    println!("\n{}", table(rows, problems));
    let results = serde_json::json!({
        "seed": config.seed,
        "eval_problems": problems,
        "eval": { "temperature": config.eval.temperature, "top_p": config.eval.top_p, "probes": config.eval.deer },
        "wall_seconds": wall_seconds,
        "methods": rows,
    });
    write_atomic(&out.join("results.json"), &serde_json::to_vec_pretty(&results)?)?;
    let names: Vec<&str> = config.methods.iter().map(|m| m.name()).collect();
    write_atomic(&out.join("plot.svg"), plot(out, &names)?.as_bytes())?;
    println!("wrote {0}/results.json and {0}/plot.svg ({1:.0} s in all)", out.display(), wall_seconds);
    Ok(())
}

/// Mean and sample standard deviation (0 for one value).
fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 { xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

/// The figures of one method over several seeds' runs.
#[derive(Debug, Default, Serialize)]
struct AcrossSeeds {
    method: String,
    seeds: Vec<u64>,
    /// Per figure: each seed's value, in `seeds`' order.
    accuracy: Vec<f64>,
    accuracy_vs_start: Vec<f64>,
    accuracy_vs_start_se: Vec<f64>,
    tokens_relative: Vec<f64>,
    mean_tokens: Vec<f64>,
    mean_steps: Vec<f64>,
    early_exit_rate: Vec<Option<f64>>,
}

/// After one run per seed (`runs`, each with its `results.json` written): prints one table of
/// each figure's mean and standard deviation over the seeds and writes `seeds.json` into `root`.
pub fn across_seeds(root: &Path, runs: &[TrainConfig]) -> Result<()> {
    let mut methods: Vec<AcrossSeeds> = Vec::new();
    for c in runs {
        let path = c.output_dir.join("results.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let results: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", path.display()))?;
        let rows =
            results["methods"].as_array().with_context(|| format!("{}: no methods", path.display()))?;
        for r in rows {
            let name = r["method"].as_str().unwrap_or_default().to_string();
            let i = match methods.iter().position(|m| m.method == name) {
                Some(i) => i,
                None => {
                    methods.push(AcrossSeeds { method: name, ..AcrossSeeds::default() });
                    methods.len() - 1
                }
            };
            let m = &mut methods[i];
            let f = |key: &str| r[key].as_f64().unwrap_or(f64::NAN);
            m.seeds.push(c.seed);
            m.accuracy.push(f("accuracy"));
            m.accuracy_vs_start.push(f("accuracy_vs_start"));
            m.accuracy_vs_start_se.push(f("accuracy_vs_start_se"));
            m.tokens_relative.push(f("tokens_relative"));
            m.mean_tokens.push(f("mean_tokens"));
            m.mean_steps.push(f("mean_steps"));
            m.early_exit_rate.push(r["early_exit_rate"].as_f64());
        }
    }
    let seeds: Vec<String> = runs.iter().map(|c| c.seed.to_string()).collect();
    println!("\n{}", seeds_table(&methods, &seeds.join(",")));
    let path = root.join("seeds.json");
    write_atomic(&path, &serde_json::to_vec_pretty(&serde_json::json!({ "methods": methods }))?)?;
    println!("wrote {}", path.display());
    Ok(())
}

fn seeds_table(methods: &[AcrossSeeds], seeds: &str) -> String {
    let pm = |xs: &[f64], scale: f64, digits: usize| {
        let (m, sd) = mean_sd(xs);
        format!("{:.digits$} ± {:.digits$}", scale * m, scale * sd)
    };
    let mut s = format!(
        "{:<26} {:>13} {:>13} {:>12} {:>13} {:>11} {:>11}\n",
        "method", "accuracy %", "vs start", "tokens", "vs start %", "steps", "early exit %"
    );
    for (i, m) in methods.iter().enumerate() {
        let exits: Vec<f64> = m.early_exit_rate.iter().flatten().copied().collect();
        let _ = writeln!(
            s,
            "{:<26} {:>13} {:>13} {:>12} {:>13} {:>11} {:>11}",
            m.method,
            pm(&m.accuracy, 100.0, 1),
            if i == 0 { "-".into() } else { pm(&m.accuracy_vs_start, 100.0, 1) },
            pm(&m.mean_tokens, 1.0, 1),
            pm(&m.tokens_relative, 100.0, 0),
            pm(&m.mean_steps, 1.0, 2),
            if exits.is_empty() { "-".into() } else { pm(&exits, 100.0, 0) },
        );
    }
    let _ = write!(
        s,
        "(seeds {seeds}: mean ± standard deviation over the seeds; each seed's figures are in its \
         results.json, with the paired standard error of its own difference)"
    );
    s
}

fn table(rows: &[Row], n: usize) -> String {
    let mut s = format!(
        "{:<26} {:>9} {:>12} {:>8} {:>9} {:>6} {:>11} {:>10} {:>7}\n",
        "method", "accuracy", "vs start", "tokens", "vs start", "steps", "tok/correct", "early exit", "train"
    );
    for (i, r) in rows.iter().enumerate() {
        let exit = r.early_exit_rate.map_or("-".to_string(), |e| format!("{:.0}%", 100.0 * e));
        let per_correct = r.tokens_per_correct.map_or("-".to_string(), |t| format!("{t:.1}"));
        let delta = if i == 0 {
            "-".to_string()
        } else {
            format!("{:+.1} ± {:.1}", 100.0 * r.accuracy_vs_start, 100.0 * r.accuracy_vs_start_se)
        };
        let _ = writeln!(
            s,
            "{:<26} {:>8.1}% {:>12} {:>8.1} {:>8.0}% {:>6.2} {:>11} {:>10} {:>6.0}s",
            r.method,
            100.0 * r.accuracy,
            delta,
            r.mean_tokens,
            100.0 * r.tokens_relative,
            r.mean_steps,
            per_correct,
            exit,
            r.wall_seconds
        );
    }
    let _ = write!(
        s,
        "({n} held-out problems; accuracy vs start: points, ± the standard error of the per-problem \
         differences)"
    );
    s
}

const PANELS: [(&str, &str); 4] = [
    ("reward", "reward"),
    ("accuracy", "accuracy"),
    ("completions/mean_length", "tokens"),
    ("steps/mean", "steps"),
];
const COLORS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

/// Four panels (reward, accuracy, tokens, steps of the training rollouts), one line per method.
fn plot(out: &Path, methods: &[&str]) -> Result<String> {
    let series: Vec<Vec<serde_json::Value>> = methods
        .iter()
        .map(|m| {
            let text = std::fs::read_to_string(out.join(m).join("metrics.jsonl")).unwrap_or_default();
            text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
        })
        .collect();
    let (w, h, pad) = (360.0, 220.0, 40.0);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="11">"#,
        2.0 * w,
        2.0 * h + 30.0
    );
    for (i, (key, title)) in PANELS.iter().enumerate() {
        let (x0, y0) = ((i % 2) as f64 * w, (i / 2) as f64 * h);
        let points: Vec<Vec<(f64, f64)>> = series
            .iter()
            .map(|s| s.iter().filter_map(|r| Some((r["step"].as_f64()?, r[*key].as_f64()?))).collect())
            .collect();
        let all = points.iter().flatten();
        let (xmax, ymin, ymax) =
            all.fold((1.0f64, f64::MAX, f64::MIN), |(a, b, c), &(x, y)| (a.max(x), b.min(y), c.max(y)));
        let (ymin, ymax) = if ymin > ymax {
            (0.0, 1.0)
        } else if ymax - ymin < 1e-9 {
            (ymin - 0.5, ymax + 0.5)
        } else {
            (ymin, ymax)
        };
        let sx = |x: f64| x0 + pad + (x / xmax) * (w - 1.5 * pad);
        let sy = |y: f64| y0 + h - pad - (y - ymin) / (ymax - ymin) * (h - 1.8 * pad);
        let _ = write!(
            svg,
            r##"<rect x="{:.0}" y="{:.0}" width="{:.0}" height="{:.0}" fill="none" stroke="#999"/><text x="{:.0}" y="{:.0}" font-weight="bold">{title}</text><text x="{:.0}" y="{:.0}">{ymax:.2}</text><text x="{:.0}" y="{:.0}">{ymin:.2}</text><text x="{:.0}" y="{:.0}">step {xmax:.0}</text>"##,
            x0 + pad,
            y0 + 0.8 * pad,
            w - 1.5 * pad,
            h - 1.8 * pad,
            x0 + pad,
            y0 + 0.6 * pad,
            x0 + 2.0,
            sy(ymax) + 4.0,
            x0 + 2.0,
            sy(ymin),
            sx(xmax) - 40.0,
            y0 + h - pad + 14.0
        );
        for (m, pts) in points.iter().enumerate() {
            let path: Vec<String> = pts.iter().map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y))).collect();
            let _ = write!(
                svg,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>"#,
                COLORS[m % COLORS.len()],
                path.join(" ")
            );
        }
    }
    for (m, name) in methods.iter().enumerate() {
        let x = 10.0 + m as f64 * 2.0 * w / methods.len().max(1) as f64;
        let _ = write!(
            svg,
            r#"<rect x="{x:.0}" y="{:.0}" width="12" height="4" fill="{}"/><text x="{:.0}" y="{:.0}">{name}</text>"#,
            2.0 * h + 12.0,
            COLORS[m % COLORS.len()],
            x + 16.0,
            2.0 * h + 18.0
        );
    }
    svg.push_str("</svg>\n");
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::paired_difference;

    #[test]
    fn paired_difference_is_the_mean_and_standard_error_of_per_problem_differences() {
        // Differences 1, 1, 0, 0, -1: mean 0.2, sample variance 0.7.
        let a = [true, true, true, false, false];
        let b = [false, false, true, false, true];
        let (mean, se) = paired_difference(&a, &b);
        assert!((mean - 0.2).abs() < 1e-12);
        assert!((se - (0.7f64 / 5.0).sqrt()).abs() < 1e-12);
        assert_eq!(paired_difference(&a, &a), (0.0, 0.0));
    }
}
