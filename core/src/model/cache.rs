//! The key/value cache of batched decoding.
//!
//! All rows share one physical length, but each row keeps its own list of valid positions. That
//! lets a row be rewound (a discarded probe, a truncated thought) without touching the others:
//! its abandoned positions are masked out, and its next token continues at its logical position.
//! Rotary embeddings only see relative positions, so the holes change nothing numerically.

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::attention::MASKED;

/// Keys and values of every layer for a batch of rows.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
    /// Per row, whether each physical position is part of the row's sequence.
    valid: Vec<Vec<bool>>,
    /// Left padding still to be applied to the first tokens appended (prompts of unequal length).
    pending_pad: Vec<usize>,
}

impl KvCache {
    /// An empty cache for `num_layers` layers and rows whose first `pad[r]` tokens are padding.
    pub fn new(num_layers: usize, pad: Vec<usize>) -> Self {
        KvCache { layers: vec![None; num_layers], valid: vec![Vec::new(); pad.len()], pending_pad: pad }
    }

    /// Physical positions filled so far (padding and rewound positions included).
    pub fn len(&self) -> usize {
        self.valid.first().map_or(0, Vec::len)
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of rows.
    pub fn batch_size(&self) -> usize {
        self.valid.len()
    }

    /// Tokens in row `row`'s sequence (its next token's position).
    pub fn row_len(&self, row: usize) -> usize {
        self.valid[row].iter().filter(|&&v| v).count()
    }

    /// Rotary positions and additive mask [rows, 1, new, len + new] for appending `new` tokens per
    /// row; records the new positions as valid (except left padding on the first call).
    pub(crate) fn reserve(&mut self, new: usize, device: &Device) -> (Vec<Vec<usize>>, Tensor<4>) {
        let past = self.len();
        let keys = past + new;
        let rows = self.batch_size();
        let mut positions = Vec::with_capacity(rows);
        let mut mask = Vec::with_capacity(rows * new * keys);
        for (r, valid) in self.valid.iter_mut().enumerate() {
            let pad = self.pending_pad[r];
            let mut next = valid.iter().filter(|&&v| v).count();
            valid.extend((0..new).map(|i| i >= pad));
            let mut row_pos = Vec::with_capacity(new);
            for i in 0..new {
                row_pos.push(next);
                if i >= pad {
                    next += 1;
                }
                mask.extend((0..keys).map(|j| if valid[j] && j <= past + i { 0.0 } else { MASKED }));
            }
            positions.push(row_pos);
        }
        self.pending_pad.iter_mut().for_each(|p| *p = 0);
        (positions, Tensor::from_data(TensorData::new(mask, [rows, 1, new, keys]), device))
    }

    /// Appends this step's keys/values [rows, kv_heads, new, head_dim] to layer `layer` and returns
    /// the whole history.
    pub(crate) fn append(&mut self, layer: usize, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let (k, v) = match self.layers[layer].take() {
            Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
            None => (k, v),
        };
        self.layers[layer] = Some((k.clone(), v.clone()));
        (k, v)
    }

    /// Rewinds row `row` to its first `len` tokens; later tokens of that row are forgotten, the
    /// other rows are untouched.
    pub fn rewind_row(&mut self, row: usize, len: usize) {
        let mut kept = 0;
        for v in self.valid[row].iter_mut().filter(|v| **v) {
            if kept < len {
                kept += 1;
            } else {
                *v = false;
            }
        }
    }

    /// Drops every physical position from `len` on, for all rows (e.g. after a batch-wide probe).
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len() {
            return;
        }
        for (k, v) in self.layers.iter_mut().flatten() {
            *k = k.clone().narrow(2, 0, len);
            *v = v.clone().narrow(2, 0, len);
        }
        self.valid.iter_mut().for_each(|v| v.truncate(len));
    }

    /// A new cache holding only `rows` (in that order): drops finished rows from a batch, or lets
    /// some rows run ahead on their own while the original stays untouched.
    pub fn select_rows(&self, rows: &[usize]) -> KvCache {
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
        KvCache {
            layers,
            valid: rows.iter().map(|&r| self.valid[r].clone()).collect(),
            pending_pad: rows.iter().map(|&r| self.pending_pad[r]).collect(),
        }
    }
}
