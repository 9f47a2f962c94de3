//! The key/value cache of batched decoding.

use burn::tensor::{Int, Tensor, TensorData};

/// Keys and values of every layer for a batch of rows that share one length (prompts are left-padded,
/// so row `b`'s first `pad[b]` positions are padding and masked out).
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
    pad: Vec<usize>,
    len: usize,
}

impl KvCache {
    /// An empty cache for `num_layers` layers and rows with the given left padding.
    pub fn new(num_layers: usize, pad: Vec<usize>) -> Self {
        KvCache { layers: vec![None; num_layers], pad, len: 0 }
    }

    /// Positions filled so far (padding included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of rows.
    pub fn batch_size(&self) -> usize {
        self.pad.len()
    }

    /// Left padding of each row.
    pub fn pad(&self) -> &[usize] {
        &self.pad
    }

    /// Appends this step's keys/values [batch, kv_heads, new, head_dim] to layer `layer` and returns
    /// the whole history.
    pub(crate) fn append(&mut self, layer: usize, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let (k, v) = match self.layers[layer].take() {
            Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
            None => (k, v),
        };
        self.layers[layer] = Some((k.clone(), v.clone()));
        (k, v)
    }

    /// Records that `n` positions were appended to every layer.
    pub(crate) fn advance(&mut self, n: usize) {
        self.len += n;
    }

    /// Rolls the cache back to `len` positions, forgetting everything after (a discarded probe).
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        for (k, v) in self.layers.iter_mut().flatten() {
            *k = k.clone().narrow(2, 0, len);
            *v = v.clone().narrow(2, 0, len);
        }
        self.len = len;
    }

    /// A new cache holding only `rows` (in that order): lets some rows run ahead (probes) while the
    /// original stays untouched, or drops finished rows from a batch.
    pub fn select_rows(&self, rows: &[usize]) -> KvCache {
        let pad = rows.iter().map(|&r| self.pad[r]).collect();
        let layers = self
            .layers
            .iter()
            .map(|l| {
                l.as_ref().map(|(k, v)| {
                    let idx = Tensor::<1, Int>::from_data(
                        TensorData::new(rows.iter().map(|&r| r as i64).collect::<Vec<_>>(), [rows.len()]),
                        &k.device(),
                    );
                    (k.clone().select(0, idx.clone()), v.clone().select(0, idx))
                })
            })
            .collect();
        KvCache { layers, pad, len: self.len }
    }
}
