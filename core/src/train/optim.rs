//! AdamW with a global gradient-norm clip and a learning-rate schedule; its state saves and loads.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;

use super::config::OptimConfig;
use crate::error::{Error, Result};
use crate::model::CausalLm;

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

    /// Clips `grads` to the global norm and applies step `step`; returns the model and the norm
    /// before clipping (a [1] tensor, read back with the other metrics).
    pub fn step(
        &mut self,
        step: usize,
        model: CausalLm,
        mut grads: GradientsParams,
    ) -> (CausalLm, Tensor<1>) {
        let mut squares = SumSquares { grads: &grads, parts: Vec::new() };
        model.visit(&mut squares);
        let norm = Tensor::cat(squares.parts, 0).sum().sqrt();
        if self.config.max_grad_norm > 0.0 {
            let scale = (norm.clone() + 1e-6).recip().mul_scalar(self.config.max_grad_norm).clamp_max(1.0);
            model.visit(&mut Scale { grads: &mut grads, scale });
        }
        (self.adamw.step(self.lr(step), model, grads), norm)
    }

    /// The optimizer state (moments and step counts, keyed by parameter id) as bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let bytes = self.adamw.into_bytes().map_err(|e| Error::invalid("optimizer state", e.to_string()))?;
        Ok(bytes.to_vec())
    }

    /// Restores the state written by [`Optimizer::to_bytes`].
    pub fn load_bytes(&mut self, bytes: Vec<u8>) -> Result<()> {
        let bytes = burn::tensor::Bytes::from_bytes_vec(bytes);
        self.adamw = Self::adamw(&self.config)
            .from_bytes(bytes)
            .map_err(|e| Error::invalid("optimizer state", e.to_string()))?;
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
