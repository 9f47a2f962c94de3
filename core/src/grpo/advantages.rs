//! Group-relative advantages: each response's reward against the other responses to its prompt.

use std::collections::HashMap;
use std::hash::Hash;

use super::config::ScaleRewards;

/// Denominator guard of the standardisation, as in the reference implementation.
const EPS: f64 = 1e-6;

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    // Unbiased (n - 1) like torch.std; a group of one has no spread.
    let std = if values.len() > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (mean, std)
}

/// A_i = (R_i - mean of its group) / (std + 1e-6), where groups are identified by `group[i]` and
/// may be interleaved. `scale` picks the std: the group's (GRPO), the batch's, or none (Dr. GRPO).
/// A group of one response gets advantage 0 (nothing to compare against).
pub fn group_advantages<G: Eq + Hash>(rewards: &[f64], group: &[G], scale: ScaleRewards) -> Vec<f64> {
    assert_eq!(rewards.len(), group.len(), "one group id per reward");
    let mut members: HashMap<&G, Vec<usize>> = HashMap::new();
    for (i, g) in group.iter().enumerate() {
        members.entry(g).or_default().push(i);
    }
    let batch_std = mean_std(rewards).1;
    let mut out = vec![0.0; rewards.len()];
    for idx in members.values() {
        if idx.len() < 2 {
            continue;
        }
        let values: Vec<f64> = idx.iter().map(|&i| rewards[i]).collect();
        let (mean, std) = mean_std(&values);
        let denom = match scale {
            ScaleRewards::Group => std + EPS,
            ScaleRewards::Batch => batch_std + EPS,
            ScaleRewards::None => 1.0,
        };
        for &i in idx {
            out[i] = (rewards[i] - mean) / denom;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaved_groups_and_edge_cases() {
        let r = [1.0, 0.0, 5.0, 0.0, 5.0, 7.0];
        let g = ["a", "a", "b", "a", "b", "c"];
        let a = group_advantages(&r, &g, ScaleRewards::Group);
        // Group a: mean 1/3, unbiased std sqrt(1/3).
        let std = (1.0f64 / 3.0).sqrt() + EPS;
        assert!((a[0] - (2.0 / 3.0) / std).abs() < 1e-12);
        assert!((a[1] + (1.0 / 3.0) / std).abs() < 1e-12);
        // Group b has identical rewards: zero advantage, no division blow-up.
        assert_eq!((a[2], a[4]), (0.0, 0.0));
        // A group of one: zero.
        assert_eq!(a[5], 0.0);
        let none = group_advantages(&r, &g, ScaleRewards::None);
        assert!((none[0] - 2.0 / 3.0).abs() < 1e-12);
    }
}
