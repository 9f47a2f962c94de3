//! Targets on checkpoints: safetensors files (the 8-byte header length, the JSON header, the data)
//! through `WeightFiles::from_bytes` and `take`, and sharded checkpoints through the index that
//! `WeightFiles::open` follows.

use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::{Value, json};
use stepgrpo_core::model::WeightFiles;
use stepgrpo_tests::fixture;

use super::inputs::{damaged, json_value};
use super::{Scratch, bounded, config};

const DTYPES: &[&str] = &["F32", "BF16", "F16", "F64", "I64", "U8", "BOOL", "F8_E4M3", "F4", "f32", "", "X"];

/// One header entry: a dtype, a shape (with empty, zero and huge dimensions) and offsets that fit
/// the shape, fit nothing, overlap or run backwards.
fn entry() -> impl Strategy<Value = (String, Value, Vec<usize>)> {
    let dim =
        prop_oneof![6 => 0usize..6, 1 => Just(1usize << 31), 1 => Just(usize::MAX / 2), 1 => any::<usize>()];
    (
        prop_oneof![Just("w".to_string()), Just("model.embed_tokens.weight".to_string()), "[a-z._]{0,12}"],
        prop::sample::select(DTYPES),
        prop::collection::vec(dim, 0..4),
        prop_oneof![4 => Just(None), 1 => (any::<u64>(), any::<u64>()).prop_map(Some)],
        prop::option::of(json_value()),
    )
        .prop_map(|(name, dtype, shape, offsets, junk)| {
            let size = match dtype {
                "F64" | "I64" => 8,
                "F32" => 4,
                "BF16" | "F16" => 2,
                _ => 1,
            };
            let bytes = shape.iter().try_fold(size, |n: usize, &d| n.checked_mul(d)).unwrap_or(usize::MAX);
            let (a, b) = offsets.unwrap_or((0, bytes as u64));
            let mut v = json!({"dtype": dtype, "shape": shape, "data_offsets": [a, b]});
            if let Some(junk) = junk {
                v["extra"] = junk;
            }
            (name, v, shape)
        })
}

/// A safetensors file: a header of entries (laid out back to back when their offsets are the
/// default), data of the declared size or not, and a length prefix that is right or not.
fn file() -> impl Strategy<Value = (Vec<u8>, Vec<(String, Vec<usize>)>)> {
    (
        prop::collection::vec(entry(), 0..5),
        prop::option::of(json_value()),
        prop_oneof![4 => Just(0i64), 1 => -8i64..8],
        prop_oneof![4 => Just(None), 1 => any::<u64>().prop_map(Some)],
        prop_oneof![4 => Just(0i64), 1 => -16i64..16],
    )
        .prop_map(|(entries, metadata, header_skew, length_override, data_skew)| {
            let mut header = serde_json::Map::new();
            let mut at = 0u64;
            let mut names = Vec::new();
            for (name, mut v, shape) in entries {
                let (a, b) =
                    (v["data_offsets"][0].as_u64().unwrap_or(0), v["data_offsets"][1].as_u64().unwrap_or(0));
                if a == 0 && b < (1 << 20) {
                    // Back to back, the layout a writer produces.
                    v["data_offsets"] = json!([at, at + b]);
                    at += b;
                }
                names.push((name.clone(), shape));
                header.insert(name, v);
            }
            if let Some(m) = metadata {
                header.insert("__metadata__".into(), m);
            }
            let header = Value::Object(header).to_string().into_bytes();
            let n = length_override.unwrap_or((header.len() as i64 + header_skew).max(0) as u64);
            let data_len = (at.min(1 << 20) as i64 + data_skew).max(0) as usize;
            let data: Vec<u8> = (0..data_len).map(|i| (i * 37 % 251) as u8).collect();
            ([&n.to_le_bytes()[..], &header[..], &data[..]].concat(), names)
        })
}

/// Reads every tensor a file declares, with its declared shape and with a wrong one.
fn take_all(bytes: Vec<u8>, names: Vec<(String, Vec<usize>)>) {
    let Ok(mut files) = WeightFiles::from_bytes(vec![(bytes, PathBuf::from("m/model.safetensors"))]) else {
        return;
    };
    for (name, shape) in names {
        let _ = files.contains(&name);
        if let Ok(values) = files.take(&name, &shape) {
            assert_eq!(values.len(), shape.iter().product::<usize>());
        }
        let elements = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        let _ = files.take(&name, &[elements.unwrap_or(0).wrapping_add(1)]);
    }
    let _ = files.take("absent", &[1]);
    let _ = files.leftovers();
}

proptest! {
    #![proptest_config(config(400))]

    /// Built safetensors files: hostile headers, lengths and data.
    #[test]
    fn fuzz_safetensors_file((bytes, names) in file()) {
        bounded("safetensors", bytes.len(), move || take_all(bytes, names));
    }

    /// The fixture checkpoint with damage (bytes flipped, cut short, text spliced in).
    #[test]
    fn fuzz_safetensors_damaged(bytes in damaged(std::fs::read(fixture("hf/qwen3-tiny/model.safetensors")).expect("fixture"))) {
        let names = vec![
            ("model.embed_tokens.weight".to_string(), vec![384, 64]),
            ("model.norm.weight".to_string(), vec![64]),
        ];
        bounded("safetensors (damaged)", bytes.len(), move || take_all(bytes, names));
    }
}

/// Shard names an index may give: real ones, missing ones, paths out of the directory, a
/// directory, empty, and values that are not names.
fn shard_name() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop::sample::select(&["model-1.safetensors", "model-2.safetensors"][..]).prop_map(Value::from),
        1 => prop::sample::select(&["missing.safetensors", "../model-1.safetensors", "", ".", "sub", "sub/"][..]).prop_map(Value::from),
        1 => json_value(),
    ]
}

proptest! {
    #![proptest_config(config(150))]

    /// A sharded checkpoint: an index with hostile `weight_map` entries over two shards (built
    /// files), opened from its directory.
    #[test]
    fn fuzz_shard_index(
        map in prop::collection::vec(("[a-z.]{0,10}", shard_name()), 0..6),
        other in prop::option::of(json_value()),
        shards in prop::collection::vec(file(), 2),
        raw in prop::option::of(damaged(br#"{"metadata": {}, "weight_map": {"w": "model-1.safetensors"}}"#.to_vec())),
    ) {
        let index = match (raw, other) {
            (Some(raw), _) => raw,
            (None, Some(other)) => json!({"weight_map": other}).to_string().into_bytes(),
            (None, None) => {
                let map: serde_json::Map<String, Value> = map.into_iter().collect();
                json!({"metadata": {"total_size": 1}, "weight_map": map}).to_string().into_bytes()
            }
        };
        let len = index.len() + shards.iter().map(|s| s.0.len()).sum::<usize>();
        bounded("shard index", len, move || {
            let root = Scratch::new("shards");
            let dir = root.0.join("model");
            std::fs::create_dir_all(dir.join("sub")).expect("a scratch directory");
            let mut names = Vec::new();
            for (i, (bytes, declared)) in shards.into_iter().enumerate() {
                std::fs::write(dir.join(format!("model-{}.safetensors", i + 1)), bytes).expect("a shard");
                names.extend(declared);
            }
            std::fs::write(dir.join("model.safetensors.index.json"), index).expect("an index");
            match WeightFiles::open(&dir) {
                Ok(mut files) => {
                    for (name, shape) in names {
                        let _ = files.take(&name, &shape);
                    }
                }
                Err(e) => assert!(e.to_string().contains(&*root.0.to_string_lossy()), "names the file: {e}"),
            }
        });
    }
}
