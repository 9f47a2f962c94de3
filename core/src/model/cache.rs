//! The key/value cache of batched decoding.
//!
//! Each layer's keys and values live in one preallocated [rows, kv_heads, capacity, head_dim]
//! buffer that new tokens are written into in place (a scatter at each row's own write position),
//! so decoding copies nothing per token; the buffer doubles when it fills up. Row `r` holds its
//! sequence in the slots `start[r]..end[r]` (its left padding comes before `start[r]`). Rewinding a
//! row (a discarded probe, a truncated thought) only moves its `end` back: the next tokens overwrite
//! the abandoned slots, and the other rows are untouched. The attention mask follows from `start`
//! and `end` alone, so it is built on the device from two small integer vectors.

use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};

use super::attention::MASKED;

/// Slots allocated at least, so short generations never grow the buffer.
const MIN_CAPACITY: usize = 64;

/// Keys and values of every layer for a batch of rows.
#[derive(Debug, Clone)]
pub struct KvCache {
    /// Per layer, keys and values [rows, kv_heads, capacity, head_dim] (allocated on first write).
    layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
    /// Slots per row in the buffers.
    capacity: usize,
    /// Per row, the slot of its first token (slots before it are left padding).
    start: Vec<usize>,
    /// Per row, the slot its next token is written to.
    end: Vec<usize>,
    /// Slots written by the forward pass under way: [rows, 1, new, 1] from `reserve`, spread to
    /// [rows, kv_heads, new, head_dim] by the first layer's `append`.
    write: Option<Tensor<4, Int>>,
}

impl KvCache {
    /// An empty cache for `num_layers` layers and rows whose first `pad[r]` tokens are padding.
    pub fn new(num_layers: usize, pad: Vec<usize>) -> Self {
        KvCache {
            layers: vec![None; num_layers],
            capacity: 0,
            end: vec![0; pad.len()],
            start: pad,
            write: None,
        }
    }

    /// Physical positions in use: the furthest any row has written (padding included).
    pub fn len(&self) -> usize {
        self.end.iter().copied().max().unwrap_or(0)
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of rows.
    pub fn batch_size(&self) -> usize {
        self.end.len()
    }

    /// Tokens in row `row`'s sequence (its next token's position).
    pub fn row_len(&self, row: usize) -> usize {
        self.end[row].saturating_sub(self.start[row])
    }

    /// Rotary positions and additive mask [rows, 1, new, keys] for appending `new` tokens per row,
    /// where `keys` covers every row's slots so far plus the new ones. Records the new slots as
    /// written; left padding written by the first call stays outside each row's sequence.
    pub(crate) fn reserve(&mut self, new: usize, device: &Device) -> (Vec<Vec<usize>>, Tensor<4>) {
        let rows = self.batch_size();
        let keys = self.len() + new;
        self.grow(keys);
        // Padding slots get position 0, like the first token (they are masked anyway).
        let positions: Vec<Vec<usize>> = (0..rows)
            .map(|r| (0..new).map(|i| (self.end[r] + i).saturating_sub(self.start[r])).collect())
            .collect();
        let end = &self.end;
        let slots: Vec<i64> = (0..rows).flat_map(|r| (0..new).map(move |i| (end[r] + i) as i64)).collect();
        let slots = Tensor::<4, Int>::from_data(TensorData::new(slots, [rows, 1, new, 1]), device);
        let start: Vec<i64> = self.start.iter().map(|&s| s as i64).collect();
        let start = Tensor::<4, Int>::from_data(TensorData::new(start, [rows, 1, 1, 1]), device);

        // Query i of row r (at slot end[r] + i) sees the row's slots start[r] ..= end[r] + i.
        let shape = [rows, 1, new, keys];
        let key = Tensor::<1, Int>::arange(0..keys as i64, device).reshape([1, 1, 1, keys]).expand(shape);
        let seen = key
            .clone()
            .greater_equal(start.expand(shape))
            .bool_and(key.lower_equal(slots.clone().expand(shape)));
        let mask = Tensor::<4>::zeros(shape, device).mask_fill(seen.bool_not(), MASKED);

        self.end.iter_mut().for_each(|e| *e += new);
        self.write = Some(slots);
        (positions, mask)
    }

    /// Makes room for `slots` slots per row: doubling keeps the copies amortised O(1) per token.
    fn grow(&mut self, slots: usize) {
        if slots <= self.capacity {
            return;
        }
        let capacity = slots.max(2 * self.capacity).max(MIN_CAPACITY);
        let extra = capacity - self.capacity;
        for (k, v) in self.layers.iter_mut().flatten() {
            let [rows, heads, _, dim] = k.dims();
            let zeros = Tensor::<4>::zeros([rows, heads, extra, dim], (&k.device(), k.dtype()));
            *k = Tensor::cat(vec![k.clone(), zeros.clone()], 2);
            *v = Tensor::cat(vec![v.clone(), zeros], 2);
        }
        self.capacity = capacity;
    }

    /// Writes this step's keys/values [rows, kv_heads, new, head_dim] into layer `layer` at the
    /// slots [`KvCache::reserve`] handed out, and returns the keys/values of every slot in use.
    pub(crate) fn append(&mut self, layer: usize, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let [rows, heads, new, dim] = k.dims();
        // The slots of `reserve`, spread over heads and channels once, then shared by all layers.
        let write = self.write.take().expect("KvCache::reserve comes before append");
        let index = match write.dims() == [rows, heads, new, dim] {
            true => write,
            false => write.repeat_dim(1, heads).repeat_dim(3, dim),
        };
        self.write = Some(index.clone());
        let (ck, cv) = self.layers[layer].take().unwrap_or_else(|| {
            // Zeros, not garbage: masked slots still meet the values as 0 * v.
            let zeros = Tensor::<4>::zeros([rows, heads, self.capacity, dim], (&k.device(), k.dtype()));
            (zeros.clone(), zeros)
        });
        let ck = ck.scatter(2, index.clone(), k, IndexingUpdateOp::Assign);
        let cv = cv.scatter(2, index, v, IndexingUpdateOp::Assign);
        self.layers[layer] = Some((ck.clone(), cv.clone()));
        let used = self.len();
        (ck.narrow(2, 0, used), cv.narrow(2, 0, used))
    }

    /// Rewinds row `row` to its first `len` tokens; its later slots are reused by the next tokens,
    /// the other rows are untouched.
    pub fn rewind_row(&mut self, row: usize, len: usize) {
        self.end[row] = self.end[row].min(self.start[row] + len);
    }

    /// Drops every physical position from `len` on, for all rows (e.g. after a batch-wide probe).
    pub fn truncate(&mut self, len: usize) {
        self.end.iter_mut().for_each(|e| *e = (*e).min(len));
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
            capacity: self.capacity,
            start: rows.iter().map(|&r| self.start[r]).collect(),
            end: rows.iter().map(|&r| self.end[r]).collect(),
            write: None,
        }
    }
}
