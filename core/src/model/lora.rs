//! LoRA adapters (Hu et al., 2021) in PEFT's convention. A projection `y = x W + b` gains
//! `(lora_alpha / r) * dropout(x) A B`, with A [in, r] and B [r, out]; B starts at zero, so a fresh
//! adapter leaves the model's outputs unchanged. With adapters only A and B train: the base is
//! frozen (no gradients, no Adam state), and the base with its adapters switched off is the
//! reference model, sharing the policy's weights instead of copying them.

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::tensor::{DType, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::linear;
use super::transformer::CausalLm;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// The projections of a decoder layer that can carry an adapter, by their Hugging Face names.
pub const PROJECTIONS: [&str; 7] =
    ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

/// Which projections get adapters and how they are shaped (PEFT's `LoraConfig` names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoraConfig {
    /// Rank of each update. Default 8 (PEFT's).
    pub r: usize,
    /// The update is scaled by `lora_alpha / r`. Default 16.
    pub lora_alpha: f64,
    /// Dropout on an adapter's input while training. Default 0 (PEFT's).
    pub lora_dropout: f64,
    /// The projections that get an adapter, by name (`q_proj` ... `down_proj`). Default all seven
    /// (PEFT's `all-linear`).
    pub target_modules: Vec<String>,
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig {
            r: 8,
            lora_alpha: 16.0,
            lora_dropout: 0.0,
            target_modules: PROJECTIONS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl LoraConfig {
    /// Checks every field, naming the one at fault under `at` (e.g. `rl.lora`).
    pub fn validate(&self, at: &str) -> Result<()> {
        if self.r == 0 {
            return Err(Error::invalid(format!("{at}.r"), "must be at least 1"));
        }
        if !(self.lora_alpha.is_finite() && self.lora_alpha > 0.0) {
            return Err(Error::invalid(
                format!("{at}.lora_alpha"),
                format!("{} must be positive", self.lora_alpha),
            ));
        }
        if !(0.0..1.0).contains(&self.lora_dropout) {
            return Err(Error::invalid(
                format!("{at}.lora_dropout"),
                format!("{} must be in [0, 1)", self.lora_dropout),
            ));
        }
        if self.target_modules.is_empty() {
            return Err(Error::invalid(format!("{at}.target_modules"), "name at least one projection"));
        }
        for (i, m) in self.target_modules.iter().enumerate() {
            if !PROJECTIONS.contains(&m.as_str()) {
                return Err(Error::invalid(
                    format!("{at}.target_modules"),
                    format!("`{m}` is not one of {}", PROJECTIONS.join(", ")),
                ));
            }
            if self.target_modules[..i].contains(m) {
                return Err(Error::invalid(format!("{at}.target_modules"), format!("`{m}` is named twice")));
            }
        }
        Ok(())
    }

    /// `lora_alpha / r`.
    pub fn scaling(&self) -> f32 {
        (self.lora_alpha / self.r as f64) as f32
    }

    /// Whether projection `name` (e.g. `self_attn.q_proj`) gets an adapter.
    pub fn targets(&self, name: &str) -> bool {
        self.target_modules.iter().any(|m| m == short_name(name))
    }
}

/// A projection's name without its block: `q_proj` of `self_attn.q_proj`.
pub(super) fn short_name(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// One adapter: the low-rank update `scaling * dropout(x) A B`.
#[derive(Module, Debug)]
pub struct Lora {
    /// Down projection [in, r] (PEFT's `lora_A.weight` is its transpose).
    pub a: Param<Tensor<2>>,
    /// Up projection [r, out] (PEFT's `lora_B.weight` is its transpose).
    pub b: Param<Tensor<2>>,
    /// `lora_alpha / r`.
    pub scaling: f32,
    /// Dropout on the input (active only in a backward-tracked forward).
    pub dropout: Dropout,
}

impl Lora {
    /// An adapter with down and up projections `a` [in, r] and `b` [r, out], scaled and dropped
    /// out as `config` says.
    pub fn new(a: Tensor<2>, b: Tensor<2>, config: &LoraConfig) -> Lora {
        Lora {
            a: Param::from_tensor(a),
            b: Param::from_tensor(b),
            scaling: config.scaling(),
            dropout: DropoutConfig::new(config.lora_dropout).init(),
        }
    }

    /// The adapter's contribution for [batch, time, in] inputs.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let x = self.dropout.forward(x.reshape([b * t, d]));
        let y = x.matmul(self.a.val()).matmul(self.b.val()) * self.scaling;
        let [_, out] = y.dims();
        y.reshape([b, t, out])
    }

    /// `scaling * A B`, [in, out]: what merging adds to the base weight.
    pub fn delta(&self) -> Tensor<2> {
        self.a.val().matmul(self.b.val()) * self.scaling
    }
}

/// A projection of the decoder, `y = x W + b`, with an optional adapter.
#[derive(Module, Debug)]
pub struct Projection {
    /// The base weight [in, out] and bias.
    pub base: Linear,
    /// The adapter, when the projection has one.
    pub lora: Option<Lora>,
}

impl From<Linear> for Projection {
    fn from(base: Linear) -> Self {
        Projection { base, lora: None }
    }
}

impl Projection {
    /// Applies the projection (and its adapter) to [batch, time, in].
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        match &self.lora {
            Some(lora) => linear(&self.base, x.clone()) + lora.forward(x),
            None => linear(&self.base, x),
        }
    }

    /// The weight [in, out] with the adapter folded in (in f32 when the base is kept in half
    /// precision and there is an adapter to add).
    pub fn merged_weight(&self) -> Tensor<2> {
        match &self.lora {
            Some(lora) => self.base.weight.val().cast(DType::F32) + lora.delta(),
            None => self.base.weight.val(),
        }
    }

    /// Gives the projection an adapter with PEFT's initialisation: A uniform in ±1/sqrt(in)
    /// (kaiming-uniform with a = sqrt(5)), drawn from `rng`, and B zero.
    fn attach(&mut self, config: &LoraConfig, rng: &mut Rng) {
        let [d_in, d_out] = self.base.weight.dims();
        let device = self.base.weight.val().device();
        let bound = 1.0 / (d_in as f64).sqrt();
        let a: Vec<f32> =
            (0..d_in * config.r).map(|_| ((2.0 * rng.uniform() - 1.0) * bound) as f32).collect();
        let a = Tensor::<2>::from_data(TensorData::new(a, [d_in, config.r]), &device);
        let b = Tensor::<2>::zeros([config.r, d_out], &device);
        self.lora = Some(Lora::new(a, b, config));
    }
}

impl CausalLm {
    /// The model with a fresh adapter on every projection `config` targets (seeded by `seed`) and
    /// everything else frozen.
    pub fn with_lora(mut self, config: &LoraConfig, seed: u64) -> Result<CausalLm> {
        config.validate("lora")?;
        for (i, layer) in self.layers.iter_mut().enumerate() {
            for (j, (name, projection)) in layer.projections_mut().into_iter().enumerate() {
                if config.targets(name) {
                    projection.attach(config, &mut Rng::stream(seed, (i * PROJECTIONS.len() + j) as u64));
                }
            }
        }
        Ok(self.freeze_base())
    }

    /// Whether any projection carries an adapter.
    pub fn has_adapters(&self) -> bool {
        self.layers.iter().any(|l| l.projections().iter().any(|(_, p)| p.lora.is_some()))
    }

    /// The model with its adapters switched off: the same base weights (shared, not copied).
    pub fn without_adapters(&self) -> CausalLm {
        let mut base = self.clone();
        for layer in &mut base.layers {
            layer.projections_mut().into_iter().for_each(|(_, p)| p.lora = None);
        }
        base
    }

    /// The model with every adapter folded into its base weight, `W + scaling A B`: a plain
    /// model that computes the same function.
    pub fn merge_adapters(mut self) -> CausalLm {
        for layer in &mut self.layers {
            for (_, p) in layer.projections_mut() {
                if p.lora.is_some() {
                    // Back in the base's own dtype (merging does not widen a half-precision
                    // base), and a plain weight: no graph back to the adapter.
                    let dtype = p.base.weight.val().dtype();
                    p.base.weight = Param::from_tensor(p.merged_weight().cast(dtype).detach());
                    p.lora = None;
                }
            }
        }
        self
    }

    /// Stops gradients for every parameter but the adapters' (after attaching them, and after
    /// loading a checkpoint's record, which carries no such flags).
    pub fn freeze_base(mut self) -> CausalLm {
        self.embed_tokens = self.embed_tokens.no_grad();
        self.norm = self.norm.no_grad();
        self.lm_head = self.lm_head.map(Module::no_grad);
        for layer in &mut self.layers {
            layer.input_layernorm = layer.input_layernorm.clone().no_grad();
            layer.post_attention_layernorm = layer.post_attention_layernorm.clone().no_grad();
            let attn = &mut layer.self_attn;
            attn.q_norm = attn.q_norm.take().map(Module::no_grad);
            attn.k_norm = attn.k_norm.take().map(Module::no_grad);
            for (_, p) in layer.projections_mut() {
                p.base = p.base.clone().no_grad();
                if let Some(lora) = &mut p.lora {
                    lora.a = lora.a.clone().set_require_grad(true);
                    lora.b = lora.b.clone().set_require_grad(true);
                }
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Device;

    use super::*;

    fn matrix<const D: usize>(v: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
        Tensor::from_data(TensorData::new(v, shape), device)
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    fn close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{what}: {got:?}, want {want:?}");
        }
    }

    /// x W + 2 (x A) B and its gradients, worked by hand: x = [[1, 2, 3], [0.5, -1, 2]],
    /// W = [[1, 0], [0, 1], [1, 1]], A = [0.1, 0.2, 0.3]^T, B = [1, -1], loss = sum(y * g).
    #[test]
    fn an_adapter_adds_its_scaled_update_and_only_it_gets_gradients() {
        let device = Device::flex().autodiff();
        let base = Linear {
            weight: Param::from_tensor(matrix(vec![1., 0., 0., 1., 1., 1.], [3, 2], &device)),
            bias: None,
        }
        .no_grad();
        let lora = Lora {
            a: Param::from_tensor(matrix(vec![0.1, 0.2, 0.3], [3, 1], &device)),
            b: Param::from_tensor(matrix(vec![1., -1.], [1, 2], &device)),
            scaling: 2.0,
            dropout: DropoutConfig::new(0.0).init(),
        };
        let p = Projection { base, lora: Some(lora) };
        let x = matrix(vec![1., 2., 3., 0.5, -1., 2.], [1, 2, 3], &device);
        let y = p.forward(x);
        // x A = [1.4, 0.45]; x W = [[4, 5], [2.5, 1]].
        close(&values(y.clone()), &[6.8, 2.2, 3.4, 0.1], "y");
        let g = matrix(vec![1., 2., 3., -1.], [1, 2, 2], &device);
        let grads = (y * g).sum().backward();
        let lora = p.lora.as_ref().unwrap();
        // dB = 2 (x A)^T g; dA = 2 x^T (g B^T), with g B^T = [-1, 4].
        close(&values(lora.b.val().grad(&grads).unwrap()), &[5.5, 4.7], "dB");
        close(&values(lora.a.val().grad(&grads).unwrap()), &[2.0, -12.0, 10.0], "dA");
        assert!(p.base.weight.val().grad(&grads).is_none(), "the frozen base got a gradient");
        // Merging folds the same update into the weight.
        let merged = p.merged_weight().inner();
        close(&values(merged), &[1.2, -0.2, 0.4, 0.6, 1.6, 0.4], "W + 2 A B");
    }

    #[test]
    fn config_validation_names_the_field() {
        let c = LoraConfig::default();
        c.validate("rl.lora").unwrap();
        let bad = |c: LoraConfig| c.validate("rl.lora").unwrap_err().to_string();
        assert!(bad(LoraConfig { r: 0, ..c.clone() }).contains("rl.lora.r"));
        assert!(bad(LoraConfig { lora_alpha: f64::NAN, ..c.clone() }).contains("rl.lora.lora_alpha"));
        assert!(bad(LoraConfig { lora_dropout: 1.0, ..c.clone() }).contains("rl.lora.lora_dropout"));
        let e = bad(LoraConfig { target_modules: vec!["qproj".into()], ..c.clone() });
        assert!(e.contains("rl.lora.target_modules") && e.contains("`qproj`"), "{e}");
        assert!(bad(LoraConfig { target_modules: vec!["q_proj".into(); 2], ..c }).contains("twice"));
    }
}
