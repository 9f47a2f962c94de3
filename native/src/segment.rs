//! `stepgrpo segment`: a response cut into semantic steps at its trigger words.

use anyhow::Context;
use stepgrpo_core::steps::Triggers;

/// Arguments of `stepgrpo segment`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The response text.
    #[arg(long)]
    text: String,
    /// Trigger words, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "Wait")]
    triggers: Vec<String>,
    /// Print `{"steps": k, "spans": [{"index", "start", "end", "text"}]}`.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let triggers = Triggers::new(args.triggers).context("--triggers")?;
    let steps = triggers.steps(&args.text);
    if args.json {
        let spans: Vec<_> = steps
            .iter()
            .map(|s| serde_json::json!({"index": s.index, "start": s.start, "end": s.end, "text": s.text(&args.text)}))
            .collect();
        println!("{}", serde_json::json!({ "steps": steps.len(), "spans": spans }));
    } else {
        println!("{} steps", steps.len());
        for s in &steps {
            println!("[{}] {:?}", s.index, s.text(&args.text));
        }
    }
    Ok(())
}
