//! Knob names of the previous release, still read for this one with a warning: where TRL has a
//! name for the same knob, the configuration took it.

/// Keys renamed: (table path, old key, new key).
const KEYS: [(&str, &str, &str); 2] =
    [("rl.rollout.truncation", "delta", "probe_threshold"), ("vllm", "urls", "vllm_server_base_url")];

/// Values renamed: (table path, key, old value, new value).
const VALUES: [(&str, &str, &str, &str); 2] =
    [("rl.grpo", "loss_type", "token", "dapo"), ("rl.grpo", "loss_type", "seq", "grpo")];

/// Renames the old keys and values of a configuration table (from `source`) in place, warning
/// once for each.
pub fn update(table: &mut toml::Table, source: &str) {
    for (path, old, new) in KEYS {
        if let Some(t) = table_at(table, path)
            && let Some(value) = t.remove(old)
        {
            log::warn!("{source}: {path}.{old} is now {path}.{new}; the old name goes in the next release");
            t.entry(new).or_insert(value);
        }
    }
    for (path, key, old, new) in VALUES {
        if let Some(v) = table_at(table, path).and_then(|t| t.get_mut(key))
            && v.as_str() == Some(old)
        {
            log::warn!(
                "{source}: {path}.{key} = \"{old}\" is now \"{new}\" (TRL's name); the old one goes in the next release"
            );
            *v = toml::Value::String(new.into());
        }
    }
}

fn table_at<'a>(table: &'a mut toml::Table, path: &str) -> Option<&'a mut toml::Table> {
    path.split('.').try_fold(table, |t, key| t.get_mut(key)?.as_table_mut())
}

#[cfg(test)]
mod tests {
    use super::update;

    #[test]
    fn old_names_become_the_new_ones() {
        let mut t: toml::Table = toml::from_str(
            "[rl.rollout.truncation]\ndelta = 0.9\n[rl.grpo]\nloss_type = \"seq\"\n[vllm]\nurls = [\"http://a:1\"]\n",
        )
        .unwrap();
        update(&mut t, "test");
        assert_eq!(t["rl"]["rollout"]["truncation"]["probe_threshold"].as_float(), Some(0.9));
        assert!(t["rl"]["rollout"]["truncation"].get("delta").is_none());
        assert_eq!(t["rl"]["grpo"]["loss_type"].as_str(), Some("grpo"));
        assert_eq!(t["vllm"]["vllm_server_base_url"][0].as_str(), Some("http://a:1"));
    }
}
