// Selective log-softmax, backward: the gradient of logp[n] = log softmax(logits[n])[ids[n]] with
// respect to the logits, scaled by the incoming gradient: grad[n] * (onehot(ids[n]) - softmax).
// The entropy output carries no gradient.
//
// Inputs:  logits [N, V] f32, ids [N] i32, lse [N] f32 (from the forward), grad [N] f32,
//          params = [N, V].
// Outputs: grad_logits [N, V] f32.
// Layout:  one thread per element; workgroups of {{ wg }} threads tile a row along x, and rows run
//          along y (workgroup_id.y, stepping by the number of workgroups in y past 65535 rows).

@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> ids: array<i32>;
@group(0) @binding(2) var<storage, read_write> lse: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad_logits: array<f32>;
@group(0) @binding(5) var<storage, read_write> params: array<u32>;

@compute @workgroup_size({{ wg }}, 1, 1)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let rows = params[0];
    let vocab = params[1];
    let v = gid.x;
    if v >= vocab {
        return;
    }
    for (var row = gid.y; row < rows; row += groups.y) {
        let i = row * vocab + v;
        let p = exp(logits[i] - lse[row]);
        let hit = select(0.0, 1.0, ids[row] == i32(v));
        grad_logits[i] = grad[row] * (hit - p);
    }
}
