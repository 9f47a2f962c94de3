//! `stepgrpo tokenize`: text to token ids with a model's tokenizer.

use std::path::PathBuf;

use stepgrpo_core::text::Tokenizer;

/// Arguments of `stepgrpo tokenize`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory holding tokenizer.json (a model directory works).
    #[arg(long)]
    tokenizer: PathBuf,
    /// The text to encode (no special tokens are added).
    #[arg(long)]
    text: String,
    /// Print `{"ids": [...]}` instead of space-separated ids.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let tokenizer = Tokenizer::from_dir(&args.tokenizer)?;
    let ids = tokenizer.encode(&args.text)?;
    if args.json {
        println!("{}", serde_json::json!({ "ids": ids }));
    } else {
        println!("{}", ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" "));
    }
    Ok(())
}
