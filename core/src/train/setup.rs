//! What every phase of a run shares: the tokenizer and stop ids, the training problems, the
//! held-out problems (never trained on), and the files every saved model directory carries; and
//! the model a run starts from.

use burn::module::Module;
use burn::tensor::Device;

use super::config::TrainConfig;
use super::problems::ProblemSet;
use crate::data::{Problem, load_jsonl, load_task_jsonl};
use crate::error::{Error, Result};
use crate::model::{self, CausalLm};
use crate::pretrained::Pretrained;
use crate::task;
use crate::text::Tokenizer;

/// The data of a run.
#[derive(Debug, Clone)]
pub struct RunData {
    /// The model's tokenizer.
    pub tokenizer: Tokenizer,
    /// Ids that end a response.
    pub eos: Vec<u32>,
    /// Where training problems come from.
    pub problems: ProblemSet,
    /// The held-out problems, none of which is ever trained on.
    pub held_out: Vec<Problem>,
    /// Files copied into every saved model directory (tokenizer, generation config).
    pub files: Vec<(String, Vec<u8>)>,
    /// What the setup decided that a user should hear (the held-out split, exclusions).
    pub notes: Vec<String>,
    /// Where the model RL starts from lives (`base_model_name_or_path` of saved adapters): the
    /// model directory, or the run's `sft/final`.
    pub base_model: String,
}

impl RunData {
    /// The built-in task: its tokenizer, and `eval.num_problems` held-out problems drawn from the
    /// task, or the problems of `eval_data`; training never draws a held-out problem.
    pub fn builtin(config: &TrainConfig) -> Result<RunData> {
        let tokenizer = task::tokenizer();
        let (problems, held_out, notes) = match &config.eval_data {
            None => {
                let (set, held_out) =
                    ProblemSet::builtin(&config.task, config.seed, config.eval.num_problems);
                (set, held_out, Vec::new())
            }
            Some(path) => {
                let held_out = load_task_jsonl(path)?;
                let note = format!(
                    "evaluating on the {} problems of {}; training never draws them",
                    held_out.len(),
                    path.display()
                );
                (ProblemSet::builtin_excluding(&config.task, &held_out), held_out, vec![note])
            }
        };
        Ok(RunData {
            eos: tokenizer.eos_token_ids().to_vec(),
            tokenizer,
            problems,
            held_out,
            files: task::tokenizer_files(),
            notes,
            base_model: config.output_dir.join("sft/final").display().to_string(),
        })
    }

    /// A model directory's tokenizer and stop ids, the problems of `train_data`, and held-out
    /// problems: those of `eval_data`, or `eval.num_problems` distinct ones split off the training
    /// file (seeded). Either way no training problem is also a held-out one.
    pub fn from_model(config: &TrainConfig, pretrained: &Pretrained) -> Result<RunData> {
        let dir = &pretrained.dir;
        let tokenizer = pretrained
            .tokenizer
            .clone()
            .ok_or_else(|| Error::invalid("model", format!("{}: no tokenizer.json", dir.display())))?;
        let vocab = pretrained.model.config.vocab_size;
        if tokenizer.id_limit() > vocab {
            return Err(Error::invalid(
                "model",
                format!(
                    "{} has ids up to {}, but {} embeds {vocab} (vocab_size): a tokenizer of another model?",
                    tokenizer.path().display(),
                    tokenizer.id_limit() - 1,
                    dir.join("config.json").display()
                ),
            ));
        }
        let train_path = config
            .train_data
            .as_deref()
            .ok_or_else(|| Error::invalid("train_data", "a model directory needs a JSONL problem file"))?;
        let train = load_jsonl(train_path, &tokenizer)?;
        let source = train_path.display().to_string();
        let (problems, held_out, note) = match &config.eval_data {
            Some(path) => {
                let held_out = load_jsonl(path, &tokenizer)?;
                let (set, removed) = ProblemSet::list_excluding(train, &held_out, &source)?;
                let note = format!(
                    "evaluating on the {} problems of {}; {removed} problems of {source} that are also \
                     among them are left out of training",
                    held_out.len(),
                    path.display()
                );
                (set, held_out, note)
            }
            None => {
                let total = train.len();
                let (set, held_out) =
                    ProblemSet::split(train, config.eval.num_problems, config.seed, &source)?;
                let ProblemSet::List(kept) = &set else { unreachable!("a split is a list") };
                let note = format!(
                    "held out {} distinct problems of {source} for evaluation (seed {}); training on the \
                     other {} of its {total} problems",
                    held_out.len(),
                    config.seed,
                    kept.len()
                );
                (set, held_out, note)
            }
        };
        let mut files = Vec::new();
        for name in ["tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
            let path = dir.join(name);
            if path.exists() {
                files.push((name.to_string(), crate::error::read_file(&path)?));
            }
        }
        Ok(RunData {
            tokenizer,
            eos: pretrained.eos_token_ids.clone(),
            problems,
            held_out,
            files,
            notes: vec![note],
            base_model: dir.display().to_string(),
        })
    }
}

/// The data and the starting model of a run: the built-in task's tiny model, freshly initialised
/// from the seed, or the model directory `config.model`.
pub fn prepare(config: &TrainConfig, device: &Device) -> Result<(RunData, CausalLm)> {
    config.validate()?;
    match &config.model {
        None => {
            let data = RunData::builtin(config)?;
            // Drawn on the CPU and moved: each backend has its own random generator, and a seed
            // must give the same starting model on every one.
            let cpu = if device.is_autodiff() { Device::flex().autodiff() } else { Device::flex() };
            cpu.seed(config.seed);
            let model = model::init(&config.task.model.config(), &cpu);
            Ok((data, model.fork(device)))
        }
        Some(dir) => {
            let pretrained = Pretrained::load_as(dir, device, config.dtype)?;
            let data = RunData::from_model(config, &pretrained)?;
            Ok((data, pretrained.model))
        }
    }
}
