//! Targets on the files of a model directory and a user's data: `config.json`,
//! `tokenizer_config.json` with its chat template, and JSONL problem files.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use serde_json::{Value, json};
use stepgrpo_core::data::{load_jsonl, load_task_jsonl};
use stepgrpo_core::model::ModelConfig;
use stepgrpo_core::text::{ChatTemplate, Message, Tokenizer};
use stepgrpo_core::train::ProblemSet;
use stepgrpo_tests::fixture;

use super::inputs::{damaged, json_value, nesting_bytes, text};
use super::{Scratch, bounded, config};

fn fixture_json(rel: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture(rel)).expect("fixture")).expect("fixture JSON")
}

/// The keys `config.json` readers look at, which the mutations aim for.
const CONFIG_KEYS: &[&str] = &[
    "architectures",
    "model_type",
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "hidden_act",
    "use_sliding_window",
    "rope_parameters",
    "rope_theta",
    "rope_scaling",
    "attention_bias",
    "mlp_bias",
    "eos_token_id",
    "dtype",
    "torch_dtype",
    "rms_norm_eps",
    "max_position_embeddings",
    "tie_word_embeddings",
];

/// A valid object with some keys set to other values (or removed), or the value replaced whole.
fn mutated(base: Value, keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let edits = prop::collection::vec((prop::sample::select(keys), prop::option::of(json_value())), 0..6);
    prop_oneof![
        6 => edits.prop_map(move |edits| {
            let mut v = base.clone();
            for (key, value) in edits {
                match value {
                    Some(value) => v[key] = value,
                    None => {
                        if let Some(o) = v.as_object_mut() {
                            o.remove(key);
                        }
                    }
                }
            }
            v
        }),
        1 => json_value(),
    ]
}

proptest! {
    #![proptest_config(config(300))]

    /// `config.json` as a parsed value with hostile fields, and as damaged bytes on disk.
    #[test]
    fn fuzz_config_json(
        value in mutated(fixture_json("hf/qwen3-tiny/config.json"), CONFIG_KEYS),
        bytes in damaged(std::fs::read(fixture("hf/llama-tiny-bf16/config.json")).expect("fixture")),
    ) {
        let len = value.to_string().len() + bytes.len();
        bounded("config.json", len, move || {
            if let Ok(c) = ModelConfig::from_hf_json(&value) {
                assert!(c.hidden_size > 0 && c.head_dim % 2 == 0 && c.num_attention_heads % c.num_key_value_heads == 0);
                let _ = ModelConfig::from_hf_json(&c.to_hf_json()).expect("a config reads back");
            }
            let dir = Scratch::new("config");
            let path = dir.write("config.json", &bytes);
            if let Err(e) = ModelConfig::from_file(&path) {
                assert!(e.to_string().contains("config.json"), "the error names the file: {e}");
            }
        });
    }
}

/// Jinja pieces: the control flow of real chat templates, runaway loops and recursion, filters on
/// message text, and broken syntax.
const JINJA: &[&str] = &[
    "{% for m in messages %}",
    "{% endfor %}",
    "{{ m.content }}",
    "{{ m['role'] }}",
    "{{ messages[0].content }}",
    "{% if add_generation_prompt %}",
    "{% if enable_thinking is defined and enable_thinking is false %}",
    "{% elif m.role == 'user' %}",
    "{% else %}",
    "{% endif %}",
    "{{ bos_token }}",
    "{{ eos_token }}",
    "<|im_start|>assistant\n",
    "{{- '<think>\n\n</think>\n\n' }}",
    "{{ raise_exception('no system role') }}",
    "{% set ns = namespace(i=0) %}",
    "{% set ns.i = ns.i + 1 %}",
    "{{ m.content.split('</think>')[-1] }}",
    "{{ m.content.startswith('<') }}",
    "{{ m.content|trim|length }}",
    "{{ messages|tojson }}",
    "{{ m.content[::-1] }}",
    "{{ strftime_now('%d %b %Y') }}",
    "{% for i in range(100000) %}",
    "{% for j in range(100000) %}x{% endfor %}",
    "{{ 'x' * 100000000 }}",
    "{{ m.content * 1000 }}",
    "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "{% for m in messages recursive %}{{ loop(messages) }}",
    "{{ messages|map(attribute='content')|join(m.content) }}",
    "{% break %}",
    "{% continue %}",
    "{%",
    "{{",
    "}}",
    "%}",
    "{#",
    "#}",
    "{% endraw %}",
    "{% raw %}",
    "((((((((",
    "{{ undefined_thing.x.y }}",
    "{{ 1 / 0 }}",
    "{{ [messages] * 100000 }}",
    "{% include 'chat' %}",
    "{% extends 'chat' %}",
    "\n",
    "  ",
    "text",
];

fn template() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![6 => prop::sample::select(JINJA).prop_map(str::to_string), 1 => text()],
        0..16,
    )
    .prop_map(|parts| parts.concat())
}

/// `tokenizer_config.json` contents: the real Qwen3 one with its template, tokens or the template
/// list replaced, or any value.
fn tokenizer_config() -> impl Strategy<Value = Value> {
    let base = fixture_json("qwen3-tokenizer/tokenizer_config.json");
    let token =
        prop_oneof![text().prop_map(Value::String), text().prop_map(|t| json!({"content": t})), json_value()];
    prop_oneof![
        3 => (template(), token.clone(), token).prop_map({
            let base = base.clone();
            move |(t, bos, eos)| {
                let mut v = base.clone();
                (v["chat_template"], v["bos_token"], v["eos_token"]) = (Value::String(t), bos, eos);
                v
            }
        }),
        1 => (template(), json_value()).prop_map(|(t, other)| json!({
            "chat_template": [{"name": "tool_use", "template": other}, {"name": "default", "template": t}],
        })),
        1 => Just(base),
        1 => json_value(),
    ]
}

fn messages() -> impl Strategy<Value = Vec<Message>> {
    let role = prop_oneof![
        Just("user".to_string()),
        Just("system".to_string()),
        Just("assistant".to_string()),
        "[a-z]{0,5}"
    ];
    prop::collection::vec((role, text()).prop_map(|(role, content)| Message { role, content }), 0..4)
}

proptest! {
    #![proptest_config(config(300))]

    /// A chat template from `tokenizer_config.json`, parsed and rendered on hostile messages.
    #[test]
    fn fuzz_chat_template(v in tokenizer_config(), messages in messages(), flags in any::<(bool, bool)>()) {
        let len = v.to_string().len() + messages.iter().map(|m| m.content.len()).sum::<usize>();
        bounded("chat template", len, move || {
            let path = Path::new("model/tokenizer_config.json");
            match ChatTemplate::from_tokenizer_config(&v, path) {
                Ok(Some(t)) => {
                    if let Err(e) = t.render(&messages, flags.0, flags.1) {
                        assert!(e.to_string().contains("model/tokenizer_config.json"), "{e}");
                    }
                }
                Ok(None) => {}
                Err(e) => assert!(e.to_string().contains("model/tokenizer_config.json"), "{e}"),
            }
        });
    }

    /// `Tokenizer::from_dir` on the built-in tokenizer with a damaged `tokenizer_config.json`.
    #[test]
    fn fuzz_tokenizer_config_file(bytes in damaged(std::fs::read(fixture("qwen3-tokenizer/tokenizer_config.json")).expect("fixture"))) {
        bounded("tokenizer_config.json", bytes.len(), move || {
            let dir = Scratch::new("tokenizer");
            for (name, data) in stepgrpo_core::task::tokenizer_files() {
                dir.write(&name, &data);
            }
            dir.write("tokenizer_config.json", &bytes);
            match Tokenizer::from_dir(&dir.0) {
                Ok(tok) => { let _ = tok.apply_chat_template(&[Message::user("1+1?")], true); }
                Err(e) => assert!(e.to_string().contains("tokenizer_config.json"), "{e}"),
            }
        });
    }
}

/// The Qwen3 fixture tokenizer (it has a chat template, which `load_jsonl` renders every problem in).
fn qwen() -> Arc<Tokenizer> {
    static QWEN: OnceLock<Arc<Tokenizer>> = OnceLock::new();
    QWEN.get_or_init(|| Arc::new(Tokenizer::from_dir(&fixture("qwen3-tokenizer")).expect("fixture"))).clone()
}

/// One line of a problem file: a well-formed one with hostile fields, any JSON value, or raw text.
fn jsonl_line() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![text().prop_map(Value::String), json_value()];
    let keys = prop::sample::subsequence(&["problem", "question", "answer", "solution"][..], 0..=4);
    prop_oneof![
        4 => (keys, prop::collection::vec(field, 4)).prop_map(|(keys, values)| {
            let o: serde_json::Map<String, Value> = keys.iter().map(|k| k.to_string()).zip(values).collect();
            Value::Object(o).to_string().into_bytes()
        }),
        2 => ("[0-9]{1,2}([+-][0-9]{1,2}){1,8}", "[0-9]{1,3}").prop_map(|(p, a)| json!({"problem": p, "answer": a}).to_string().into_bytes()),
        1 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => text().prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => Just(b"{\"question\": \"q\", \"answer\": 1e400}".to_vec()),
        1 => nesting_bytes(),
    ]
}

proptest! {
    #![proptest_config(config(200))]

    /// A JSONL problem file read with a chat template and in the task's format, then split and
    /// sampled as a run would.
    #[test]
    fn fuzz_jsonl_problems(lines in prop::collection::vec(jsonl_line(), 0..12), split in 0usize..8, seed in any::<u64>()) {
        let bytes = lines.join(&b"\n"[..]);
        let tok = qwen();
        bounded("JSONL problems", bytes.len(), move || {
            let dir = Scratch::new("jsonl");
            let path = dir.write("train.jsonl", &bytes);
            for problems in [load_jsonl(&path, &tok), load_task_jsonl(&path)] {
                match problems {
                    Ok(list) => {
                        assert!(!list.is_empty() && list.iter().all(|p| !p.answer.is_empty()));
                        if let Ok((set, held)) = ProblemSet::split(list, split, seed, "train.jsonl") {
                            assert_eq!(held.len(), split);
                            let batch = set.batch(seed, 3, 5).expect("a non-empty list always yields a batch");
                            assert_eq!(batch.len(), 5);
                        }
                    }
                    Err(e) => assert!(e.to_string().contains("train.jsonl"), "the error names the file: {e}"),
                }
            }
        });
    }
}
