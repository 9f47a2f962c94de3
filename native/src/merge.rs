//! `stepgrpo merge`: a PEFT LoRA adapter folded into its base model, written as a plain Hugging
//! Face directory (in the base's dtype) that computes what base + adapter computes.

use std::path::PathBuf;

use anyhow::{Context, Result};
use stepgrpo_core::model::{hf_files, load_adapter, write_atomic};
use stepgrpo_core::pretrained::Pretrained;

use crate::DeviceArgs;
use crate::export::tokenizer_files;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The base model directory the adapter was trained on.
    #[arg(long)]
    model: PathBuf,
    /// The adapter directory (`adapter_config.json`, `adapter_model.safetensors`), e.g. a run's
    /// `step_grpo/final/adapter`.
    #[arg(long)]
    adapter: PathBuf,
    /// Directory to write.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArgs,
}

pub fn run(args: Args) -> Result<()> {
    let device = args.device.select().device;
    let base = Pretrained::load(&args.model, &device)?.model;
    let model = load_adapter(base, &args.adapter)?.merge_adapters();
    let mut files = tokenizer_files(&args.model)?;
    files.extend(pollster::block_on(hf_files(&model))?);
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    for (name, bytes) in files {
        write_atomic(&args.out.join(&name), &bytes)?;
    }
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
