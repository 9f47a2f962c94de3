//! Numerical faults injected into training: a NaN reward or NaN log-probs skip their step's update
//! (the weights and the optimizer state stay as they were) and are counted; too many in a row stop
//! the phase with an error after a checkpoint of the last good state.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::Tensor;
use stepgrpo_core::error::Error;
use stepgrpo_core::model::{CausalLm, init, to_hf_safetensors};
use stepgrpo_core::reward::{Reward, RewardBatch, RewardError, RewardOutput};
use stepgrpo_core::rollout::{LocalEngine, LocalFuture, Rollout, RolloutRequest, RolloutSource};
use stepgrpo_core::task;
use stepgrpo_core::train::checkpoint;
use stepgrpo_core::train::{Event, MemoryStore, Method, PhaseKind, RlTrainer, Run, RunData, RunSink};
use stepgrpo_tests::builtin::{data, small_rl};
use stepgrpo_tests::seeded;

/// The in-process engine posing as a remote one (so the loss weighs its log-probs) whose
/// log-probs are NaN in the collections numbered in `nan_at` (from 0).
struct NanLogProbs {
    inner: LocalEngine,
    calls: usize,
    nan_at: Vec<usize>,
}

impl RolloutSource for NanLogProbs {
    fn collect<'a>(
        &'a mut self,
        request: RolloutRequest<'a>,
    ) -> LocalFuture<'a, stepgrpo_core::Result<Vec<Rollout>>> {
        Box::pin(async move {
            let mut rollouts = self.inner.collect(request).await?;
            if self.nan_at.contains(&self.calls) {
                rollouts.iter_mut().for_each(|r| r.log_probs.iter_mut().for_each(|p| *p = Some(f32::NAN)));
            }
            self.calls += 1;
            Ok(rollouts)
        })
    }

    fn load_weights<'a>(
        &'a mut self,
        policy: &'a CausalLm,
        version: u64,
    ) -> LocalFuture<'a, stepgrpo_core::Result<()>> {
        self.inner.load_weights(policy, version)
    }

    fn name(&self) -> &str {
        "nan-log-probs"
    }

    fn is_remote(&self) -> bool {
        true
    }
}

/// A method's reward that gives the first response a NaN in the calls numbered in `nan_at`.
struct NanReward {
    inner: Box<dyn Reward>,
    calls: AtomicUsize,
    nan_at: Vec<usize>,
}

impl Reward for NanReward {
    fn name(&self) -> &'static str {
        "nan-reward"
    }

    fn score(&self, batch: &RewardBatch<'_>) -> Result<Vec<RewardOutput>, RewardError> {
        let mut out = self.inner.score(batch)?;
        if self.nan_at.contains(&self.calls.fetch_add(1, Ordering::SeqCst)) {
            out[0].overall = f64::NAN;
        }
        Ok(out)
    }
}

fn weights(model: &CausalLm) -> Vec<u8> {
    pollster::block_on(to_hf_safetensors(model)).unwrap()
}

#[test]
fn a_nan_reward_or_loss_skips_its_update_and_is_counted() {
    let device = burn::tensor::Device::flex().autodiff();
    let data = data(task::TaskConfig::default());
    let model = seeded(&device, 5, || init(&task::model_config(), &device));
    let mut c = small_rl(5);
    (c.steps_per_generation, c.num_iterations) = (1, 1);
    let method = Method::StepGrpo;
    let engine = LocalEngine::new(data.tokenizer.clone(), data.eos.clone());
    let source = Box::new(NanLogProbs { inner: engine, calls: 0, nan_at: vec![3] });
    let reward = Box::new(NanReward {
        inner: method.reward(&c.reward, &c.rollout).unwrap(),
        calls: AtomicUsize::new(0),
        nan_at: vec![1],
    });
    let mut t = RlTrainer::new(method, model, &data, c, 2, source).unwrap().with_reward(reward);
    // Steps 2 (a NaN reward) and 4 (NaN log-probs, so a NaN loss) are skipped.
    for (step, fault) in [(1, None), (2, Some("reward")), (3, None), (4, Some("loss")), (5, None)] {
        let before = (weights(&t.model), t.optim.to_bytes().unwrap());
        let metrics = pollster::block_on(t.step()).unwrap().metrics;
        assert_eq!(metrics.step, step);
        assert_eq!(t.guard.fault.map(|f| f.what), fault, "step {step}");
        let after = (weights(&t.model), t.optim.to_bytes().unwrap());
        assert_eq!(before == after, fault.is_some(), "step {step}: only a skipped update leaves the state");
        let skipped = [0, 1, 1, 2, 2][step - 1];
        assert_eq!((metrics.nan_skipped, t.guard.skipped), (skipped, skipped), "step {step}");
        if fault == Some("loss") {
            assert!(metrics.loss.is_nan() && metrics.reward.is_finite());
            let record = serde_json::to_value(&metrics).unwrap();
            assert!(record["loss"].is_null() && record["nan_skipped"] == 2, "{record}");
        }
    }
    assert_eq!(t.guard.in_a_row, 0);
}

/// Every weight times NaN: each step's loss and gradients are NaN.
struct Poison;

impl ModuleMapper for Poison {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| t.mul_scalar(f32::NAN).detach().require_grad())
    }
}

#[derive(Default)]
struct Records(Mutex<Vec<serde_json::Value>>);

impl RunSink for Records {
    fn event(&self, _phase: &str, event: Event<'_>) -> stepgrpo_core::Result<()> {
        if let Event::Record(r) = event {
            self.0.lock().unwrap().push(r.clone());
        }
        Ok(())
    }
}

#[test]
fn faults_in_a_row_stop_the_phase_after_a_checkpoint_of_the_last_good_state() {
    let device = burn::tensor::Device::flex().autodiff();
    let mut c = stepgrpo_core::train::builtin_recipe();
    (c.seed, c.sft.max_steps, c.sft.batch_size, c.save_steps, c.eval.num_problems) = (1, 8, 4, 1, 4);
    c.sft.optim.max_nan_skips = 2;
    let start = seeded(&device, 5, || init(&task::model_config(), &device)).map(&mut Poison);
    let sink = Records::default();
    let run = Run::new(
        c.clone(),
        RunData::builtin(&c).unwrap(),
        start.clone(),
        Box::new(MemoryStore::default()),
        false,
        &sink,
    )
    .unwrap();
    let Err(err) = pollster::block_on(run.train(PhaseKind::Sft, &start, &sink)) else {
        panic!("a diverged phase stops")
    };
    let message = err.to_string();
    assert!(matches!(err, Error::Diverged { .. }), "{message}");
    for part in
        ["sft: steps 1-3", "the loss is NaN at step 3", "max_nan_skips = 2", "memory:sft/checkpoint-0"]
    {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
    let skipped: Vec<u64> =
        sink.0.lock().unwrap().iter().map(|r| r["nan_skipped"].as_u64().unwrap()).collect();
    assert_eq!(skipped, [1, 2, 3]);
    // The checkpoints of steps 1 and 2 (written while their updates were skipped) make way for the
    // last good state, so a resumed run starts there.
    let store = run.store();
    assert_eq!(store.dirs("sft").unwrap(), ["checkpoint-0"]);
    let dir = checkpoint::latest(store, "sft").unwrap().unwrap();
    let restored = checkpoint::load(store, &dir, start.clone()).unwrap();
    assert_eq!((restored.state.step, restored.state.nan_guard.skipped), (0, 0));
    assert_eq!(weights(&restored.model), weights(&start));
}
