// Fused output projection + selective log-softmax, pass 1 of 2: per-tile softmax partials of
// z = hidden · weight^T / temperature, without ever storing z [N, V].
//
// Inputs:  hidden [N, d] f32 (contiguous); weight [V, d] of `Weight`, read through its strides
//          (sv, sd): a checkpoint's [V, d] rows (sd = 1) and a transposed [d, V] buffer (sv = 1) alike;
//          ids [N] i32; params = [N, V, d, tiles, sv, sd, bits of temperature].
// Outputs: partials [N, tiles, 3]: (max, sum exp(z - max), sum exp(z - max) * (z - max)) of the row
//          over the tile's ids; chosen [N]: z[n, ids[n]], written by the one tile holding ids[n].
// Layout:  one workgroup of 256 threads per (tile of 512 ids = workgroup_id.x, block of 64 rows =
//          workgroup_id.y). Thread (ty, tx) = (lid / 64, lid % 64) computes ids tx + 64 j (j < 8)
//          of the tile against rows 16 ty .. 16 ty + 15 of the block: 128 dot products in registers,
//          so each weight element it reads serves 16 rows and each hidden element 8 ids, and the 4
//          row groups read the tile's weight rows from cache, not memory. The product needs no
//          workgroup memory and no barrier (any d works). Then each row is folded over the tile:
//          8 ids per thread, then the 64 threads of its row group, in workgroup memory (12 KiB,
//          under WebGPU's 16 KiB). Tuned on lavapipe: 4 x 16 and 8 x 8 products per thread were
//          slower (every per-thread load is a gather there), 8 x 16 beat burn's matmul.

// The weight's element type: f32 as written; the Rust side swaps in f16 (and `enable f16;` at the
// top) for a half weight.
alias Weight = f32;

@group(0) @binding(0) var<storage, read_write> hidden: array<f32>;
@group(0) @binding(1) var<storage, read_write> weight: array<Weight>;
@group(0) @binding(2) var<storage, read_write> ids: array<i32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;
@group(0) @binding(4) var<storage, read_write> chosen: array<f32>;
@group(0) @binding(5) var<storage, read_write> params: array<u32>;

const TX: u32 = 64u;     // threads across a tile's ids
const VPT: u32 = 8u;     // ids per thread
const TILE: u32 = 512u;  // ids per tile: TX * VPT
const RPT: u32 = 16u;    // rows per thread
const ROWS: u32 = 64u;   // rows per block: (256 / TX) * RPT
// The empty fold: a finite stand-in for -inf keeps exp() and products free of NaN.
const EMPTY: f32 = -3.0e38;

// Two of every thread's rows at a time: each thread's fold of its ids, then folds of 2 threads.
var<workgroup> folds: array<vec4<f32>, 512>;
var<workgroup> pairs: array<vec4<f32>, 256>;

struct Fold { m: f32, s: f32, t: f32 }

fn merge(a: Fold, b: Fold) -> Fold {
    let m = max(a.m, b.m);
    let ea = exp(a.m - m);
    let eb = exp(b.m - m);
    return Fold(m, a.s * ea + b.s * eb, ea * (a.t + (a.m - m) * a.s) + eb * (b.t + (b.m - m) * b.s));
}

fn unpack(f: vec4<f32>) -> Fold {
    return Fold(f.x, f.y, f.z);
}

fn pack(f: Fold) -> vec4<f32> {
    return vec4<f32>(f.m, f.s, f.t, 0.0);
}

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let rows = params[0];
    let vocab = params[1];
    let d = params[2];
    let tiles = params[3];
    let sv = params[4];
    let sd = params[5];
    let temperature = bitcast<f32>(params[6]);
    let tile = wid.x;
    let tx = lid % TX;
    let ty = lid / TX;
    let v = tile * TILE + tx;
    let r0 = wid.y * ROWS + ty * RPT;

    // Ids past V and rows past N read the last ones, so the loop has no branch; both are dropped.
    let lv = vocab - 1u;
    let w0 = min(v + 0u * TX, lv) * sv; let w1 = min(v + 1u * TX, lv) * sv;
    let w2 = min(v + 2u * TX, lv) * sv; let w3 = min(v + 3u * TX, lv) * sv;
    let w4 = min(v + 4u * TX, lv) * sv; let w5 = min(v + 5u * TX, lv) * sv;
    let w6 = min(v + 6u * TX, lv) * sv; let w7 = min(v + 7u * TX, lv) * sv;
    let lr = rows - 1u;
    let h0 = min(r0 + 0u, lr) * d; let h1 = min(r0 + 1u, lr) * d;
    let h2 = min(r0 + 2u, lr) * d; let h3 = min(r0 + 3u, lr) * d;
    let h4 = min(r0 + 4u, lr) * d; let h5 = min(r0 + 5u, lr) * d;
    let h6 = min(r0 + 6u, lr) * d; let h7 = min(r0 + 7u, lr) * d;
    let h8 = min(r0 + 8u, lr) * d; let h9 = min(r0 + 9u, lr) * d;
    let h10 = min(r0 + 10u, lr) * d; let h11 = min(r0 + 11u, lr) * d;
    let h12 = min(r0 + 12u, lr) * d; let h13 = min(r0 + 13u, lr) * d;
    let h14 = min(r0 + 14u, lr) * d; let h15 = min(r0 + 15u, lr) * d;
    // Named accumulators (row i: ids 0..3 in ai_0, 4..7 in ai_1), not an array: indexed in a loop,
    // an array can end up in scratch memory on a software rasteriser, a load and store per
    // multiply-add.
    var a0_0 = vec4<f32>(0.0); var a0_1 = vec4<f32>(0.0);
    var a1_0 = vec4<f32>(0.0); var a1_1 = vec4<f32>(0.0);
    var a2_0 = vec4<f32>(0.0); var a2_1 = vec4<f32>(0.0);
    var a3_0 = vec4<f32>(0.0); var a3_1 = vec4<f32>(0.0);
    var a4_0 = vec4<f32>(0.0); var a4_1 = vec4<f32>(0.0);
    var a5_0 = vec4<f32>(0.0); var a5_1 = vec4<f32>(0.0);
    var a6_0 = vec4<f32>(0.0); var a6_1 = vec4<f32>(0.0);
    var a7_0 = vec4<f32>(0.0); var a7_1 = vec4<f32>(0.0);
    var a8_0 = vec4<f32>(0.0); var a8_1 = vec4<f32>(0.0);
    var a9_0 = vec4<f32>(0.0); var a9_1 = vec4<f32>(0.0);
    var a10_0 = vec4<f32>(0.0); var a10_1 = vec4<f32>(0.0);
    var a11_0 = vec4<f32>(0.0); var a11_1 = vec4<f32>(0.0);
    var a12_0 = vec4<f32>(0.0); var a12_1 = vec4<f32>(0.0);
    var a13_0 = vec4<f32>(0.0); var a13_1 = vec4<f32>(0.0);
    var a14_0 = vec4<f32>(0.0); var a14_1 = vec4<f32>(0.0);
    var a15_0 = vec4<f32>(0.0); var a15_1 = vec4<f32>(0.0);
    for (var k = 0u; k < d; k++) {
        let ks = k * sd;
        let x0 = vec4<f32>(f32(weight[w0 + ks]), f32(weight[w1 + ks]),
                           f32(weight[w2 + ks]), f32(weight[w3 + ks]));
        let x1 = vec4<f32>(f32(weight[w4 + ks]), f32(weight[w5 + ks]),
                           f32(weight[w6 + ks]), f32(weight[w7 + ks]));
        let g0 = hidden[h0 + k]; a0_0 += g0 * x0; a0_1 += g0 * x1;
        let g1 = hidden[h1 + k]; a1_0 += g1 * x0; a1_1 += g1 * x1;
        let g2 = hidden[h2 + k]; a2_0 += g2 * x0; a2_1 += g2 * x1;
        let g3 = hidden[h3 + k]; a3_0 += g3 * x0; a3_1 += g3 * x1;
        let g4 = hidden[h4 + k]; a4_0 += g4 * x0; a4_1 += g4 * x1;
        let g5 = hidden[h5 + k]; a5_0 += g5 * x0; a5_1 += g5 * x1;
        let g6 = hidden[h6 + k]; a6_0 += g6 * x0; a6_1 += g6 * x1;
        let g7 = hidden[h7 + k]; a7_0 += g7 * x0; a7_1 += g7 * x1;
        let g8 = hidden[h8 + k]; a8_0 += g8 * x0; a8_1 += g8 * x1;
        let g9 = hidden[h9 + k]; a9_0 += g9 * x0; a9_1 += g9 * x1;
        let g10 = hidden[h10 + k]; a10_0 += g10 * x0; a10_1 += g10 * x1;
        let g11 = hidden[h11 + k]; a11_0 += g11 * x0; a11_1 += g11 * x1;
        let g12 = hidden[h12 + k]; a12_0 += g12 * x0; a12_1 += g12 * x1;
        let g13 = hidden[h13 + k]; a13_0 += g13 * x0; a13_1 += g13 * x1;
        let g14 = hidden[h14 + k]; a14_0 += g14 * x0; a14_1 += g14 * x1;
        let g15 = hidden[h15 + k]; a15_0 += g15 * x0; a15_1 += g15 * x1;
    }
    // Row i, id j: acc[2 i + j / 4][j % 4]; a variable: a value array indexed at run time can be
    // copied whole at each access.
    var acc = array<vec4<f32>, 32>(
        a0_0, a0_1, a1_0, a1_1, a2_0, a2_1, a3_0, a3_1,
        a4_0, a4_1, a5_0, a5_1, a6_0, a6_1, a7_0, a7_1,
        a8_0, a8_1, a9_0, a9_1, a10_0, a10_1, a11_0, a11_1,
        a12_0, a12_1, a13_0, a13_1, a14_0, a14_1, a15_0, a15_1,
    );

    for (var i0 = 0u; i0 < RPT; i0 += 2u) {
        // This thread's fold of its ids for rows i0, i0 + 1, and the chosen logit where it is one.
        for (var r = 0u; r < 2u; r++) {
            let i = i0 + r;
            let row = r0 + i;
            var id = -1;
            if row < rows {
                id = ids[row];
            }
            var m = EMPTY;
            for (var j = 0u; j < VPT; j++) {
                let u = v + j * TX;
                let z = acc[2u * i + j / 4u][j % 4u] / temperature;
                if u < vocab && z > EMPTY {
                    m = max(m, z);
                }
                if u < vocab && i32(u) == id {
                    chosen[row] = z;
                }
            }
            var s = 0.0;
            var t = 0.0;
            for (var j = 0u; j < VPT; j++) {
                let z = acc[2u * i + j / 4u][j % 4u] / temperature;
                if v + j * TX < vocab && z > EMPTY {
                    let e = exp(z - m);
                    s += e;
                    t += e * (z - m);
                }
            }
            folds[r * 256u + lid] = vec4<f32>(m, s, t, 0.0);
        }
        workgroupBarrier();
        // Thread (r, g, p) = (lid / 128, lid / 32 % 4, lid % 32) merges threads 2p, 2p + 1 of row
        // group g for its row i0 + r.
        let src = (lid / 128u) * 256u + ((lid / 32u) % 4u) * TX + (lid % 32u) * 2u;
        pairs[lid] = pack(merge(unpack(folds[src]), unpack(folds[src + 1u])));
        workgroupBarrier();
        // Thread (r, g) = (lid / 4, lid % 4), lid < 8, merges the 32 pairs of its row. The next rows
        // write `folds` (read before the last barrier) and `pairs` only after their first barrier,
        // past this read.
        if lid < 8u {
            let row = wid.y * ROWS + (lid % 4u) * RPT + i0 + lid / 4u;
            if row < rows {
                let base = (lid / 4u) * 128u + (lid % 4u) * 32u;
                var f = unpack(pairs[base]);
                for (var p = 1u; p < 32u; p++) {
                    f = merge(f, unpack(pairs[base + p]));
                }
                let out = (row * tiles + tile) * 3u;
                partials[out] = f.m;
                partials[out + 1u] = f.s;
                partials[out + 2u] = f.t;
            }
        }
    }
}
