// Next-token sampling for every row: greedy, or temperature + top-k + top-p from a given uniform.
//
// Inputs:  logits [N, V] f32, uniforms [N] f32 (u in [0, 1) samples; u < 0 asks for greedy),
//          params = [N, V, bits(temperature), top_k, bits(top_p), L] (temperature 0 or top_k 1:
//          greedy). Only ids below L (1 <= L <= V) are ever drawn: an embedding's rows past the
//          tokenizer's vocabulary are padding.
// Outputs: ids [N] i32, logp [N] f32 = the chosen id's log-prob under the untempered model (its
//          softmax over all V logits, as training computes it).
// Layout:  one workgroup of {{ wg }} threads per row (row = workgroup_id.x + workgroup_id.y * 65535).
//          Kept tokens are {x >= tau}: tau is found by bisection over the order-preserving u32 keys
//          of the logits (32 rounds, each a workgroup reduction): the k-th largest logit for top-k,
//          then the largest tau whose tempered mass reaches top_p of the top-k mass. The sample is
//          the first id, in id order, whose running kept mass exceeds u * (kept mass): threads sum
//          contiguous chunks, thread 0 finds the chunk and scans it. Ties at tau are all kept.
//          Nothing is sorted and nothing of size V is written.

@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> uniforms: array<f32>;
@group(0) @binding(2) var<storage, read_write> ids: array<i32>;
@group(0) @binding(3) var<storage, read_write> logp: array<f32>;
@group(0) @binding(4) var<storage, read_write> params: array<u32>;

const WG: u32 = {{ wg }}u;
const EMPTY: f32 = -3.0e38;

var<workgroup> red_f: array<f32, {{ wg }}>;
var<workgroup> red_g: array<f32, {{ wg }}>;
var<workgroup> red_h: array<f32, {{ wg }}>;
var<workgroup> red_u: array<u32, {{ wg }}>;
var<workgroup> red_i: array<u32, {{ wg }}>;
var<workgroup> wg_params: array<u32, 6>;
var<workgroup> wg_greedy: u32;

// Order-preserving map of a float onto u32: a < b exactly when key(a) < key(b).
fn key(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    return select(b | 0x80000000u, ~b, (b >> 31u) == 1u);
}

// Sum of x over the workgroup, the same in every thread.
fn sum_f(lid: u32, x: f32) -> f32 {
    red_f[lid] = x;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if lid < stride {
            red_f[lid] += red_f[lid + stride];
        }
        workgroupBarrier();
    }
    let total = workgroupUniformLoad(&red_f[0]);
    workgroupBarrier();
    return total;
}

fn sum_u(lid: u32, x: u32) -> u32 {
    red_u[lid] = x;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if lid < stride {
            red_u[lid] += red_u[lid + stride];
        }
        workgroupBarrier();
    }
    let total = workgroupUniformLoad(&red_u[0]);
    workgroupBarrier();
    return total;
}

// Tempered weight of a logit, relative to the row max.
fn weight(x: f32, top: f32, temperature: f32) -> f32 {
    return exp((x - top) / temperature);
}

// Tempered mass of ids 0..end whose key is at least t.
fn mass_ge(lid: u32, base: u32, end: u32, t: u32, top: f32, temperature: f32) -> f32 {
    var acc = 0.0;
    for (var v = lid; v < end; v += WG) {
        let x = logits[base + v];
        if key(x) >= t {
            acc += weight(x, top, temperature);
        }
    }
    return sum_f(lid, acc);
}

// Ids among 0..end whose key is at least t.
fn count_ge(lid: u32, base: u32, end: u32, t: u32) -> u32 {
    var n = 0u;
    for (var v = lid; v < end; v += WG) {
        n += select(0u, 1u, key(logits[base + v]) >= t);
    }
    return sum_u(lid, n);
}

// Midpoint of [lo, hi] rounded up, without overflow.
fn upper_mid(lo: u32, hi: u32) -> u32 {
    let d = hi - lo;
    return lo + (d >> 1u) + (d & 1u);
}

@compute @workgroup_size({{ wg }}, 1, 1)
fn main(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    // Loaded through workgroup memory so that branches on them count as uniform.
    if lid < 6u {
        wg_params[lid] = params[lid];
    }
    let prm = workgroupUniformLoad(&wg_params);
    let row = wid.x + wid.y * 65535u;
    if row >= prm[0] {
        return;
    }
    let vocab = prm[1];
    let temperature = bitcast<f32>(prm[2]);
    let top_k = prm[3];
    let top_p = bitcast<f32>(prm[4]);
    let limit = prm[5];
    let base = row * vocab;

    // Pass 1: over all V, the max and sum of exp(x - max) (the log-prob's normaliser); over the
    // drawable ids (< limit), the max, first argmax and smallest key.
    var m = EMPTY;
    var s = 0.0;
    var dm = EMPTY;
    var arg = 0u;
    var lo = 0xffffffffu;
    for (var v = lid; v < vocab; v += WG) {
        let x = logits[base + v];
        if x > m {
            s = s * exp(m - x) + 1.0;
            m = x;
        } else {
            s += exp(x - m);
        }
        if v < limit {
            lo = min(lo, key(x));
            if x > dm {
                dm = x;
                arg = v;
            }
        }
    }
    red_f[lid] = m;
    red_g[lid] = s;
    red_h[lid] = dm;
    red_i[lid] = arg;
    red_u[lid] = lo;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if lid < stride {
            let ma = red_f[lid];
            let mb = red_f[lid + stride];
            let mm = max(ma, mb);
            red_g[lid] = red_g[lid] * exp(ma - mm) + red_g[lid + stride] * exp(mb - mm);
            red_f[lid] = mm;
            // First index among equal maxima: strided slices interleave, so compare ids.
            let da = red_h[lid];
            let db = red_h[lid + stride];
            if db > da || (db == da && red_i[lid + stride] < red_i[lid]) {
                red_i[lid] = red_i[lid + stride];
            }
            red_h[lid] = max(da, db);
            red_u[lid] = min(red_u[lid], red_u[lid + stride]);
        }
        workgroupBarrier();
    }
    let row_lse = red_f[0] + log(red_g[0]);
    // Weights are relative to the largest drawable logit, so none of the kept ones underflows.
    let top = red_h[0];
    let argmax = red_i[0];
    let key_lo = red_u[0];
    if lid == 0u {
        let greedy = uniforms[row] < 0.0 || temperature == 0.0 || top_k == 1u;
        wg_greedy = select(0u, 1u, greedy);
    }
    if workgroupUniformLoad(&wg_greedy) == 1u {
        if lid == 0u {
            ids[row] = i32(argmax);
            logp[row] = logits[base + argmax] - row_lse;
        }
        return;
    }

    // Pass 2: the threshold key. Every thread runs the same bisection on uniform values.
    let key_hi = key(top);
    var tau = key_lo;
    if top_k > 0u && top_k < limit {
        var a = key_lo;
        var b = key_hi;
        for (var round = 0u; round < 32u; round++) {
            let mid = upper_mid(a, b);
            if count_ge(lid, base, limit, mid) >= top_k {
                a = mid;
            } else {
                b = mid - 1u;
            }
        }
        tau = a;
    }
    if top_p < 1.0 {
        let need = top_p * mass_ge(lid, base, limit, tau, top, temperature);
        var a = tau;
        var b = key_hi;
        for (var round = 0u; round < 32u; round++) {
            let mid = upper_mid(a, b);
            if mass_ge(lid, base, limit, mid, top, temperature) >= need {
                a = mid;
            } else {
                b = mid - 1u;
            }
        }
        tau = a;
    }

    // Pass 3: kept mass of each contiguous chunk; thread 0 finds where u * total falls.
    let chunk = (limit + WG - 1u) / WG;
    let start = min(lid * chunk, limit);
    let end = min(start + chunk, limit);
    var acc = 0.0;
    for (var v = start; v < end; v++) {
        let x = logits[base + v];
        if key(x) >= tau {
            acc += weight(x, top, temperature);
        }
    }
    red_f[lid] = acc;
    workgroupBarrier();
    if lid == 0u {
        var total = 0.0;
        for (var i = 0u; i < WG; i++) {
            total += red_f[i];
        }
        let goal = uniforms[row] * total;
        var run = 0.0;
        var pick = argmax;
        var found = false;
        for (var i = 0u; i < WG && !found; i++) {
            if run + red_f[i] > goal {
                let c0 = min(i * chunk, limit);
                let c1 = min(c0 + chunk, limit);
                for (var v = c0; v < c1; v++) {
                    let x = logits[base + v];
                    if key(x) >= tau {
                        pick = v;
                        run += weight(x, top, temperature);
                        if run > goal {
                            found = true;
                            break;
                        }
                    }
                }
                // Rounding left the target beyond this chunk's last kept id: keep that id.
                found = true;
            } else {
                run += red_f[i];
            }
        }
        // A target at or past the total (rounding): the last kept id.
        if !found {
            for (var v = limit; v > 0u; v--) {
                if key(logits[base + v - 1u]) >= tau {
                    pick = v - 1u;
                    break;
                }
            }
        }
        ids[row] = i32(pick);
        logp[row] = logits[base + pick] - row_lse;
    }
}
