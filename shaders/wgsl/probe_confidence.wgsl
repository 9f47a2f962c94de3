// Probe confidence: per row, the geometric mean of the top-1 probabilities of the probe tokens,
// the first skipped: c = exp(mean_{t=1..len-1} log max_v softmax(logits[n, t])); 0 when len < 2.
//
// Inputs:  logits [N, T, V] f32 (one probe of up to T tokens per row), lengths [N] i32 (valid
//          tokens of each probe; clamped to T), params = [N, T, V].
// Outputs: confidence [N] f32.
// Layout:  one workgroup of {{ wg }} threads per row (row = workgroup_id.x + workgroup_id.y * 65535);
//          for each token the threads fold strided slices into (max, sum of exp(x - max)) and
//          merge them in a tree: log top-1 probability = -log(sum). One number per row comes back.

@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> lengths: array<i32>;
@group(0) @binding(2) var<storage, read_write> confidence: array<f32>;
@group(0) @binding(3) var<storage, read_write> params: array<u32>;

const WG: u32 = {{ wg }}u;
const EMPTY: f32 = -3.0e38;

var<workgroup> red_m: array<f32, {{ wg }}>;
var<workgroup> red_s: array<f32, {{ wg }}>;
var<workgroup> wg_params: array<u32, 4>;

@compute @workgroup_size({{ wg }}, 1, 1)
fn main(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let row = wid.x + wid.y * 65535u;
    // Loaded through workgroup memory so that loops over them count as uniform.
    if lid < 3u {
        wg_params[lid] = params[lid];
    }
    if lid == 3u && row < params[0] {
        wg_params[3] = u32(max(lengths[row], 0));
    }
    let prm = workgroupUniformLoad(&wg_params);
    if row >= prm[0] {
        return;
    }
    let steps = prm[1];
    let vocab = prm[2];
    let len = min(prm[3], steps);

    var acc = 0.0;
    for (var t = 1u; t < len; t++) {
        let base = (row * steps + t) * vocab;
        var m = EMPTY;
        var s = 0.0;
        for (var v = lid; v < vocab; v += WG) {
            let x = logits[base + v];
            if x > m {
                s = s * exp(m - x) + 1.0;
                m = x;
            } else {
                s += exp(x - m);
            }
        }
        red_m[lid] = m;
        red_s[lid] = s;
        workgroupBarrier();
        for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
            if lid < stride {
                let ma = red_m[lid];
                let mb = red_m[lid + stride];
                let mm = max(ma, mb);
                red_s[lid] = red_s[lid] * exp(ma - mm) + red_s[lid + stride] * exp(mb - mm);
                red_m[lid] = mm;
            }
            workgroupBarrier();
        }
        acc -= log(red_s[0]);
        workgroupBarrier();
    }
    if lid == 0u {
        confidence[row] = select(0.0, exp(acc / f32(len - 1u)), len >= 2u);
    }
}
