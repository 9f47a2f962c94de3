//! `stepgrpo export`: the model a run starts from as a Hugging Face directory for a vLLM server:
//! untied output projection (vLLM's CPU backend reloads a tied one wrongly), tokenizer files, and
//! the command that serves it with weight reloads on.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use stepgrpo_core::model::{self, hf_files_untied, write_atomic};
use stepgrpo_core::pretrained::Pretrained;
use stepgrpo_core::task;

use crate::DeviceArgs;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory to write.
    #[arg(long)]
    out: PathBuf,
    /// Model directory to export; default: the built-in task's tiny model, initialised from --seed
    /// (a server only needs the architecture and tokenizer: the trainer loads its weights).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Seed of the built-in model's initialisation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    device: DeviceArgs,
}

pub fn run(args: Args) -> Result<()> {
    let selected = args.device.select();
    let (model, mut files) = match &args.model {
        Some(dir) => {
            let p = Pretrained::load_as(dir, &selected.device, args.device.dtype)?;
            let mut files = Vec::new();
            for name in ["tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
                let path = dir.join(name);
                if path.exists() {
                    files.push((
                        name.to_string(),
                        std::fs::read(&path).with_context(|| path.display().to_string())?,
                    ));
                }
            }
            (p.model, files)
        }
        None => {
            selected.device.seed(args.seed);
            (model::init(&task::model_config(), &selected.device), task::tokenizer_files())
        }
    };
    files.extend(pollster::block_on(hf_files_untied(&model))?);
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    for (name, bytes) in files {
        write_atomic(&args.out.join(&name), &bytes)?;
    }
    let out = args.out.canonicalize().unwrap_or_else(|_| args.out.clone());
    eprintln!(
        "wrote {}; serve it with:\n{}",
        out.display(),
        serve_command(&out, model.config.max_position_embeddings)
    );
    Ok(())
}

/// The `vllm serve` line the trainer needs (see docs/vllm.md).
fn serve_command(dir: &Path, max_len: usize) -> String {
    format!(
        "VLLM_SERVER_DEV_MODE=1 vllm serve {} --dtype auto --max-model-len {max_len} \\\n  \
         --enable-prefix-caching --block-size 32 --no-enable-chunked-prefill --port 8000",
        dir.display()
    )
}
