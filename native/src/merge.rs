//! `stepgrpo merge`: a PEFT LoRA adapter folded into its base model, written as a plain Hugging
//! Face directory (in the base's dtype) that computes what base + adapter computes.

use std::path::PathBuf;

use anyhow::Result;
use stepgrpo_core::model::load_adapter;
use stepgrpo_core::pretrained::Pretrained;

use crate::DeviceArgs;

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
    let mut pretrained = Pretrained::load_as(&args.model, &device, args.device.dtype)?;
    pretrained.model = load_adapter(pretrained.model, &args.adapter)?.merge_adapters();
    // The weights in the base's dtype, and the base's tokenizer and generation files.
    pollster::block_on(pretrained.save(&args.out))?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
