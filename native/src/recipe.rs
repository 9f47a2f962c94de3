//! `stepgrpo recipe`: the recipes `train --recipe` knows, as the TOML files they are compiled from,
//! or with every knob resolved.

use anyhow::Result;
use stepgrpo_core::train::recipe::{RECIPES, recipe};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The recipe: release, builtin or browser; none lists them.
    name: Option<String>,
    /// Every knob with the value the recipe gives it (the defaults included), instead of the file.
    #[arg(long)]
    resolved: bool,
}

pub fn run(args: Args) -> Result<()> {
    let Some(name) = args.name else {
        for (name, text) in RECIPES {
            let about = text.lines().next().unwrap_or_default().trim_start_matches("# ");
            println!("{name:<8} {about}");
        }
        return Ok(());
    };
    let config = recipe(&name)?;
    if args.resolved {
        print!("{}", toml::to_string_pretty(&config)?);
    } else {
        let (_, text) = RECIPES.iter().find(|(n, _)| *n == name).expect("recipe() found it");
        print!("{text}");
    }
    Ok(())
}
