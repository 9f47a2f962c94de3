//! Recipes: TOML files in the repository's `recipes/`, compiled in, each a set of knobs over
//! [`TrainConfig::default`]. The command line picks one with `--recipe NAME|FILE` and the browser
//! package starts from one, so both read the same numbers from the same file.
//!
//! - `release`: the paper's release setting for Hugging Face models, which is what
//!   [`TrainConfig::default`] holds (a test keeps the two equal).
//! - `builtin`: the built-in task's (its tiny model, SFT, then Step-GRPO and two baselines).
//! - `browser`: `builtin` at the size of a browser tab (a page's defaults).

use super::config::TrainConfig;
use crate::error::{Error, Result};

/// The recipes by name, with their TOML text; `browser` lies over `builtin`.
pub const RECIPES: [(&str, &str); 3] = [
    ("release", include_str!("../../../recipes/release.toml")),
    ("builtin", include_str!("../../../recipes/builtin.toml")),
    ("browser", include_str!("../../../recipes/browser.toml")),
];

/// The recipe called `name`.
pub fn recipe(name: &str) -> Result<TrainConfig> {
    let text = |n: &str| RECIPES.iter().find(|(k, _)| *k == n).map(|(_, t)| *t);
    let Some(own) = text(name) else {
        let names: Vec<&str> = RECIPES.iter().map(|(k, _)| *k).collect();
        return Err(Error::invalid(
            "recipe",
            format!("{name:?}: no such recipe (have {})", names.join(", ")),
        ));
    };
    let base = match name {
        "browser" => recipe("builtin")?,
        _ => TrainConfig::default(),
    };
    base.overlay(own, &format!("recipes/{name}.toml"))
}

/// The built-in task's recipe (`recipes/builtin.toml`).
pub fn builtin() -> TrainConfig {
    recipe("builtin").expect("recipes/builtin.toml is a valid configuration (tested)")
}

impl TrainConfig {
    /// This configuration with the knobs of the TOML `text` (from `source`, named in errors) in
    /// place of its own: tables merge key by key, so a file names only what it changes.
    pub fn overlay(&self, text: &str, source: &str) -> Result<TrainConfig> {
        let bad = |e: &dyn std::fmt::Display| Error::invalid(source, format!("invalid configuration: {e}"));
        let mut over: toml::Table = toml::from_str(text).map_err(|e| bad(&e))?;
        super::renamed::update(&mut over, source);
        let mut merged = toml::Table::try_from(self).map_err(|e| bad(&e))?;
        merge(&mut merged, over);
        toml::Value::Table(merged).try_into().map_err(|e| bad(&e))
    }
}

/// Overwrites `base` with `over`, recursing into tables.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_recipe_is_valid_and_release_is_the_default() {
        for (name, _) in RECIPES {
            recipe(name).unwrap().validate().unwrap_or_else(|e| panic!("recipes/{name}.toml: {e}"));
        }
        assert_eq!(recipe("release").unwrap(), TrainConfig::default());
        let builtin = builtin();
        assert!(builtin.model.is_none() && builtin.sft.max_steps > 0);
        assert!(recipe("nope").unwrap_err().to_string().contains("builtin"));
    }

    #[test]
    fn an_overlay_changes_only_what_it_names() {
        let base = builtin();
        let c = base.overlay("[sft.optim]\nlearning_rate = 1e-4\n", "test.toml").unwrap();
        assert_eq!(c.sft.optim.learning_rate, 1e-4);
        assert_eq!(c.sft.optim.warmup_steps, base.sft.optim.warmup_steps);
        assert_eq!(c.rl, base.rl);
        let err = base.overlay("[sft]\nmax_stepz = 3\n", "test.toml").unwrap_err().to_string();
        assert!(err.contains("test.toml") && err.contains("max_stepz"), "{err}");
    }
}
