//! Gradient checkpointing (`gradient_checkpointing`, TRL's name): the gradients of a loss over
//! per-token log-probs without keeping the decoder layers' activations for the backward.
//!
//! A forward pass without a graph keeps only each decoder layer's input, [batch, time, hidden].
//! The loss is then differentiated with respect to the log-probs alone, and that gradient is
//! carried down through the model one piece at a time, each with its own short-lived graph: the
//! final norm, output projection and selective log-softmax a chunk of positions at a time (so the
//! backward never holds [tokens, vocab] logits either), then every decoder layer, recomputed from
//! its saved input, last to first, then the embedding. What the backward keeps is
//! O(layers x tokens x hidden) plus one layer's graph, at the price of a second forward pass.

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Int, Tensor};

use super::batch::TokenBatch;
use crate::logprobs::{TokenLogProbs, chunk_positions, head_log_probs};
use crate::model::{AttentionContext, CausalLm, DecoderLayer, SCORES_PER_BLOCK};

/// The graph-free forward pass of one batch, ready to be differentiated piece by piece.
pub(super) struct Recompute {
    /// The input of every decoder layer, then the last layer's output.
    states: Vec<Tensor<3>>,
    ctx: AttentionContext,
    inputs: Tensor<2, Int>,
    targets: Tensor<1, Int>,
    temperature: f64,
    /// Attention scores a recomputed layer may hold at once (see [`SCORES_PER_BLOCK`]).
    scores: usize,
}

impl Recompute {
    /// Runs `model` (on the autodiff device) over `batch` without a graph; returns the pass and
    /// the log-probs and entropies [batch, time] it gives, none of them tracked.
    pub(super) fn forward(
        model: &CausalLm,
        batch: &TokenBatch,
        temperature: f64,
    ) -> (Recompute, TokenLogProbs) {
        let inner = model.valid();
        let tokens = batch.inner();
        let [b, t] = tokens.inputs.dims();
        let ctx = inner.context(b, t, &inner.device());
        let mut states = vec![inner.embed(tokens.inputs.clone())];
        for i in 0..inner.layers.len() {
            let next = inner.layer_forward(i, states[i].clone(), &ctx);
            states.push(next);
        }
        let last = states.last().expect("the embedding is a state").clone();
        let d = last.dims()[2];
        let targets = tokens.targets.reshape([b * t]);
        let normed = inner.norm.forward(last.reshape([b * t, d]));
        let (log_probs, entropy) = head_log_probs(&inner, normed, targets.clone(), temperature);
        let log_probs =
            TokenLogProbs { log_probs: log_probs.reshape([b, t]), entropy: entropy.reshape([b, t]) };
        let scores = SCORES_PER_BLOCK;
        (Recompute { states, ctx, inputs: tokens.inputs, targets, temperature, scores }, log_probs)
    }

    /// The gradients of every trainable parameter of `model` given `upstream`, the loss's
    /// gradient with respect to the log-probs [batch, time].
    pub(super) fn backward(self, model: &CausalLm, upstream: Tensor<2>) -> GradientsParams {
        let Recompute { mut states, ctx, inputs, targets, temperature, scores } = self;
        let mut acc = GradientsAccumulator::<CausalLm>::new();
        let [b, t] = upstream.dims();
        let upstream = upstream.inner().reshape([b * t]);
        let last = states.pop().expect("the last layer's output");
        let d = last.dims()[2];
        let last = last.reshape([b * t, d]);

        // Norm, output projection and log-softmax, a chunk of positions at a time.
        let rows = chunk_positions(model);
        let mut up = Vec::new();
        for start in (0..b * t).step_by(rows) {
            let n = rows.min(b * t - start);
            let x = Tensor::from_inner(last.clone().narrow(0, start, n)).require_grad();
            let normed = model.norm.forward(x.clone());
            let (log_probs, _) =
                head_log_probs(model, normed, targets.clone().narrow(0, start, n), temperature);
            let grads = (log_probs * upstream.clone().narrow(0, start, n)).sum().backward();
            up.push(x.grad(&grads).expect("the chunk's input is tracked"));
            acc.accumulate(model, GradientsParams::from_grads(grads, model));
        }
        let mut up = Tensor::cat(up, 0).reshape([b, t, d]);

        // Each layer recomputed from its input, last to first; `up` is the gradient at its output.
        for i in (0..model.layers.len()).rev() {
            let x = Tensor::from_inner(states.pop().expect("a layer's input")).require_grad();
            let layer = &model.layers[i];
            if layer.self_attn.query_block(b, t, scores) < t {
                up = attention_in_blocks(model, layer, x, up, &ctx, scores, &mut acc);
                continue;
            }
            let y = model.layer_forward(i, x.clone(), &ctx);
            let mut grads = (y * up).sum().backward();
            up = x.grad(&grads).expect("the layer's input is tracked");
            acc.accumulate(model, GradientsParams::from_module(&mut grads, layer));
        }
        if model.embed_tokens.weight.val().is_require_grad() {
            let embedded = model.embed(Tensor::from_inner(inputs));
            let grads = (embedded * up).sum().backward();
            acc.accumulate(model, GradientsParams::from_grads(grads, model));
        }
        acc.grads()
    }
}

/// The gradient at the input `x` of `layer` given `up`, the gradient at its output, with its
/// parameters' gradients added to `acc`, for a sequence too long for one layer's graph to hold its
/// attention scores: the layer is recomputed in three pieces. The norm and the q/k/v projections
/// keep their graph; the attention output is recomputed without one; the output projection and the
/// MLP are differentiated first, which gives the gradient at the attention output; the attention
/// is then differentiated a block of queries at a time (each block's own small graph), summing the
/// key and value gradients; last the projections, from the q/k/v gradients.
fn attention_in_blocks(
    model: &CausalLm,
    layer: &DecoderLayer,
    x: Tensor<3>,
    up: Tensor<3>,
    ctx: &AttentionContext,
    scores: usize,
    acc: &mut GradientsAccumulator<CausalLm>,
) -> Tensor<3> {
    let attn = &layer.self_attn;
    let [b, t, _] = x.dims();
    let block = attn.query_block(b, t, scores);
    let (q, k, v) = attn.qkv(layer.input_layernorm.forward(x.clone()), ctx);
    let (qi, ki, vi, mask) =
        (q.clone().inner(), k.clone().inner(), v.clone().inner(), ctx.mask.clone().inner());
    let att = attn.attend_blocks(qi.clone(), ki.clone(), vi.clone(), mask.clone(), block);
    let att = Tensor::from_inner(att).require_grad();

    // The output projection, the residuals and the MLP.
    let h = x.clone() + attn.output(att.clone());
    let y = h.clone() + layer.mlp.forward(layer.post_attention_layernorm.forward(h));
    let mut grads = (y * up).sum().backward();
    let d_att = att.grad(&grads).expect("the attention output is tracked");
    let dx = x.grad(&grads).expect("the layer's input is tracked");
    acc.accumulate(model, GradientsParams::from_module(&mut grads, layer));

    // The attention, a block of queries at a time.
    let (mut dq, mut dk, mut dv) = (Vec::new(), ki.zeros_like(), vi.zeros_like());
    for start in (0..t).step_by(block) {
        let n = block.min(t - start);
        let qb = Tensor::from_inner(qi.clone().narrow(2, start, n)).require_grad();
        let (kb, vb) =
            (Tensor::from_inner(ki.clone()).require_grad(), Tensor::from_inner(vi.clone()).require_grad());
        let out = attn.attend(qb.clone(), kb.clone(), vb.clone(), mask.clone().narrow(2, start, n));
        let g = (out * Tensor::from_inner(d_att.clone().narrow(2, start, n))).sum().backward();
        dq.push(qb.grad(&g).expect("the block's queries are tracked"));
        dk = dk + kb.grad(&g).expect("the keys are tracked");
        dv = dv + vb.grad(&g).expect("the values are tracked");
    }
    let dq = Tensor::cat(dq, 2);

    // The norm and the q/k/v projections.
    let seeded = (q * Tensor::from_inner(dq)).sum()
        + (k * Tensor::from_inner(dk)).sum()
        + (v * Tensor::from_inner(dv)).sum();
    let mut grads = seeded.backward();
    let dx = dx + x.grad(&grads).expect("the layer's input is tracked");
    acc.accumulate(model, GradientsParams::from_module(&mut grads, layer));
    dx
}

#[cfg(test)]
mod tests {
    use burn::optim::SgdConfig;
    use burn::tensor::{Device, TensorData};

    use super::*;
    use crate::model::{LoraConfig, init, to_hf_safetensors};
    use crate::train::batch::{Sequence, token_log_probs};

    /// Every weight of `model` under its HF name (adapters merged in).
    fn weights(model: &CausalLm) -> Vec<(String, Vec<f32>)> {
        let bytes = pollster::block_on(to_hf_safetensors(model)).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut out: Vec<(String, Vec<f32>)> = st
            .tensors()
            .into_iter()
            .map(|(name, t)| {
                let values = t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                (name, values.collect())
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// One SGD step of size 1 with `grads`: the weights move by exactly the gradients.
    fn stepped(model: &CausalLm, grads: GradientsParams) -> Vec<(String, Vec<f32>)> {
        let mut sgd = SgdConfig::new().init();
        weights(&sgd.step(1.0, model.clone(), grads))
    }

    #[test]
    fn recomputed_gradients_equal_the_plain_backward() {
        let device = Device::flex().autodiff();
        device.seed(5);
        let full = init(&crate::task::model_config(), &device);
        let lora = LoraConfig { r: 2, ..LoraConfig::default() };
        // Adapters with a non-zero B, so that their gradients and the frozen base are both tested.
        let mut adapted = full.clone().with_lora(&lora, 1).unwrap();
        for layer in &mut adapted.layers {
            for (_, p) in layer.projections_mut() {
                let l = p.lora.as_mut().unwrap();
                l.b = burn::module::Param::from_tensor(l.b.val().ones_like() * 0.01);
            }
        }
        let adapted = adapted.freeze_base();
        let prompts = [vec![1u32, 5, 9], vec![2, 3]];
        let completions = [vec![7u32, 8, 9, 10], vec![4, 4, 6, 11, 12]];
        let sequences: Vec<Sequence> = prompts
            .iter()
            .zip(&completions)
            .map(|(p, c)| Sequence { prompt: p, completion: c, trained: None })
            .collect();
        for (name, model) in [("full", full), ("lora", adapted)] {
            let tokens = TokenBatch::new(&sequences, 0, &device);
            let [b, t] = tokens.inputs.dims();
            let w: Vec<f32> = (0..b * t).map(|i| ((i % 7) as f32 - 3.0) * 0.1).collect();
            let w = Tensor::<2>::from_data(TensorData::new(w, [b, t]), &device);
            let plain = token_log_probs(&model, &tokens, 0.7).log_probs;
            let plain = GradientsParams::from_grads((plain * w.clone()).sum().backward(), &model);
            let plain = stepped(&model, plain);
            // Whole layers, then attention differentiated a block of 3 queries at a time.
            for block in [None, Some(3)] {
                let (mut pass, out) = Recompute::forward(&model, &tokens, 0.7);
                let reference = token_log_probs(&model.valid(), &tokens.inner(), 0.7).log_probs;
                let (a, r) = (out.log_probs.into_data(), reference.into_data());
                a.assert_approx_eq::<f32>(&r, burn::tensor::Tolerance::absolute(1e-6));
                if let Some(queries) = block {
                    let heads = model.layers[0].self_attn.num_heads;
                    pass.scores = b * heads * t * queries;
                    assert_eq!(model.layers[0].self_attn.query_block(b, t, pass.scores), queries);
                }
                let recomputed = stepped(&model, pass.backward(&model, w.clone()));
                let before = weights(&model);
                let mut moved = false;
                for (((name_a, a), (_, r)), (_, w0)) in recomputed.iter().zip(&plain).zip(&before) {
                    for ((x, y), z) in a.iter().zip(r).zip(w0) {
                        assert!((x - y).abs() < 1e-5, "{name} {block:?}: {name_a} differs: {x} vs {y}");
                        moved |= (y - z).abs() > 1e-6;
                    }
                }
                assert!(moved, "{name}: the gradients are all zero");
            }
        }
    }
}
