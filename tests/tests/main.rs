//! All cross-crate tests, compiled into one binary (each binary links all of burn and wgpu).

mod checkpoints;
mod decoding;
mod faults;
mod fuzz;
mod grpo_objective;
mod hf_parity;
mod kernels;
mod precision;
mod rollout;
mod training;
mod vllm;
