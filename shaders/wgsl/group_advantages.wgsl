// Group-relative advantages: A_i = (r_i - mean of its group) / (std + 1e-6), std unbiased (n - 1),
// for groups given by an id per response (groups may be interleaved). A group of one gets 0.
//
// Inputs:  rewards [N] f32, groups [N] i32, params = [N, scale] with scale 0: the group's std,
//          1: the batch's std, 2: no scaling (Dr. GRPO).
// Outputs: advantages [N] f32.
// Layout:  one workgroup of {{ wg }} threads; each thread takes responses lid, lid + {{ wg }}, ...
//          and scans all N rewards for its group's sums (N is a batch of responses: O(N^2) reads
//          cost less than a second launch).

@group(0) @binding(0) var<storage, read_write> rewards: array<f32>;
@group(0) @binding(1) var<storage, read_write> groups: array<i32>;
@group(0) @binding(2) var<storage, read_write> advantages: array<f32>;
@group(0) @binding(3) var<storage, read_write> params: array<u32>;

const WG: u32 = {{ wg }}u;
const EPS: f32 = 1e-6;

// Unbiased standard deviation of the rewards whose group is `g` (all of them when `all`).
fn spread(n: u32, g: i32, all: bool) -> vec3<f32> {
    var count = 0.0;
    var sum = 0.0;
    for (var j = 0u; j < n; j++) {
        if all || groups[j] == g {
            count += 1.0;
            sum += rewards[j];
        }
    }
    let mean = sum / count;
    var sq = 0.0;
    for (var j = 0u; j < n; j++) {
        if all || groups[j] == g {
            let d = rewards[j] - mean;
            sq += d * d;
        }
    }
    let sd = select(0.0, sqrt(sq / (count - 1.0)), count > 1.0);
    return vec3<f32>(count, mean, sd);
}

@compute @workgroup_size({{ wg }}, 1, 1)
fn main(@builtin(local_invocation_index) lid: u32) {
    let n = params[0];
    let scale = params[1];
    var batch_std = 0.0;
    if scale == 1u && n > 0u {
        batch_std = spread(n, 0, true).z;
    }
    for (var i = lid; i < n; i += WG) {
        let own = spread(n, groups[i], false);
        var a = 0.0;
        if own.x > 1.0 {
            let d = rewards[i] - own.y;
            if scale == 0u {
                a = d / (own.z + EPS);
            } else if scale == 1u {
                a = d / (batch_std + EPS);
            } else {
                a = d;
            }
        }
        advantages[i] = a;
    }
}
