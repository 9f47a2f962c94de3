//! Rotary position embeddings, HF convention (`rotate_half` over the two halves of each head).

use burn::tensor::{Device, Tensor, TensorData};

use super::config::{ModelConfig, RopeScaling};

/// The rotary frequencies of one model; cos/sin are built per forward pass from row positions, so
/// left-padded batches and key/value-cache offsets need no precomputed table.
#[derive(Debug, Clone)]
pub struct Rope {
    inv_freq: Vec<f32>,
}

impl Rope {
    /// Frequencies for `config`'s head width, theta and scaling (default, linear, llama3).
    pub fn new(config: &ModelConfig) -> Self {
        let d = config.head_dim;
        let inv_freq: Vec<f32> = (0..d / 2)
            .map(|i| {
                let f = 1.0 / config.rope_theta.powf((2 * i) as f64 / d as f64);
                (match config.rope_scaling {
                    RopeScaling::Default => f,
                    RopeScaling::Linear { factor } => f / factor,
                    RopeScaling::Llama3 {
                        factor,
                        low_freq_factor,
                        high_freq_factor,
                        original_max_position_embeddings,
                    } => {
                        let wavelen = 2.0 * std::f64::consts::PI / f;
                        let low_wavelen = original_max_position_embeddings / low_freq_factor;
                        let high_wavelen = original_max_position_embeddings / high_freq_factor;
                        if wavelen < high_wavelen {
                            f
                        } else if wavelen > low_wavelen {
                            f / factor
                        } else {
                            let smooth = (original_max_position_embeddings / wavelen - low_freq_factor)
                                / (high_freq_factor - low_freq_factor);
                            (1.0 - smooth) * f / factor + smooth * f
                        }
                    }
                }) as f32
            })
            .collect();
        // transformers keeps `inv_freq` in the checkpoint's dtype, so a bf16 checkpoint rotates by
        // bf16-rounded frequencies even in a float32 forward; matching it keeps logits identical.
        let inv_freq = inv_freq.into_iter().map(|f| config.dtype.round(f)).collect();
        Rope { inv_freq }
    }

    /// cos and sin for `positions` (row-major [batch][time]), shaped [batch, 1, time, head_dim] so
    /// they broadcast over heads.
    pub fn cos_sin(&self, positions: &[Vec<usize>], device: &Device) -> (Tensor<4>, Tensor<4>) {
        let b = positions.len();
        let t = positions.first().map_or(0, Vec::len);
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(b * t * half * 2);
        let mut sin = Vec::with_capacity(b * t * half * 2);
        for row in positions {
            for &p in row {
                // Angles in f32 like transformers (inv_freq f32 × position f32).
                let (c, s): (Vec<f32>, Vec<f32>) =
                    self.inv_freq.iter().map(|&f| p as f32 * f).map(|a| (a.cos(), a.sin())).unzip();
                cos.extend_from_slice(&c);
                cos.extend_from_slice(&c);
                sin.extend_from_slice(&s);
                sin.extend_from_slice(&s);
            }
        }
        let shape = [b, 1, t, half * 2];
        (
            Tensor::from_data(TensorData::new(cos, shape), device),
            Tensor::from_data(TensorData::new(sin, shape), device),
        )
    }
}

/// Rotates `x` [batch, heads, time, head_dim] by the angles in `cos`/`sin`.
pub fn apply_rope(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let [b, h, t, d] = x.dims();
    let x1 = x.clone().slice([0..b, 0..h, 0..t, 0..d / 2]);
    let x2 = x.clone().slice([0..b, 0..h, 0..t, d / 2..d]);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    x * cos.clone() + rotated * sin.clone()
}
