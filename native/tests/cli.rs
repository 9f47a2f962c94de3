//! The `stepgrpo` binary end to end: JSON outputs and clear errors with a non-zero exit code.

use std::process::Command;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures");

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
