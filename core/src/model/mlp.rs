//! The SwiGLU feed-forward block.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Tensor, activation::silu};

use super::linear;

/// `down(silu(gate(x)) * up(x))`.
#[derive(Module, Debug)]
pub struct Mlp {
    /// Gate projection, hidden -> intermediate.
    pub gate_proj: Linear,
    /// Up projection, hidden -> intermediate.
    pub up_proj: Linear,
    /// Down projection, intermediate -> hidden.
    pub down_proj: Linear,
}

impl Mlp {
    /// Applies the block to [batch, time, hidden].
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        linear(&self.down_proj, silu(linear(&self.gate_proj, x.clone())) * linear(&self.up_proj, x))
    }
}
