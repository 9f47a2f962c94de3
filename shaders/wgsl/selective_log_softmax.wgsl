// Selective log-softmax, forward: the log-prob of one chosen id per row, and the row's entropy,
// without storing the [N, V] log-softmax.
//
// Inputs:  logits [N, V] f32 (contiguous), ids [N] i32, params = [N, V].
// Outputs: logp [N] = logits[n, ids[n]] - lse[n] (NaN for an id outside 0..V),
//          entropy [N] = -sum_v p log p, lse [N] = log sum_v exp(logits[n, v]) (kept for the backward).
// Layout:  one workgroup of {{ wg }} threads per row (row = workgroup_id.x + workgroup_id.y * 65535).
//          Each thread folds a strided slice of its row into (m, s, t): the running max, the sum of
//          exp(x - m) and the sum of exp(x - m) * (x - m); the workgroup merges the triples in a tree.
//          Entropy = log s - t / s stays accurate for large logits because t is centred on m.

@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> ids: array<i32>;
@group(0) @binding(2) var<storage, read_write> logp: array<f32>;
@group(0) @binding(3) var<storage, read_write> entropy: array<f32>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;
@group(0) @binding(5) var<storage, read_write> params: array<u32>;

const WG: u32 = {{ wg }}u;
// The empty fold: a finite stand-in for -inf keeps exp() and products free of NaN.
const EMPTY: f32 = -3.0e38;

var<workgroup> red_m: array<f32, {{ wg }}>;
var<workgroup> red_s: array<f32, {{ wg }}>;
var<workgroup> red_t: array<f32, {{ wg }}>;
var<workgroup> wg_rows: u32;

struct Fold { m: f32, s: f32, t: f32 }

fn merge(a: Fold, b: Fold) -> Fold {
    let m = max(a.m, b.m);
    let ea = exp(a.m - m);
    let eb = exp(b.m - m);
    return Fold(m, a.s * ea + b.s * eb, ea * (a.t + (a.m - m) * a.s) + eb * (b.t + (b.m - m) * b.s));
}

@compute @workgroup_size({{ wg }}, 1, 1)
fn main(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    if lid == 0u {
        wg_rows = params[0];
    }
    let rows = workgroupUniformLoad(&wg_rows);
    let row = wid.x + wid.y * 65535u;
    if row >= rows {
        return;
    }
    let vocab = params[1];
    let base = row * vocab;

    var f = Fold(EMPTY, 0.0, 0.0);
    for (var v = lid; v < vocab; v += WG) {
        let x = logits[base + v];
        if x > EMPTY {
            f = merge(f, Fold(x, 1.0, 0.0));
        }
    }
    red_m[lid] = f.m;
    red_s[lid] = f.s;
    red_t[lid] = f.t;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if lid < stride {
            let g = merge(Fold(red_m[lid], red_s[lid], red_t[lid]),
                          Fold(red_m[lid + stride], red_s[lid + stride], red_t[lid + stride]));
            red_m[lid] = g.m;
            red_s[lid] = g.s;
            red_t[lid] = g.t;
        }
        workgroupBarrier();
    }
    if lid == 0u {
        let log_s = log(red_s[0]);
        let row_lse = red_m[0] + log_s;
        let id = ids[row];
        // NaN marks a bad id; built from a runtime value, as WGSL rejects a constant NaN.
        var lp = bitcast<f32>(0x7fc00000u | (vocab & 1u));
        if id >= 0 && u32(id) < vocab {
            lp = logits[base + u32(id)] - row_lse;
        }
        logp[row] = lp;
        entropy[row] = log_s - red_t[0] / red_s[0];
        lse[row] = row_lse;
    }
}
