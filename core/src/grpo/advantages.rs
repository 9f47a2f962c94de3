//! Group-relative advantages: each response's reward against the other responses to its prompt.
//! Computed on the device (a WGSL kernel on wgpu), so rewards go into the loss without a round trip.

use burn::tensor::{Int, Tensor};
use stepgrpo_shaders::AdvantageScale;

use super::config::ScaleRewards;

impl From<ScaleRewards> for AdvantageScale {
    fn from(scale: ScaleRewards) -> Self {
        match scale {
            ScaleRewards::Group => AdvantageScale::Group,
            ScaleRewards::Batch => AdvantageScale::Batch,
            ScaleRewards::None => AdvantageScale::None,
        }
    }
}

/// A_i = (R_i - mean of its group) / (std + 1e-6) for `rewards` `[N]`, where `groups` `[N]` names each
/// response's group (groups may be interleaved). `scale` picks the std: the group's (GRPO,
/// unbiased like torch.std), the batch's, or none (Dr. GRPO). A group of one response gets 0.
pub fn group_advantages(rewards: Tensor<1>, groups: Tensor<1, Int>, scale: ScaleRewards) -> Tensor<1> {
    stepgrpo_shaders::group_advantages(rewards, groups, scale.into())
}

#[cfg(test)]
mod tests {
    use burn::tensor::Device;

    use super::*;

    #[test]
    fn interleaved_groups_and_edge_cases() {
        let device = Device::flex();
        let r = Tensor::<1>::from_floats([1.0, 0.0, 5.0, 0.0, 5.0, 7.0], &device);
        let g = Tensor::<1, Int>::from_ints([0, 0, 1, 0, 1, 2], &device);
        let read = |scale| group_advantages(r.clone(), g.clone(), scale).try_into_vec_as::<f64>().unwrap();
        let a = read(ScaleRewards::Group);
        // Group 0: mean 1/3, unbiased std sqrt(1/3).
        let std = (1.0f64 / 3.0).sqrt() + 1e-6;
        assert!((a[0] - (2.0 / 3.0) / std).abs() < 1e-5);
        assert!((a[1] + (1.0 / 3.0) / std).abs() < 1e-5);
        // Group 1 has identical rewards: zero advantage, no division blow-up; a group of one: zero.
        assert_eq!((a[2], a[4], a[5]), (0.0, 0.0, 0.0));
        let none = read(ScaleRewards::None);
        assert!((none[0] - 2.0 / 3.0).abs() < 1e-6);
    }
}
