//! `stepgrpo generate`: continue a prompt with a model directory.

use std::path::PathBuf;

use anyhow::{Context, bail};
use stepgrpo_core::decode::{GenerateConfig, SamplingConfig, generate};
use stepgrpo_core::pretrained::Pretrained;
use stepgrpo_core::text::Message;

use crate::DeviceArgs;

/// Arguments of `stepgrpo generate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Hugging Face model directory (config.json, safetensors, tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// Prompt text (needs tokenizer.json in the model directory).
    #[arg(long, conflicts_with = "prompt_ids", required_unless_present = "prompt_ids")]
    prompt: Option<String>,
    /// Prompt as comma-separated token ids, e.g. 1,2,3.
    #[arg(long, value_delimiter = ',')]
    prompt_ids: Option<Vec<u32>>,
    /// New tokens at most.
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    /// Always take the most likely token.
    #[arg(long, conflicts_with_all = ["temperature", "top_p", "top_k"])]
    greedy: bool,
    /// Sampling temperature.
    #[arg(long, default_value_t = 0.6)]
    temperature: f32,
    /// Nucleus sampling threshold.
    #[arg(long, default_value_t = 0.9)]
    top_p: f32,
    /// Keep only the k most likely tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Wrap the prompt as a user message in the model's chat template.
    #[arg(long)]
    chat: bool,
    /// With --chat: turn thinking off (Qwen3's enable_thinking=false).
    #[arg(long, requires = "chat")]
    no_thinking: bool,
    /// Print `{"ids": [...], "text": ..., "finish": ...}`.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    device: DeviceArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let selected = args.device.select();
    let pretrained = Pretrained::load_as(&args.model, &selected.device, args.device.dtype)?;
    let tokenizer = pretrained.tokenizer.as_ref();
    let prompt_ids = match (&args.prompt, &args.prompt_ids) {
        (_, Some(ids)) => {
            if args.chat {
                bail!("--chat needs --prompt text, not --prompt-ids");
            }
            ids.clone()
        }
        (Some(text), None) => {
            let tok = tokenizer.with_context(|| {
                format!(
                    "--prompt needs {}; pass --prompt-ids instead",
                    args.model.join("tokenizer.json").display()
                )
            })?;
            let text = if args.chat {
                tok.apply_chat_template(&[Message::user(text.as_str())], !args.no_thinking)?
            } else {
                text.clone()
            };
            tok.encode(&text)?
        }
        (None, None) => bail!("give --prompt or --prompt-ids"),
    };
    let sampling = if args.greedy {
        SamplingConfig::greedy()
    } else {
        SamplingConfig {
            temperature: args.temperature,
            top_p: args.top_p,
            top_k: args.top_k,
            seed: args.seed,
        }
    };
    let config = GenerateConfig {
        max_new_tokens: args.max_new_tokens,
        sampling,
        eos_token_ids: pretrained.eos_token_ids.clone(),
        stop_strings: Vec::new(),
    };
    let out = pollster::block_on(generate(&pretrained.model, &[prompt_ids], &config, tokenizer))?;
    let g = &out[0];
    let text = tokenizer.map(|t| t.decode(&g.ids)).transpose()?;
    if args.json {
        println!("{}", serde_json::json!({ "ids": g.ids, "text": text, "finish": g.finish }));
    } else {
        match text {
            Some(t) => println!("{t}"),
            None => println!("{}", g.ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")),
        }
    }
    Ok(())
}
