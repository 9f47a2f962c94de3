//! Fuzz targets of the command line's own parsers (harness and strategies:
//! `stepgrpo_tests::fuzz`): the TOML configuration of `train --config` with the flags over it, and
//! the JSONL input of `score`. `cargo test -p stepgrpo --bin stepgrpo fuzz` runs them with CI's
//! case counts; `STEPGRPO_FUZZ_CASES=N` runs N cases per target.

use clap::Parser;
use proptest::prelude::*;
use serde_json::Value;
use stepgrpo_core::reward::StepAwareReward;
use stepgrpo_core::train::TrainConfig;
use stepgrpo_tests::fuzz::inputs::{damaged, json_value, text};
use stepgrpo_tests::fuzz::{Scratch, bounded, config};

use crate::{Cli, Command};

/// Every key path of the built-in recipe's configuration with its value (tables included), and the
/// optional keys it leaves out, as a TOML file has them.
fn key_paths() -> Vec<(Vec<String>, toml::Value)> {
    fn walk(t: &toml::Table, at: &[String], out: &mut Vec<(Vec<String>, toml::Value)>) {
        for (k, v) in t {
            let path: Vec<String> = at.iter().cloned().chain([k.clone()]).collect();
            if let toml::Value::Table(inner) = v {
                walk(inner, &path, out);
            }
            out.push((path, v.clone()));
        }
    }
    let mut out = Vec::new();
    walk(&recipe_table(), &[], &mut out);
    let text = |s: &str| toml::Value::String(s.into());
    for (path, example) in [
        ("model", text("/nonexistent/model")),
        ("dtype", text("bf16")),
        ("train_data", text("train.jsonl")),
        ("eval_data", text("")),
        ("rl.lora.r", toml::Value::Integer(8)),
        ("rl.lora.lora_alpha", toml::Value::Float(16.0)),
        ("rl.lora.target_modules", toml::Value::Array(vec![text("q_proj")])),
    ] {
        out.push((path.split('.').map(str::to_string).collect(), example));
    }
    out
}

fn recipe_table() -> toml::Table {
    toml::Table::try_from(stepgrpo_core::train::builtin_recipe()).expect("the recipe serialises")
}

/// A TOML value of any kind, with the extremes: huge and negative integers, NaN, infinities,
/// hostile strings, dates, arrays and inline tables.
fn toml_value() -> BoxedStrategy<toml::Value> {
    prop_oneof![
        integer(),
        float(),
        any::<bool>().prop_map(toml::Value::Boolean),
        string(),
        Just(toml::Value::Datetime("1979-05-27T07:32:00Z".parse().expect("a TOML date"))),
    ]
    .prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(toml::Value::Array),
            prop::collection::vec(("[a-z_]{1,10}", inner), 0..4)
                .prop_map(|kv| toml::Value::Table(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

fn integer() -> BoxedStrategy<toml::Value> {
    prop_oneof![
        any::<i64>(),
        0i64..10,
        prop::sample::select(vec![0i64, -1, 1, 2, i64::MAX, i64::MIN, 1 << 32, 1 << 40, 1 << 62]),
    ]
    .prop_map(toml::Value::Integer)
    .boxed()
}

fn float() -> BoxedStrategy<toml::Value> {
    prop_oneof![
        any::<f64>(),
        -2.0f64..2.0,
        prop::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 1e308, 1e-308, 0.5, 1.0]),
    ]
    .prop_map(toml::Value::Float)
    .boxed()
}

fn string() -> BoxedStrategy<toml::Value> {
    let known = [
        "step_grpo",
        "grpo",
        "grpo_length_penalty",
        "all",
        "local",
        "vllm",
        "bf16",
        "k3",
        "token",
        "Wait",
        "",
    ];
    prop_oneof![
        2 => text().prop_map(|s| s.chars().take(5_000).collect::<String>()),
        1 => prop::sample::select(known.to_vec()).prop_map(str::to_string),
    ]
    .prop_map(toml::Value::String)
    .boxed()
}

/// A value of the same kind as `like` (what gets past the types to the checks of the values),
/// now and then one of any kind.
fn like(like: &toml::Value) -> BoxedStrategy<toml::Value> {
    let same = match like {
        toml::Value::Integer(_) => integer(),
        toml::Value::Float(_) => float(),
        toml::Value::Boolean(_) => any::<bool>().prop_map(toml::Value::Boolean).boxed(),
        toml::Value::String(_) => string(),
        toml::Value::Array(items) => match items.first() {
            Some(first) => {
                prop::collection::vec(self::like(first), 0..6).prop_map(toml::Value::Array).boxed()
            }
            None => prop::collection::vec(toml_value(), 0..3).prop_map(toml::Value::Array).boxed(),
        },
        _ => toml_value(),
    };
    prop_oneof![4 => same, 1 => toml_value()].boxed()
}

/// Sets `path` in `table` to `value`, making tables on the way (replacing what is not one).
fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut t = table;
    for p in parents {
        let entry = t.entry(p.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(inner) = entry else { unreachable!("made a table above") };
        t = inner;
    }
    t.insert(last.clone(), value);
}

/// One edit: a key of the configuration (or an unknown key under it) and its new value.
fn edit() -> impl Strategy<Value = (Vec<String>, toml::Value)> {
    (prop::sample::select(key_paths()), prop_oneof![6 => Just(None), 1 => "[a-z_]{1,8}".prop_map(Some)])
        .prop_flat_map(|((mut path, example), unknown)| {
            let value = match unknown {
                Some(key) => {
                    path.push(key);
                    toml_value()
                }
                None => like(&example),
            };
            (Just(path), value)
        })
}

/// A configuration file: a few keys (over the recipe, or alone) with hostile values, text spliced
/// in now and then; or a damaged copy of the recipe's file.
fn toml_file() -> impl Strategy<Value = Vec<u8>> {
    let full = toml::to_string(&recipe_table()).expect("a table prints");
    prop_oneof![
        6 => (prop::collection::vec(edit(), 1..6), any::<bool>(), prop::option::weighted(0.1, text())).prop_map(
            |(edits, whole, tail)| {
                let mut table = if whole { recipe_table() } else { toml::Table::new() };
                for (path, value) in edits {
                    set_path(&mut table, &path, value);
                }
                let mut text = toml::to_string(&table).unwrap_or_default();
                text.push_str(&tail.unwrap_or_default());
                text.into_bytes()
            }
        ),
        1 => damaged(full.into_bytes()),
    ]
}

/// Flags given over the file (none, most of the time), with values of the wrong kind now and then.
fn flags() -> impl Strategy<Value = Vec<String>> {
    let flag = prop::sample::select(
        &[
            "--seed",
            "--methods",
            "--sft-steps",
            "--rl-steps",
            "--learning-rate",
            "--num-generations",
            "--probe-threshold",
            "--eval-problems",
            "--lora-r",
            "--lora-alpha",
            "--lora-target-modules",
            "--rollout-engine",
            "--vllm-server-base-url",
            "--dtype",
        ][..],
    );
    let value = prop_oneof![
        prop::sample::select(
            &[
                "0",
                "1",
                "2",
                "-1",
                "0.5",
                "nan",
                "inf",
                "1e400",
                "18446744073709551616",
                "all",
                "grpo,,x",
                "",
                "bf16"
            ][..]
        )
        .prop_map(str::to_string),
        "[a-z0-9_,.:/-]{0,12}",
    ];
    let some = prop::collection::vec((flag, value, any::<bool>()), 1..4).prop_map(|fs| {
        let mut out = Vec::new();
        for (f, v, quick) in fs {
            out.extend([f.to_string(), v]);
            if quick {
                out.push("--quick".into());
            }
        }
        out
    });
    prop_oneof![2 => Just(Vec::new()), 1 => some]
}

/// `stepgrpo train --config FILE FLAGS` parsed, up to the validated configuration (no run).
fn train_config(file: &std::path::Path, flags: Vec<String>) -> anyhow::Result<TrainConfig> {
    let args = |flags: Vec<String>| {
        let head =
            ["stepgrpo".to_string(), "train".into(), "--config".into(), file.to_string_lossy().into_owned()];
        Cli::try_parse_from(head.into_iter().chain(flags))
    };
    // Clap refusing a flag's value is an answer too (`main` prints the usage); the file still gets read.
    let parsed = args(flags).or_else(|_| args(Vec::new()));
    let Ok(Cli { command: Command::Train(args) }) = parsed else { panic!("a bare --config parses") };
    args.config()
}

#[test]
fn regression_step_sizes_that_overflow_are_an_error() {
    // Found by `fuzz_toml_config` (seed 1): validation multiplied them, a panic in debug builds.
    let dir = Scratch::new("toml");
    for (file, key) in [
        ("[rl.rollout]\nnum_generations = 1152921504606846976\n", "rl.rollout.num_generations"),
        ("[rl]\nnum_iterations = 4611686018427387904\nsteps_per_generation = 4\n", "rl.num_iterations"),
    ] {
        let err = train_config(&dir.write("run.toml", file.as_bytes()), Vec::new()).unwrap_err();
        assert!(format!("{err:#}").contains(key), "{err:#}");
    }
}

proptest! {
    #![proptest_config(config(200))]

    /// `stepgrpo train --config FILE [flags]` up to the validated configuration (no run).
    #[test]
    fn fuzz_toml_config(file in toml_file(), flags in flags()) {
        bounded("TOML config", file.len(), move || {
            let dir = Scratch::new("toml");
            if let Err(e) = train_config(&dir.write("run.toml", &file), flags) {
                assert!(!format!("{e:#}").is_empty());
            }
        });
    }
}

/// A line of `score` input: a well-formed object with hostile fields, any JSON, or raw bytes.
fn score_line() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![3 => text().prop_map(Value::String), 1 => json_value()];
    prop_oneof![
        6 => (text(), field.clone(), field).prop_map(|(r, t, u)| {
            serde_json::json!({"response": r, "ground_truth": t, "uid": u}).to_string().into_bytes()
        }),
        1 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => Just(Vec::new()),
    ]
}

proptest! {
    #![proptest_config(config(150))]

    /// `stepgrpo score --input FILE`: the lines read, graded and rewarded.
    #[test]
    fn fuzz_score_input(lines in prop::collection::vec(score_line(), 0..8)) {
        let input = lines.join(&b"\n"[..]);
        bounded("score input", input.len(), move || {
            let reward = StepAwareReward::new(Default::default()).expect("defaults are valid");
            match crate::score::score_lines(std::io::Cursor::new(input), "in.jsonl", &reward) {
                Ok(out) => assert!(out.iter().all(|o| o.overall.is_finite())),
                Err(e) => assert!(format!("{e:#}").contains("in.jsonl"), "the error names the file: {e:#}"),
            }
        });
    }
}
