//! The `stepgrpo` binary end to end: JSON outputs and clear errors with a non-zero exit code.

use std::process::Command;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");

fn stepgrpo(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stepgrpo")).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn generate_greedy_json_matches_transformers() {
    let model = format!("{FIXTURES}/hf/llama-tiny-bf16");
    let (ok, out, err) = stepgrpo(&[
        "generate",
        "--model",
        &model,
        "--prompt-ids",
        "176,41,207,218,318,313",
        "--max-new-tokens",
        "16",
        "--greedy",
        "--json",
        "--device",
        "cpu",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let expected = [218, 376, 159, 9, 52, 374, 219, 192, 279, 41, 52, 7, 246, 170, 121, 2];
    assert_eq!(v["ids"], serde_json::json!(expected));
    assert_eq!(v["finish"], "eos");
}

#[test]
fn tokenize_json_matches_python_tokenizers() {
    let dir = format!("{FIXTURES}/qwen3-tokenizer");
    let (ok, out, err) =
        stepgrpo(&["tokenize", "--tokenizer", &dir, "--text", "\n**Final Answer**\n\\boxed", "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ids"], serde_json::json!([198, 334, 19357, 21806, 1019, 59, 79075]));
}

#[test]
fn bad_input_exits_non_zero_naming_the_culprit() {
    let (ok, _, err) =
        stepgrpo(&["generate", "--model", "/no/such/model", "--prompt-ids", "1", "--device", "cpu"]);
    assert!(!ok && err.contains("/no/such/model/config.json"), "{err}");
    let model = format!("{FIXTURES}/hf/qwen3-tiny");
    let (ok, _, err) = stepgrpo(&["generate", "--model", &model, "--prompt-ids", "1,384", "--device", "cpu"]);
    assert!(!ok && err.contains("384"), "{err}");
    let (ok, _, err) = stepgrpo(&["generate", "--model", &model, "--prompt-ids", "1", "--device", "tpu"]);
    assert!(!ok && err.contains("tpu"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn regression_generate_past_the_context_is_an_error() {
    // The fixture's context is 256 positions; this ran on past it without a word.
    let model = format!("{FIXTURES}/hf/qwen3-tiny");
    let args =
        ["generate", "--model", &model, "--prompt-ids", "1,2,3", "--device", "cpu", "--max-new-tokens"];
    let (ok, _, err) = stepgrpo(&[&args[..], &["100000000"]].concat());
    assert!(!ok && err.contains("--max-new-tokens") && err.contains("256"), "{err}");
    assert!(err.contains("max_position_embeddings") && err.contains("at most 253"), "{err}");
    let (ok, _, err) = stepgrpo(&[&args[..], &["253", "--greedy"]].concat());
    assert!(ok, "the whole context is usable: {err}");
}

#[test]
fn bench_reports_json() {
    let model = format!("{FIXTURES}/hf/qwen3-tiny");
    let (ok, out, err) = stepgrpo(&[
        "bench",
        "--model",
        &model,
        "--batch",
        "2",
        "--prompt-len",
        "8",
        "--new-tokens",
        "4",
        "--repeat",
        "1",
        "--json",
        "--device",
        "cpu",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for key in ["prefill_tokens_per_s", "decode_tokens_per_s", "train_step_s"] {
        assert!(v[key].as_f64().unwrap() > 0.0, "{key}: {out}");
    }
}

/// `bench --rollout`: plain, early-stopped and full probes decode the same tokens, the early stop
/// fewer probe tokens.
#[test]
fn bench_rollout_compares_probes_with_and_without_the_early_stop() {
    let dir = std::env::temp_dir().join(format!("stepgrpo-cli-bench-rollout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "generation_config.json", "model.safetensors"] {
        std::fs::copy(format!("{FIXTURES}/hf/qwen3-tiny/{f}"), dir.join(f)).unwrap();
    }
    // A word-level tokenizer over the fixture's ids, eight of them (100-107) trigger words.
    let triggers = ["Wait", "But", "Hmm", "Alternatively", "Check", "So", "Also", "Then"];
    let words: Vec<(u32, &str)> = (100..).zip(triggers).collect();
    let tokenizer = stepgrpo_tests::word_tokenizer_json(&words);
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    let (ok, out, err) = stepgrpo(&[
        "bench",
        "--model",
        dir.to_str().unwrap(),
        "--batch",
        "4",
        "--prompt-len",
        "8",
        "--new-tokens",
        "96",
        "--repeat",
        "1",
        "--rollout",
        "--triggers",
        &triggers.join(","),
        "--json",
        "--device",
        "cpu",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let r = &v["rollout"];
    let count = |key: &str| r[key].as_u64().unwrap_or_else(|| panic!("{key}: {out}"));
    assert!(count("probes") > 0, "the test needs probes: {out}");
    assert!(count("probe_tokens") < count("full_probe_tokens"), "{out}");
    assert_eq!(count("tokens"), 4 * 96, "no probe exits and every row runs to its length: {out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn score_reproduces_every_reference_reward_case() {
    let cases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{FIXTURES}/reward/cases.json")).unwrap()).unwrap();
    let input = std::env::temp_dir().join(format!("stepgrpo-score-{}.jsonl", std::process::id()));
    let lines: Vec<String> = cases["batch"].as_array().unwrap().iter().map(|b| b.to_string()).collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    for case in cases["reward_cases"].as_array().unwrap() {
        let c = &case["config"];
        let (alpha, beta) = (c["alpha"].to_string(), c["beta"].to_string());
        let triggers: Vec<&str> =
            c["triggers"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        let triggers = triggers.join(",");
        let mut args = vec!["score", "--input", input.to_str().unwrap(), "--alpha", &alpha, "--beta", &beta];
        args.extend(["--triggers", &triggers]);
        if c["correct_mean"] == false {
            args.push("--all-sample-mean");
        }
        if c["step_reward"] == false {
            args.push("--no-step-reward");
        }
        let (ok, out, err) = stepgrpo(&args);
        assert!(ok, "{err}");
        let got: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let want = case["outputs"].as_array().unwrap();
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let name = case["name"].as_str().unwrap();
            let diff = (g["overall"].as_f64().unwrap() - w["overall"].as_f64().unwrap()).abs();
            assert!(diff < 1e-12, "{name} line {i}: {g} vs {w}");
            for key in ["accuracy", "format", "steps", "step_mean"] {
                assert_eq!(g[key], w[key], "{name} line {i}: {key}");
            }
        }
    }
    std::fs::write(
        &input,
        "{\"response\": \"\\\\boxed{1}\", \"ground_truth\": \"1\", \"uid\": 0}\nnot json\n",
    )
    .unwrap();
    let (ok, _, err) = stepgrpo(&["score", "--input", input.to_str().unwrap()]);
    assert!(!ok && err.contains("line 2"), "{err}");
    std::fs::remove_file(input).unwrap();
}

#[test]
fn segment_prints_steps() {
    let (ok, out, err) =
        stepgrpo(&["segment", "--text", "So 2+2=4. Wait, is it? Waiting... Wait. Yes", "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["steps"], 3);
    assert_eq!(v["spans"][1]["text"], "Wait, is it? Waiting... ");
}

/// `--seeds`: one run per seed in its own directory, then one table over the seeds.
#[test]
fn train_seeds_runs_each_seed_and_summarises_them() {
    let dir = std::env::temp_dir().join(format!("stepgrpo-cli-seeds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = dir.to_str().unwrap();
    let args = [
        "train",
        "--quick",
        "--output-dir",
        out,
        "--device",
        "cpu",
        "--methods",
        "step_grpo",
        "--seeds",
        "3,4",
    ];
    let (ok, stdout, err) = stepgrpo(&args);
    assert!(ok, "{err}");
    assert!(stdout.contains("seeds 3,4") && stdout.contains("±"), "{stdout}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("seeds.json")).unwrap()).unwrap();
    let step_grpo = &summary["methods"][1];
    assert_eq!(step_grpo["method"], "step_grpo");
    assert_eq!(step_grpo["seeds"], serde_json::json!([3, 4]));
    for seed in [3, 4] {
        let config = std::fs::read_to_string(dir.join(format!("seed-{seed}/config.toml"))).unwrap();
        assert!(config.contains(&format!("seed = {seed}")), "{config}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `recipe` prints a recipe's own file, or every value it resolves to.
#[test]
fn recipe_prints_the_files_and_their_resolved_values() {
    let (ok, stdout, err) = stepgrpo(&["recipe", "builtin"]);
    assert!(ok, "{err}");
    assert_eq!(stdout.trim(), include_str!("../../recipes/builtin.toml").trim());
    let (ok, stdout, err) = stepgrpo(&["recipe", "builtin", "--resolved"]);
    assert!(ok, "{err}");
    assert!(
        stdout.contains("probe_threshold = 0.999") && stdout.contains("loss_type = \"dapo\""),
        "{stdout}"
    );
    let (ok, _, err) = stepgrpo(&["recipe", "nope"]);
    assert!(!ok && err.contains("builtin"), "{err}");
}

/// The main job in its smoke size: every phase runs, the table, results and plot appear, a finished
/// model evaluates from its directory, and `--resume` reuses what is done.
#[test]
fn train_quick_writes_results_and_resumes() {
    let dir = std::env::temp_dir().join(format!("stepgrpo-cli-train-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = dir.to_str().unwrap();
    let (ok, stdout, err) = stepgrpo(&["train", "--quick", "--output-dir", out, "--device", "cpu"]);
    assert!(ok, "{err}");
    assert!(stdout.contains("step_grpo") && stdout.contains("accuracy"), "{stdout}");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    let methods: Vec<&str> =
        results["methods"].as_array().unwrap().iter().map(|m| m["method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["sft", "step_grpo", "grpo", "grpo_length_penalty"]);
    assert_eq!(results["methods"][0]["tokens_relative"], 1.0);
    assert!(std::fs::read_to_string(dir.join("plot.svg")).unwrap().contains("<polyline"));
    let metrics = std::fs::read_to_string(dir.join("step_grpo/metrics.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(metrics.lines().next().unwrap()).unwrap();
    for key in [
        "reward",
        "reward_std",
        "completions/mean_length",
        "steps/mean",
        "early_exit/rate",
        "early_exit/accuracy",
        "kl",
    ] {
        assert!(first.get(key).is_some(), "{key} missing from {first}");
    }
    assert!(dir.join("step_grpo/checkpoint-1/optimizer.bpk").exists());

    let model = dir.join("step_grpo/final");
    let (ok, stdout, err) =
        stepgrpo(&["eval", "--model", model.to_str().unwrap(), "--problems", "8", "--device", "cpu"]);
    assert!(ok, "{err}");
    let stats: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(stats["responses"], 8);

    let (ok, _, err) = stepgrpo(&["train", "--quick", "--output-dir", out, "--device", "cpu", "--resume"]);
    assert!(ok, "{err}");
    assert!(err.contains("sft: already finished") && err.contains("grpo: already finished"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn train_rejects_bad_options_before_any_work() {
    let (ok, _, err) = stepgrpo(&["train", "--methods", "step_grpo,ppo", "--device", "cpu"]);
    assert!(!ok);
    assert!(err.contains("`ppo` is not one of"), "{err}");
    let dir = std::env::temp_dir().join(format!("stepgrpo-cli-badcfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[rl]\nprompts_per_step = 6\ngradient_accumulation_steps = 49\n").unwrap();
    let (ok, _, err) = stepgrpo(&["train", "--config", path.to_str().unwrap(), "--device", "cpu"]);
    assert!(!ok);
    assert!(err.contains("rl.gradient_accumulation_steps"), "{err}");
    std::fs::write(&path, "[rl]\nmax_stepz = 3\n").unwrap();
    let (ok, _, err) = stepgrpo(&["train", "--config", path.to_str().unwrap(), "--device", "cpu"]);
    assert!(!ok);
    assert!(err.contains("bad.toml") && err.contains("max_stepz"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A random Qwen3 with the real Qwen3 tokenizer: 151,936 embedding rows for the tokenizer's 151,669
/// ids, as every Qwen2/2.5/3 checkpoint has.
fn random_qwen3(dir: &std::path::Path) {
    use stepgrpo_core::model::{self, ModelConfig};
    let mut raw: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{FIXTURES}/hf/qwen3-tiny/config.json")).unwrap())
            .unwrap();
    for (key, value) in [
        ("vocab_size", 151_936),
        ("hidden_size", 32),
        ("intermediate_size", 64),
        ("num_attention_heads", 2),
        ("num_key_value_heads", 1),
        ("head_dim", 16),
        ("max_position_embeddings", 512),
        ("eos_token_id", 151_645),
    ] {
        raw[key] = value.into();
    }
    let config = ModelConfig::from_hf_json(&raw).unwrap();
    let device = burn::tensor::Device::flex();
    device.seed(5);
    pollster::block_on(model::save(&model::init(&config, &device), dir)).unwrap();
    for file in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(format!("{FIXTURES}/qwen3-tokenizer/{file}"), dir.join(file)).unwrap();
    }
}

/// GSM8K-style lines: 30 distinct questions, the first 4 of them twice.
fn gsm8k_lines() -> String {
    let line = |i: usize| {
        let (a, b) = (i + 3, 2 * i + 1);
        format!(
            "{{\"question\": \"Tom has {a} apples and buys {b} more. How many apples does he have?\", \"answer\": \"{a} + {b} = {}\\n#### {}\"}}\n",
            a + b,
            a + b
        )
    };
    (0..30).chain(0..4).map(line).collect()
}

/// A fresh scratch directory `stepgrpo-cli-{name}` with a random Qwen3 (`model/`, see
/// [`random_qwen3`]) and GSM8K-style training problems (`train.jsonl`).
fn hf_workspace(name: &str) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let root = std::env::temp_dir().join(format!("stepgrpo-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let model_dir = root.join("model");
    random_qwen3(&model_dir);
    let data = root.join("train.jsonl");
    std::fs::write(&data, gsm8k_lines()).unwrap();
    (root, model_dir, data)
}

/// `stepgrpo train --model` on a Hugging Face model as a user runs it: the release's defaults, a
/// held-out split that shares no problem with training, RL steps on the CPU and on wgpu, a
/// checkpoint inside a generation of rollouts that reloads to the same logits.
#[test]
fn train_a_hugging_face_model_with_the_release_defaults() {
    use stepgrpo_core::model;
    use stepgrpo_core::train::{DirStore, Store, checkpoint};

    let (root, model_dir, data) = hf_workspace("hf");
    // Only the sizes shrink; every algorithm setting is the default.
    let small = root.join("small.toml");
    std::fs::write(
        &small,
        "save_steps = 1\n[rl]\nprompts_per_step = 2\nsteps_per_generation = 2\n[rl.rollout]\nnum_generations = 2\n\
         max_completion_length = 16\n[eval]\nnum_problems = 6\nmax_completion_length = 8\neval_steps = 0\n",
    )
    .unwrap();
    for device in ["cpu", "wgpu"] {
        let out = root.join(format!("run-{device}"));
        let (ok, _, err) = stepgrpo(&[
            "train",
            "--model",
            model_dir.to_str().unwrap(),
            "--train-data",
            data.to_str().unwrap(),
            "--methods",
            "step_grpo",
            "--rl-steps",
            "2",
            "--config",
            small.to_str().unwrap(),
            "--output-dir",
            out.to_str().unwrap(),
            "--device",
            device,
        ]);
        assert!(ok, "{device}: {err}");
        assert!(!err.contains("panicked"), "{err}");

        // The configuration written is the paper's release setting.
        let config: toml::Table =
            toml::from_str(&std::fs::read_to_string(out.join("config.toml")).unwrap()).unwrap();
        let t = &config["rl"]["rollout"]["truncation"];
        assert_eq!(t["probe_threshold"].as_float(), Some(0.95));
        assert_eq!(t["strict"].as_bool(), Some(true));
        assert_eq!((t["max_probes"].as_integer(), t["probe_max_tokens"].as_integer()), (Some(10), Some(20)));
        assert_eq!(t["inducer"].as_str(), Some("\n**Final Answer**\n\\boxed"));
        assert_eq!(t["probe_stop"].as_str(), Some("</think>"));
        assert_eq!(t["think_budget_ratio"].as_float(), Some(0.9));
        let reward = &config["rl"]["reward"];
        assert_eq!((reward["alpha"].as_float(), reward["step_beta"].as_float()), (Some(0.9), Some(0.5)));
        assert_eq!(config["rl"]["grpo"]["beta"].as_float(), Some(0.01));
        assert_eq!(config["rl"]["grpo"]["kl_estimator"].as_str(), Some("k3"));
        assert_eq!(
            (config["eval"]["temperature"].as_float(), config["eval"]["top_p"].as_float()),
            (Some(0.6), Some(0.9))
        );

        // Six distinct problems held out, and every copy of them left out of training.
        assert!(err.contains("held out 6 distinct problems") && err.contains("of its 34 problems"), "{err}");
        let eval: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("base/eval.json")).unwrap()).unwrap();
        let prompts: std::collections::HashSet<&str> =
            eval["samples"].as_array().unwrap().iter().map(|s| s["prompt"].as_str().unwrap()).collect();
        assert_eq!(prompts.len(), 6);
        let twice =
            (0..4).filter(|i| prompts.iter().any(|p| p.contains(&format!("has {} apples", i + 3)))).count();
        assert!(err.contains(&format!("training on the other {} of its 34", 34 - 6 - twice)), "{err}");

        let metrics = std::fs::read_to_string(out.join("step_grpo/metrics.jsonl")).unwrap();
        let records: Vec<serde_json::Value> =
            metrics.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(records.len(), 2, "{metrics}");
        for r in &records {
            assert!(r["loss"].as_f64().unwrap().is_finite() && r["entropy"].as_f64().unwrap() > 0.0, "{r}");
        }

        // Step 1 falls inside a generation of two steps: the checkpoint carries its rollouts, and
        // its HF weights and its exact training record give the same logits.
        let store = DirStore::new(&out);
        let dir = checkpoint::latest(&store, "step_grpo").unwrap().unwrap();
        assert!(store.read(&format!("{dir}/generation.json")).unwrap().is_some());
        let cpu = burn::tensor::Device::flex();
        let hf = model::load(&store.path(&dir), &cpu).unwrap();
        let fresh = model::load(&model_dir, &cpu).unwrap();
        let exact = checkpoint::load(&store, &dir, fresh).unwrap().model;
        let ids =
            burn::tensor::Tensor::<2, burn::tensor::Int>::from_ints([[151_644, 872, 198, 3838, 374]], &cpu);
        let logits = |m: &model::CausalLm| m.forward(ids.clone()).into_data().try_to_vec::<f32>().unwrap();
        let (a, b) = (logits(&hf), logits(&exact));
        let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(diff < 1e-6, "{device}: the checkpoint's two copies differ by {diff}");
        assert!(model::load(&out.join("step_grpo/final"), &cpu).is_ok());
    }
    std::fs::remove_dir_all(&root).unwrap();
}

/// LoRA with gradient checkpointing on a Hugging Face model, as a user runs it: `--lora-*` flags
/// over a TOML file, only the adapters train, the saved adapter is PEFT's, and `stepgrpo merge`
/// folds it into the base to the logits of the run's merged `final/`.
#[test]
fn train_lora_adapters_then_merge_them() {
    use stepgrpo_core::model;

    let (root, model_dir, data) = hf_workspace("lora");
    let small = root.join("small.toml");
    std::fs::write(
        &small,
        "save_steps = 1\n[rl]\nprompts_per_step = 2\nsteps_per_generation = 1\ngradient_checkpointing = true\n\
         [rl.rollout]\nnum_generations = 2\nmax_completion_length = 12\n\
         [eval]\nnum_problems = 4\nmax_completion_length = 4\neval_steps = 0\n",
    )
    .unwrap();
    let out = root.join("run");
    let (ok, _, err) = stepgrpo(&[
        "train",
        "--model",
        model_dir.to_str().unwrap(),
        "--train-data",
        data.to_str().unwrap(),
        "--methods",
        "step_grpo",
        "--rl-steps",
        "1",
        "--config",
        small.to_str().unwrap(),
        "--lora-r",
        "4",
        "--lora-target-modules",
        "q_proj,v_proj,down_proj",
        "--output-dir",
        out.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(ok, "{err}");
    let config: toml::Table =
        toml::from_str(&std::fs::read_to_string(out.join("config.toml")).unwrap()).unwrap();
    let lora = &config["rl"]["lora"];
    assert_eq!((lora["r"].as_integer(), lora["lora_alpha"].as_float()), (Some(4), Some(16.0)));
    let adapter = out.join("step_grpo/final/adapter");
    let peft: serde_json::Value =
        serde_json::from_slice(&std::fs::read(adapter.join("adapter_config.json")).unwrap()).unwrap();
    assert_eq!(peft["target_modules"], serde_json::json!(["q_proj", "v_proj", "down_proj"]));
    assert_eq!(peft["base_model_name_or_path"].as_str(), model_dir.to_str());

    let merged = root.join("merged");
    let (ok, _, err) = stepgrpo(&[
        "merge",
        "--model",
        model_dir.to_str().unwrap(),
        "--adapter",
        adapter.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(ok, "{err}");
    let cpu = burn::tensor::Device::flex();
    let ids = burn::tensor::Tensor::<2, burn::tensor::Int>::from_ints([[151_644, 872, 198, 3838, 374]], &cpu);
    let logits = |dir: &std::path::Path| {
        model::load(dir, &cpu).unwrap().forward(ids.clone()).into_data().try_to_vec::<f32>().unwrap()
    };
    // (Whether the step moved the adapters depends on its rewards; the built-in task's test checks that.)
    let (trained, folded) = (logits(&out.join("step_grpo/final")), logits(&merged));
    let diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(
        diff(&trained, &folded) < 1e-5,
        "merge differs from the run's final/ by {}",
        diff(&trained, &folded)
    );
    assert!(merged.join("tokenizer.json").exists());
    std::fs::remove_dir_all(&root).unwrap();
}
