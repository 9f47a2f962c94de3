//! The GRPO objective: group-relative advantages and the clipped policy-gradient loss with an
//! optional KL penalty to a reference model (spec section 5).

mod advantages;
mod config;
mod correction;
mod loss;

pub use advantages::group_advantages;
pub use config::{GrpoConfig, ImportanceSamplingLevel, KlEstimator, LossType, ScaleRewards};
pub use correction::{EngineCorrectionMode, EngineWeights, engine_weights};
pub use loss::{GrpoLoss, MiniBatchSize, PolicyBatch, grpo_loss};
