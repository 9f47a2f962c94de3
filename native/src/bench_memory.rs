//! `stepgrpo bench --memory`: the peak memory of one Step-GRPO step (rollouts + update) on a random
//! Qwen3 of a real shape and vocabulary, under each memory setting. Each setting runs in a process
//! of its own (this binary again), so every peak is its own: the process's peak resident set on the
//! CPU, the memory pool's peak on a wgpu device. With `--dtype`, the random model is first written
//! as a checkpoint of that dtype and each setting loads it as a user's run does (tensor by tensor,
//! matrices kept in that dtype where they do not train).

use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use stepgrpo_core::model::{self, Architecture, Dtype, LoraConfig, ModelConfig, RopeScaling};
use stepgrpo_core::rollout::LocalEngine;
use stepgrpo_core::train::{Method, RlTrainer, RunData, TrainConfig};

/// The Qwen3 shapes (Hugging Face `config.json` of each model), with Qwen3's 151,936-id vocabulary.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub enum Shape {
    /// Qwen3-0.6B: 28 layers of width 1024 (0.6 B parameters, tied).
    #[value(name = "qwen3-0.6b")]
    #[serde(rename = "qwen3-0.6b")]
    Qwen3_0_6B,
    /// Qwen3-1.7B: 28 layers of width 2048 (1.7 B, tied).
    #[value(name = "qwen3-1.7b")]
    #[serde(rename = "qwen3-1.7b")]
    Qwen3_1_7B,
    /// Qwen3-4B: 36 layers of width 2560 (4.0 B, tied).
    #[value(name = "qwen3-4b")]
    #[serde(rename = "qwen3-4b")]
    Qwen3_4B,
    /// Qwen3-8B: 36 layers of width 4096 (8.2 B, untied).
    #[value(name = "qwen3-8b")]
    #[serde(rename = "qwen3-8b")]
    Qwen3_8B,
}

impl Shape {
    /// The model config of this shape.
    pub fn config(self) -> ModelConfig {
        let (hidden, inter, layers, heads, tied) = match self {
            Shape::Qwen3_0_6B => (1024, 3072, 28, 16, true),
            Shape::Qwen3_1_7B => (2048, 6144, 28, 16, true),
            Shape::Qwen3_4B => (2560, 9728, 36, 32, true),
            Shape::Qwen3_8B => (4096, 12288, 36, 32, false),
        };
        ModelConfig {
            architecture: Architecture::Qwen3,
            vocab_size: 151_936,
            hidden_size: hidden,
            intermediate_size: inter,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            num_key_value_heads: 8,
            head_dim: 128,
            rms_norm_eps: 1e-6,
            rope_theta: 1e6,
            rope_scaling: RopeScaling::Default,
            max_position_embeddings: 40_960,
            tie_word_embeddings: tied,
            qkv_bias: false,
            o_bias: false,
            mlp_bias: false,
            qk_norm: true,
            eos_token_ids: Vec::new(),
            dtype: Dtype::F32,
            initializer_range: model::INITIALIZER_RANGE,
        }
    }
}

/// What a setting trains and keeps.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Setting {
    /// Every weight trains (f32 weights, gradients, Adam moments; a reference copy with KL).
    Full,
    /// Every weight trains, decoder layers recomputed in the backward.
    #[value(name = "full+checkpointing")]
    #[serde(rename = "full+checkpointing")]
    FullCheckpointing,
    /// LoRA adapters (r 16 on all seven projections) on a frozen base.
    Lora,
    /// LoRA with the decoder layers recomputed and the log-probs' backward in chunks.
    #[value(name = "lora+checkpointing")]
    #[serde(rename = "lora+checkpointing")]
    LoraCheckpointing,
}

/// The options of the memory benchmark (flags of `stepgrpo bench`).
#[derive(Debug, Clone)]
pub struct MemoryArgs {
    pub shape: Shape,
    pub settings: Vec<Setting>,
    pub prompts: usize,
    pub generations: usize,
    pub response_len: usize,
    /// Keep only this many decoder layers of the shape (`None`: all).
    pub layers: Option<usize>,
    pub json: bool,
    /// The checkpoint's dtype (`None`: an f32 model made in memory).
    pub dtype: Option<Dtype>,
}

impl MemoryArgs {
    /// The model config measured: the shape's, with `layers` decoder layers when given.
    fn config(&self) -> ModelConfig {
        let mut config = self.shape.config();
        config.num_hidden_layers = self.layers.unwrap_or(config.num_hidden_layers);
        config
    }

    /// Where the random checkpoint in `dtype` is kept between runs.
    fn checkpoint_dir(&self, dtype: Dtype) -> std::path::PathBuf {
        let layers = self.config().num_hidden_layers;
        std::env::temp_dir().join(format!("stepgrpo-bench-{:?}-{layers}l-{}", self.shape, dtype.hf_name()))
    }
}

/// One setting's figures.
#[derive(Serialize, Deserialize, Debug)]
pub struct MemoryReport {
    setting: Setting,
    shape: Shape,
    /// The dtype the frozen matrices were kept in.
    dtype: Dtype,
    /// Parameters of the model.
    parameters: usize,
    /// Parameters that train.
    trainable: usize,
    /// Peak bytes once the model is built, before the step.
    model_peak_bytes: u64,
    /// Peak bytes over the whole step.
    step_peak_bytes: u64,
    /// Response tokens the step trained on.
    response_tokens: usize,
    /// Seconds of the step.
    step_seconds: f64,
}

/// The memory pools' peaks on wgpu (each pool's most pages at once: an upper bound, as pools
/// peak at different moments); the process's peak resident set (VmHWM) on the CPU (Linux).
fn peak_bytes(device: &Device) -> Option<u64> {
    if let Some(pools) = device.memory_pool_report() {
        return Some(pools.iter().map(|p| p.page_size * p.pages_peak).sum());
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs one setting in this process and prints its report as one JSON line.
pub fn run_one(args: &MemoryArgs, setting: Setting, device: &Device) -> anyhow::Result<()> {
    let device = device.clone().autodiff();
    let policy = match args.dtype {
        Some(dtype) => model::load_as(&args.checkpoint_dir(dtype), &device, Some(dtype))?,
        None => model::init(&args.config(), &device),
    };
    let dtype = args.dtype.unwrap_or(Dtype::F32);
    let parameters = policy.num_params();
    let mut train = stepgrpo_core::train::builtin_recipe();
    let release = TrainConfig::default().rl;
    let rl = &mut train.rl;
    (rl.max_steps, rl.prompts_per_step, rl.steps_per_generation) = (1, args.prompts, 1);
    rl.rollout.num_generations = args.generations;
    rl.rollout.max_completion_length = args.response_len;
    (rl.grpo, rl.micro_batch_tokens) = (release.grpo, release.micro_batch_tokens);
    rl.gradient_checkpointing = matches!(setting, Setting::FullCheckpointing | Setting::LoraCheckpointing);
    if matches!(setting, Setting::Lora | Setting::LoraCheckpointing) {
        rl.lora = Some(LoraConfig { r: 16, lora_alpha: 32.0, ..LoraConfig::default() });
    }
    train.validate()?;
    let mut data = RunData::builtin(&train)?;
    // A random model rarely stops on its own, but no stop id at all makes every response full length.
    data.eos.clear();
    let engine = Box::new(LocalEngine::new(data.tokenizer.clone(), data.eos.clone()));
    let mut trainer = RlTrainer::new(Method::StepGrpo, policy, &data, train.rl.clone(), 0, engine)?;
    let trainable = match trainer.model.has_adapters() {
        true => trainer
            .model
            .layers
            .iter()
            .flat_map(|l| l.projections())
            .filter_map(|(_, p)| p.lora.as_ref())
            .map(Module::num_params)
            .sum(),
        false => parameters,
    };
    device.sync().map_err(|e| anyhow::anyhow!("device sync failed: {e:?}"))?;
    let model_peak_bytes = peak_bytes(&device).context("no memory figures on this platform")?;
    let start = Instant::now();
    let step = pollster::block_on(trainer.step())?;
    device.sync().map_err(|e| anyhow::anyhow!("device sync failed: {e:?}"))?;
    let report = MemoryReport {
        setting,
        shape: args.shape,
        dtype,
        parameters,
        trainable,
        model_peak_bytes,
        step_peak_bytes: peak_bytes(&device).context("no memory figures on this platform")?,
        response_tokens: (step.metrics.mean_length * (args.prompts * args.generations) as f64).round()
            as usize,
        step_seconds: start.elapsed().as_secs_f64(),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Writes the random checkpoint of `args` in `dtype` (seed 0) unless it is there already.
fn write_checkpoint(args: &MemoryArgs, dtype: Dtype) -> anyhow::Result<()> {
    let dir = args.checkpoint_dir(dtype);
    if dir.join("model.safetensors").exists() {
        return Ok(());
    }
    let device = Device::flex();
    device.seed(0);
    let mut random = model::init(&args.config(), &device);
    random.config.dtype = dtype;
    eprintln!("writing a random {:?} in {} to {}", args.shape, dtype.hf_name(), dir.display());
    pollster::block_on(model::save(&random, &dir))?;
    Ok(())
}

/// Runs every setting in a child process and prints the table (or the JSON lines).
pub fn run(args: &MemoryArgs, child_args: &[String]) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("locating this binary")?;
    if let Some(dtype) = args.dtype {
        write_checkpoint(args, dtype)?;
    }
    let mut reports = Vec::new();
    for &setting in &args.settings {
        let name =
            clap::ValueEnum::to_possible_value(&setting).expect("a named setting").get_name().to_string();
        let out = Command::new(&exe)
            .args(child_args)
            .args(["--memory-setting", &name])
            .output()
            .with_context(|| format!("running {}", exe.display()))?;
        anyhow::ensure!(
            out.status.success(),
            "the {name} setting failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().last().context("the child printed nothing")?;
        let report: MemoryReport = serde_json::from_str(line).with_context(|| format!("parsing `{line}`"))?;
        if args.json {
            println!("{line}");
        }
        reports.push(report);
    }
    if !args.json {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        println!(
            "setting              dtype     parameters  trainable   model    step peak  tokens  seconds"
        );
        for r in &reports {
            let name = clap::ValueEnum::to_possible_value(&r.setting).expect("named").get_name().to_string();
            println!(
                "{name:<20} {:<9} {:>10.3}B {:>9.2}M {:>6.2} GiB {:>6.2} GiB {:>7} {:>8.1}",
                r.dtype.hf_name(),
                r.parameters as f64 / 1e9,
                r.trainable as f64 / 1e6,
                gib(r.model_peak_bytes),
                gib(r.step_peak_bytes),
                r.response_tokens,
                r.step_seconds
            );
        }
    }
    Ok(())
}
