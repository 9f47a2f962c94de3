//! AdamW with a global gradient-norm clip and a learning-rate schedule, and its configuration;
//! its state saves and loads.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::CausalLm;

/// How the learning rate moves over a run (transformers: `lr_scheduler_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Warm-up, then constant.
    #[default]
    Constant,
    /// Warm-up, then linear decay to 0.
    Linear,
    /// Warm-up, then cosine decay to 0.
    Cosine,
}

/// AdamW with global gradient-norm clipping and a schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimConfig {
    /// Peak learning rate. Default 1e-6, the paper's for billion-parameter models (tiny models
    /// need far more).
    pub learning_rate: f64,
    /// Decoupled weight decay. Default 0.01.
    pub weight_decay: f64,
    /// Default 0.9.
    pub adam_beta1: f64,
    /// Default 0.999.
    pub adam_beta2: f64,
    /// Default 1e-8.
    pub adam_epsilon: f64,
    /// Clip the global gradient norm to this (0 = no clipping). Default 1.0.
    pub max_grad_norm: f64,
    /// Steps of linear warm-up. Default 0.
    pub warmup_steps: usize,
    /// Default constant.
    pub lr_scheduler_type: Schedule,
    /// Updates skipped in a row for a NaN or infinity in the loss, the gradients or the rewards
    /// before the phase stops (after a checkpoint of the last good state); 0 stops at the first.
    /// Default 3.
    pub max_nan_skips: usize,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            learning_rate: 1e-6,
            weight_decay: 0.01,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_epsilon: 1e-8,
            max_grad_norm: 1.0,
            warmup_steps: 0,
            lr_scheduler_type: Schedule::Constant,
            max_nan_skips: 3,
        }
    }
}

impl OptimConfig {
    /// Checks every knob; `section` prefixes the names in errors.
    pub fn validate(&self, section: &str) -> Result<()> {
        let bad = |name: &str, v: f64, want: &str| {
            Err(Error::invalid(format!("{section}.{name}"), format!("{v} {want}")))
        };
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("learning_rate", self.learning_rate, "must be > 0");
        }
        for (name, v) in [("adam_beta1", self.adam_beta1), ("adam_beta2", self.adam_beta2)] {
            if !(0.0..1.0).contains(&v) {
                return bad(name, v, "must be in [0, 1)");
            }
        }
        for (name, v) in [
            ("weight_decay", self.weight_decay),
            ("adam_epsilon", self.adam_epsilon),
            ("max_grad_norm", self.max_grad_norm),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return bad(name, v, "must be >= 0");
            }
        }
        Ok(())
    }

    /// The learning rate at `step` (0-based) of `total`.
    pub fn lr_at(&self, step: usize, total: usize) -> f64 {
        if step < self.warmup_steps {
            return self.learning_rate * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = total.saturating_sub(self.warmup_steps).max(1) as f64;
        let progress = ((step - self.warmup_steps) as f64 / span).min(1.0);
        self.learning_rate
            * match self.lr_scheduler_type {
                Schedule::Constant => 1.0,
                Schedule::Linear => 1.0 - progress,
                Schedule::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
            }
    }
}

/// The optimizer of one phase (SFT or one RL method).
pub struct Optimizer {
    adamw: ModuleOptimizer,
    config: OptimConfig,
    total_steps: usize,
}

impl Optimizer {
    /// A fresh optimizer for `total_steps` steps.
    pub fn new(config: &OptimConfig, total_steps: usize) -> Self {
        Optimizer { adamw: Self::adamw(config), config: config.clone(), total_steps }
    }

    fn adamw(config: &OptimConfig) -> ModuleOptimizer {
        AdamWConfig::new()
            .with_beta_1(config.adam_beta1 as f32)
            .with_beta_2(config.adam_beta2 as f32)
            .with_epsilon(config.adam_epsilon as f32)
            .with_weight_decay(config.weight_decay as f32)
            .init()
    }

    /// The learning rate of optimizer step `step`.
    pub fn lr(&self, step: usize) -> f64 {
        self.config.lr_at(step, self.total_steps)
    }

    /// The global norm of `grads` over `model`'s parameters, a `[1]` tensor: read back (with the
    /// loss) before [`Optimizer::apply`], so that a non-finite one can skip the update.
    pub fn grad_norm(model: &CausalLm, grads: &GradientsParams) -> Tensor<1> {
        let mut squares = SumSquares { grads, parts: Vec::new() };
        model.visit(&mut squares);
        Tensor::cat(squares.parts, 0).sum().sqrt()
    }

    /// Clips `grads` to `max_grad_norm` by their global `norm` (see [`Optimizer::grad_norm`]) and
    /// applies optimizer step `step`.
    pub fn apply(
        &mut self,
        step: usize,
        model: CausalLm,
        mut grads: GradientsParams,
        norm: Tensor<1>,
    ) -> CausalLm {
        if self.config.max_grad_norm > 0.0 {
            let scale = (norm + 1e-6).recip().mul_scalar(self.config.max_grad_norm).clamp_max(1.0);
            model.visit(&mut Scale { grads: &mut grads, scale });
        }
        self.adamw.step(self.lr(step), model, grads)
    }

    /// The number of non-finite updates that may be skipped in a row.
    pub fn max_nan_skips(&self) -> usize {
        self.config.max_nan_skips
    }

    /// The optimizer state (moments and step counts, keyed by parameter id) as bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let bytes = self.adamw.into_bytes().map_err(|e| Error::invalid("optimizer state", e.to_string()))?;
        Ok(bytes.to_vec())
    }

    /// Restores the state written by [`Optimizer::to_bytes`], read from `file` (named in errors).
    pub fn load_bytes(&mut self, bytes: Vec<u8>, file: &str) -> Result<()> {
        let bytes = burn::tensor::Bytes::from_bytes_vec(bytes);
        self.adamw = Self::adamw(&self.config)
            .from_bytes(bytes)
            .map_err(|e| Error::checkpoint(file, format!("invalid optimizer state: {e}")))?;
        Ok(())
    }
}

struct SumSquares<'a> {
    grads: &'a GradientsParams,
    parts: Vec<Tensor<1>>,
}

impl ModuleVisitor for SumSquares<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            self.parts.push(g.square().sum());
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    scale: Tensor<1>,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            let scale = self.scale.clone().reshape([1; D]);
            self.grads.register::<D>(param.id, g * scale);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        let o = OptimConfig { learning_rate: 1.0, warmup_steps: 10, ..OptimConfig::default() };
        assert_eq!(o.lr_at(0, 110), 0.1);
        assert_eq!(o.lr_at(9, 110), 1.0);
        assert_eq!(o.lr_at(50, 110), 1.0);
        let cos = OptimConfig { lr_scheduler_type: Schedule::Cosine, ..o.clone() };
        assert!((cos.lr_at(60, 110) - 0.5).abs() < 1e-12);
        let lin = OptimConfig { lr_scheduler_type: Schedule::Linear, ..o };
        assert!((lin.lr_at(110, 110)).abs() < 1e-12);
    }
}
