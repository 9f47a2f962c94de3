// Fused output projection + selective log-softmax, pass 2 of 2: each row's tile partials (from
// fused_head.wgsl) merged into its log-prob and entropy.
//
// Inputs:  partials [N, tiles, 3] (max, sum exp(z - max), centred sum); chosen [N] = z[n, ids[n]];
//          ids [N] i32; params = [N, V, tiles].
// Outputs: logp [N] = chosen[n] - lse[n] (NaN for an id outside 0..V), entropy [N] = log s - t / s.
// Layout:  one workgroup of {{ wg }} threads per row (row = workgroup_id.x + workgroup_id.y * 65535),
//          each folding a strided slice of the row's tiles, then a tree, as selective_log_softmax.wgsl.

@group(0) @binding(0) var<storage, read_write> partials: array<f32>;
@group(0) @binding(1) var<storage, read_write> chosen: array<f32>;
@group(0) @binding(2) var<storage, read_write> ids: array<i32>;
@group(0) @binding(3) var<storage, read_write> logp: array<f32>;
@group(0) @binding(4) var<storage, read_write> entropy: array<f32>;
@group(0) @binding(5) var<storage, read_write> params: array<u32>;

const WG: u32 = {{ wg }}u;
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
    let tiles = params[2];

    var f = Fold(EMPTY, 0.0, 0.0);
    for (var t = lid; t < tiles; t += WG) {
        let p = (row * tiles + t) * 3u;
        f = merge(f, Fold(partials[p], partials[p + 1u], partials[p + 2u]));
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
        let id = ids[row];
        // NaN marks a bad id (no tile wrote `chosen`); built from a runtime value, as WGSL rejects
        // a constant NaN.
        var lp = bitcast<f32>(0x7fc00000u | (vocab & 1u));
        if id >= 0 && u32(id) < vocab {
            lp = chosen[row] - (red_m[0] + log_s);
        }
        logp[row] = lp;
        entropy[row] = log_s - red_t[0] / red_s[0];
    }
}
