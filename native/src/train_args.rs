//! The options of `stepgrpo train`, and the configuration they make: a recipe (the paper's release
//! setting when a model directory is given, by flag or file; else the built-in task's), a TOML file
//! over it, `--quick`, then flags.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use stepgrpo_core::rollout::vllm::RolloutEngineKind;
use stepgrpo_core::train::recipe;
use stepgrpo_core::train::{Method, TrainConfig};

use crate::DeviceArgs;

/// Which defaults apply, shown by `stepgrpo train --help`.
const DEFAULTS: &str = "Defaults. With --model (or `model` in the --config file): the paper's release \
setting for Hugging Face models (`stepgrpo recipe release`); without a model: the built-in task's recipe, \
SFT then Step-GRPO, GRPO and GRPO + length penalty on a tiny Qwen3 (`stepgrpo recipe builtin`). The run \
directory's config.toml shows every value used.";

#[derive(clap::Args, Debug)]
#[command(after_help = DEFAULTS)]
pub struct Args {
    /// The recipe to start from: `builtin` (the built-in task), `release` (the paper's release
    /// setting for Hugging Face models) or a TOML file of knobs over the release setting. Default:
    /// `release` with a model directory (by flag or in --config), else `builtin`.
    #[arg(long, value_name = "NAME|FILE")]
    recipe: Option<String>,
    /// TOML file with any of the configuration's sections, over the recipe; flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Run directory (checkpoints, metrics, plot, results.json).
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// Seed of initialisation, problems and sampling.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Several seeds, comma-separated (`0,1,2`): the whole run once per seed, each in
    /// `{output_dir}/seed-{S}`, then one table of every figure's mean and spread over the seeds
    /// (`seeds.json`).
    #[arg(long, value_delimiter = ',')]
    pub seeds: Vec<u64>,
    /// Start from this Hugging Face model directory instead of the built-in task's tiny model.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Training problems (JSONL) for --model.
    #[arg(long)]
    train_data: Option<PathBuf>,
    /// Held-out problems (JSONL), never trained on; default: --eval-problems problems split off
    /// --train-data (seeded), or drawn from the built-in task.
    #[arg(long)]
    eval_data: Option<PathBuf>,
    /// Comma-separated methods: step_grpo, grpo, grpo_length_penalty, step_grpo_no_step_reward,
    /// step_grpo_no_truncation, step_grpo_all_mean; `all` for every one.
    #[arg(long)]
    methods: Option<String>,
    /// Supervised warm-start steps.
    #[arg(long)]
    sft_steps: Option<usize>,
    /// RL steps per method.
    #[arg(long)]
    rl_steps: Option<usize>,
    /// RL learning rate.
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Responses per prompt.
    #[arg(long)]
    num_generations: Option<usize>,
    /// Probe confidence threshold of the truncated rollout (the paper's delta).
    #[arg(long, alias = "delta")]
    probe_threshold: Option<f64>,
    /// Held-out problems to evaluate on (drawn, or split off --train-data).
    #[arg(long)]
    eval_problems: Option<usize>,
    /// What samples the training rollouts: local (this process) or vllm (the
    /// --vllm-server-base-url servers).
    #[arg(long, value_parser = ["local", "vllm"])]
    rollout_engine: Option<String>,
    /// vLLM server URLs, comma-separated (http://host:port); implies --rollout-engine vllm and
    /// one method at a time (jobs 1). See docs/vllm.md for the server's command.
    #[arg(long = "vllm-server-base-url", alias = "vllm-url", value_delimiter = ',')]
    vllm_url: Vec<String>,
    /// Train LoRA adapters of this rank instead of every weight (PEFT's `r`; the other --lora-*
    /// options default to `[rl.lora]`'s defaults: alpha 16, all seven projections).
    #[arg(long)]
    lora_r: Option<usize>,
    /// LoRA scale numerator: updates are scaled by alpha / r (implies LoRA).
    #[arg(long)]
    lora_alpha: Option<f64>,
    /// Projections that get adapters, comma-separated: q_proj, k_proj, v_proj, o_proj, gate_proj,
    /// up_proj, down_proj (implies LoRA).
    #[arg(long, value_delimiter = ',')]
    lora_target_modules: Vec<String>,
    /// A smoke run: few steps of everything, small batches, 16 held-out problems (for tests).
    #[arg(long)]
    quick: bool,
    /// Continue from the newest checkpoints in the run directory.
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

impl Args {
    /// The configuration: the recipe, then the file, then `--quick`, then flags.
    pub fn config(&self) -> Result<TrainConfig> {
        let file = self.config.as_deref().map(read_toml).transpose()?;
        let named_model =
            |text: &str| toml::from_str::<toml::Table>(text).is_ok_and(|t| t.contains_key("model"));
        let mut c = match self.recipe.as_deref() {
            Some(name) if recipe::RECIPES.iter().any(|(n, _)| *n == name) => recipe::recipe(name)?,
            Some(file) => {
                let (path, text) = read_toml(Path::new(file))?;
                TrainConfig::default().overlay(&text, &path.display().to_string())?
            }
            None if self.model.is_some() || file.as_ref().is_some_and(|(_, t)| named_model(t)) => {
                TrainConfig::default()
            }
            None => recipe::builtin(),
        };
        let model =
            self.model.is_some() || c.model.is_some() || file.as_ref().is_some_and(|(_, t)| named_model(t));
        if let Some((path, text)) = file {
            c = c.overlay(&text, &path.display().to_string())?;
        }
        if self.quick {
            if !model {
                c.sft.max_steps = 40;
                c.sft.batch_size = 16;
            }
            c.rl.max_steps = 2;
            c.rl.prompts_per_step = 4;
            c.rl.rollout.num_generations = 4;
            c.eval.num_problems = 16;
            c.eval.eval_steps = 0;
            c.save_steps = 1;
        }
        set(&mut c.output_dir, self.output_dir.clone());
        set(&mut c.seed, self.seed);
        c.model = self.model.clone().or(c.model);
        c.dtype = self.device.dtype.or(c.dtype);
        c.train_data = self.train_data.clone().or(c.train_data);
        c.eval_data = self.eval_data.clone().or(c.eval_data);
        if let Some(list) = &self.methods {
            c.methods = if list == "all" {
                Method::ALL.to_vec()
            } else {
                list.split(',').map(|m| Method::from_name(m.trim())).collect::<Result<_, _>>()?
            };
        }
        set(&mut c.sft.max_steps, self.sft_steps);
        set(&mut c.rl.max_steps, self.rl_steps);
        set(&mut c.rl.optim.learning_rate, self.learning_rate);
        set(&mut c.rl.rollout.num_generations, self.num_generations);
        set(&mut c.eval.num_problems, self.eval_problems);
        if let (Some(threshold), Some(t)) = (self.probe_threshold, c.rl.rollout.truncation.as_mut()) {
            t.probe_threshold = threshold;
        }
        if self.lora_r.is_some() || self.lora_alpha.is_some() || !self.lora_target_modules.is_empty() {
            let lora = c.rl.lora.get_or_insert_with(Default::default);
            set(&mut lora.r, self.lora_r);
            set(&mut lora.lora_alpha, self.lora_alpha);
            if !self.lora_target_modules.is_empty() {
                lora.target_modules = self.lora_target_modules.clone();
            }
        }
        if !self.vllm_url.is_empty() {
            c.vllm.vllm_server_base_url = self.vllm_url.clone();
        }
        match self.rollout_engine.as_deref() {
            Some("local") => c.rollout_engine = RolloutEngineKind::Local,
            Some(_) => c.rollout_engine = RolloutEngineKind::Vllm,
            None if !self.vllm_url.is_empty() => c.rollout_engine = RolloutEngineKind::Vllm,
            None => {}
        }
        if c.rollout_engine == RolloutEngineKind::Vllm
            && (self.rollout_engine.is_some() || !self.vllm_url.is_empty())
        {
            // The methods would take turns loading their weights into the same servers.
            c.jobs = 1;
        }
        c.validate()?;
        Ok(c)
    }
}

/// Reads a TOML file.
fn read_toml(path: &Path) -> Result<(PathBuf, String)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok((path.into(), text))
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}
