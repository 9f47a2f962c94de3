//! One generation of rollouts: the responses to the prompts of `steps_per_generation` optimizer
//! steps, scored, with their group-relative advantages and, when later steps reuse them, the
//! sampling policy's log-probs. It is what an RL checkpoint keeps when it falls inside one.

use serde::{Deserialize, Serialize};

use crate::data::Problem;
use crate::error::{Error, Result};
use crate::reward::RewardOutput;
use crate::rollout::Rollout;

/// Which responses answer the same prompt: a group per prompt, identified by the prompt's index;
/// its responses may lie anywhere in the batch (interleaved groups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Groups {
    /// The responses of each prompt, in batch order.
    pub members: Vec<Vec<usize>>,
}

impl Groups {
    /// The groups of `rollouts` for `prompts` prompts of `size` responses each; `engine` names the
    /// rollout source in errors (a response to no prompt, or a group of the wrong size).
    pub fn new(rollouts: &[Rollout], prompts: usize, size: usize, engine: &str) -> Result<Groups> {
        let mut members = vec![Vec::with_capacity(size); prompts];
        for (i, r) in rollouts.iter().enumerate() {
            let group = members.get_mut(r.prompt).ok_or_else(|| {
                Error::invalid(
                    format!("rollout engine `{engine}`"),
                    format!("response {i} answers prompt {}, but there are {prompts}", r.prompt),
                )
            })?;
            group.push(i);
        }
        if let Some((p, g)) = members.iter().enumerate().find(|(_, g)| g.len() != size) {
            return Err(Error::invalid(
                format!("rollout engine `{engine}`"),
                format!("prompt {p} got {} responses, expected num_generations = {size}", g.len()),
            ));
        }
        Ok(Groups { members })
    }

    /// The group (prompt index) of each response.
    pub fn ids(&self, responses: usize) -> Vec<usize> {
        let mut of = vec![0; responses];
        for (g, members) in self.members.iter().enumerate() {
            for &i in members {
                of[i] = g;
            }
        }
        of
    }
}

/// The rollouts of one generation and everything the updates on them need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// Which generation of the run (`step / steps_per_rollout`).
    pub index: usize,
    /// The problems, in prompt order.
    pub problems: Vec<Problem>,
    /// Their prompt ids.
    pub prompts: Vec<Vec<u32>>,
    /// The responses, each naming its prompt.
    pub rollouts: Vec<Rollout>,
    /// Each response's text.
    pub texts: Vec<String>,
    /// Each response's reward and its parts.
    pub scores: Vec<RewardOutput>,
    /// Each response's group-relative advantage.
    pub advantages: Vec<f32>,
    /// Each response token's log-prob under the policy that sampled, as the trainer computes it
    /// (tempered like the loss); `None` when the generation trains one step only, where the
    /// current policy is the sampling one.
    pub old_log_probs: Option<Vec<Vec<f32>>>,
    /// Whether another engine sampled the rollouts (their [`Rollout::log_probs`] are its own), so
    /// the loss weights them by the trainer/engine ratio (`vllm_importance_sampling_*`).
    #[serde(default)]
    pub engine_corrected: bool,
}

/// The responses one optimizer step trains on: whole groups of a generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiniBatch {
    /// Indices of its responses in the generation, group after group.
    pub rows: Vec<usize>,
    /// Its groups, as positions in `rows`.
    pub groups: Vec<Vec<usize>>,
}

impl MiniBatch {
    /// The `chunk`-th mini-batch of `prompts` prompts of `groups`.
    pub fn new(groups: &Groups, chunk: usize, prompts: usize) -> MiniBatch {
        let mine = &groups.members[chunk * prompts..(chunk + 1) * prompts];
        let rows: Vec<usize> = mine.iter().flatten().copied().collect();
        let mut at = 0;
        let groups = mine
            .iter()
            .map(|g| {
                at += g.len();
                (at - g.len()..at).collect()
            })
            .collect();
        MiniBatch { rows, groups }
    }
}
