//! The supervised warm start: the model learns the task's overthinking traces (and, on a share of
//! examples, to answer when cut short), so RL starts from a model that overthinks.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::batch::{Sequence, gradient_shards, nll_gradients};
use super::checkpoint::Restored;
use super::config::SftConfig;
use super::guard::NanGuard;
use super::optim::Optimizer;
use super::problems::ProblemSet;
use super::seeds;
use super::setup::RunData;
use crate::decode::read_rows;
use crate::error::{Error, Result};
use crate::model::CausalLm;
use crate::rng::Rng;
use crate::task::{Chain, Example, TaskConfig};
use crate::text::Tokenizer;

/// One SFT step, as one JSONL record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SftMetrics {
    /// Optimizer step, from 1.
    pub step: usize,
    /// Mean negative log-likelihood of the trained tokens.
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate of the step.
    pub learning_rate: f64,
    /// Updates skipped so far in the phase for a NaN or an infinity in the loss or the gradients.
    pub nan_skipped: usize,
}

/// Supervised training on the built-in task, step by step.
pub struct SftTrainer {
    /// The model being trained (on an autodiff device).
    pub model: CausalLm,
    /// The optimizer.
    pub optim: Optimizer,
    /// Steps done.
    pub step: usize,
    /// Updates skipped for NaN or infinite values.
    pub guard: NanGuard,
    config: SftConfig,
    problems: ProblemSet,
    tokenizer: Tokenizer,
    seed: u64,
}

impl SftTrainer {
    /// A trainer at step 0; `data` must be the built-in task's.
    pub fn new(model: CausalLm, data: &RunData, config: SftConfig, seed: u64) -> Result<Self> {
        if !matches!(data.problems, ProblemSet::Builtin { .. }) {
            return Err(Error::invalid("sft", "supervised warm start needs the built-in task's traces"));
        }
        let optim = Optimizer::new(&config.optim, config.max_steps);
        let (problems, tokenizer) = (data.problems.clone(), data.tokenizer.clone());
        Ok(SftTrainer {
            model,
            optim,
            step: 0,
            guard: NanGuard::default(),
            config,
            problems,
            tokenizer,
            seed,
        })
    }

    /// Continues from a checkpoint of this phase (model, optimizer state, step).
    pub fn restore(&mut self, restored: Restored) -> Result<()> {
        self.optim.load_bytes(restored.optimizer, &restored.optimizer_file)?;
        self.model = restored.model;
        self.step = restored.state.step;
        self.guard = restored.state.nan_guard;
        Ok(())
    }

    /// Whether every configured step has run.
    pub fn is_done(&self) -> bool {
        self.step >= self.config.max_steps
    }

    /// Runs one optimizer step on a fresh batch of traces.
    pub async fn step(&mut self) -> Result<SftMetrics> {
        let ProblemSet::Builtin { task, .. } = &self.problems else { unreachable!("checked in new") };
        let chains =
            self.problems.chains(self.seed, seeds::SFT_PROBLEMS, self.step, self.config.batch_size)?;
        let mut rng = Rng::stream(self.seed ^ seeds::SFT_TRACES, self.step as u64);
        let full_traces_only = self.step < self.config.probe_examples_after;
        let examples = examples(&chains, task, full_traces_only, &mut rng)
            .iter()
            .map(|e| e.tokenize(&self.tokenizer))
            .collect::<Result<Vec<_>>>()?;
        let sequences: Vec<Sequence> = examples
            .iter()
            .map(|e| Sequence { prompt: &e.prompt, completion: &e.completion, trained: Some(&e.trained) })
            .collect();
        let pad = self.tokenizer.eos_token_ids().first().copied().unwrap_or(0);
        let shards = gradient_shards(&self.model.device(), sequences.len());
        let (loss, grads) = nll_gradients(&self.model, &sequences, pad, shards);
        let learning_rate = self.optim.lr(self.step);
        let norm = Optimizer::grad_norm(&self.model, &grads);
        // Read back before the update, which a NaN or an infinity skips.
        let read = read_rows(Tensor::cat(vec![loss, norm.clone()], 0).unsqueeze()).await?;
        let (loss, grad_norm) = (read[0] as f64, read[1] as f64);
        if self.guard.check([("loss", loss), ("gradient norm", grad_norm)]) {
            self.model = self.optim.apply(self.step, self.model.clone(), grads, norm);
        }
        self.step += 1;
        Ok(SftMetrics { step: self.step, loss, grad_norm, learning_rate, nan_skipped: self.guard.skipped })
    }
}

/// A step's supervised examples: full traces only while `full_traces_only`, else the task's mix of
/// full and cut traces.
fn examples(chains: &[Chain], task: &TaskConfig, full_traces_only: bool, rng: &mut Rng) -> Vec<Example> {
    let example =
        |c| if full_traces_only { Example::trace(c, task, rng) } else { Example::sample(c, task, rng) };
    chains.iter().map(example).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_examples_join_only_when_asked() {
        let task = TaskConfig { probe_example_rate: 1.0, ..TaskConfig::default() };
        let chains = crate::task::problems(&task, 1, 16);
        // A cut example closes the thinking untrained; a full trace trains its closing.
        let cut = |e: &Example| e.segments.iter().any(|s| s.text == "</think>\n\n" && !s.trained);
        let full = examples(&chains, &task, true, &mut Rng::new(2));
        assert!(full.iter().all(|e| !cut(e)));
        assert_eq!(full.len(), 16);
        assert!(examples(&chains, &task, false, &mut Rng::new(2)).iter().all(cut));
    }
}
