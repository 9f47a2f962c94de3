//! The SwiGLU feed-forward block.

use burn::module::Module;
use burn::tensor::{Tensor, activation::silu};

use super::lora::Projection;

/// `down(silu(gate(x)) * up(x))`.
#[derive(Module, Debug)]
pub struct Mlp {
    /// Gate projection, hidden -> intermediate.
    pub gate_proj: Projection,
    /// Up projection, hidden -> intermediate.
    pub up_proj: Projection,
    /// Down projection, intermediate -> hidden.
    pub down_proj: Projection,
}

impl Mlp {
    /// Applies the block to [batch, time, hidden].
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.down_proj.forward(silu(self.gate_proj.forward(x.clone())) * self.up_proj.forward(x))
    }
}
