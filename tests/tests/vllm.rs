//! The vLLM rollout engine against a real `vllm serve` (the CPU build, f32): ids and log-probs as
//! the trainer computes them, the truncated rollout's exits and steps as the in-process engine's,
//! weight syncs, Step-GRPO steps through the server, and a server killed mid-run with the run
//! resumed from its checkpoint. One test owns the server (its start is most of the time).

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use burn::module::Module;
use burn::tensor::Device;
use serde_json::json;
use stepgrpo_core::decode::SamplingConfig;
use stepgrpo_core::model::{CausalLm, hf_files_untied, init, write_atomic};
use stepgrpo_core::rollout::vllm::{RolloutEngineKind, VllmConfig, VllmEngine};
use stepgrpo_core::rollout::{ExitType, LocalEngine, Rollout, RolloutConfig, RolloutRequest, RolloutSource};
use stepgrpo_core::task;
use stepgrpo_core::train::{
    DirStore, Event, Method, Run, RunData, RunSink, Sequence, SftTrainer, TokenBatch, prepare,
    token_log_probs,
};
use stepgrpo_tests::seeded;
use stepgrpo_tests::vllm::{VllmServer, post, requests_running, vllm_python};

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    pollster::block_on(f)
}

/// The built-in task's model written untied with its tokenizer: what the server starts from.
fn export(model: &CausalLm, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let files = block(hf_files_untied(model)).unwrap().into_iter().chain(task::tokenizer_files());
    for (name, bytes) in files {
        write_atomic(&dir.join(name), &bytes).unwrap();
    }
}

fn data() -> RunData {
    let mut c = stepgrpo_core::train::builtin_recipe();
    (c.seed, c.eval.num_problems) = (1, 8);
    RunData::builtin(&c).unwrap()
}

/// A policy with the task's format: a short warm start from a seeded initialisation.
fn warm_start(steps: usize, device: &Device) -> CausalLm {
    let model = seeded(device, 3, || init(&task::model_config(), device));
    let mut c = stepgrpo_core::train::builtin_recipe().sft;
    (c.max_steps, c.batch_size, c.optim.learning_rate, c.optim.warmup_steps) = (steps, 8, 3e-3, 2);
    let mut t = SftTrainer::new(model, &data(), c, 1).unwrap();
    while !t.is_done() {
        block(t.step()).unwrap();
    }
    t.model
}

fn rollout_config(temperature: f32, delta: Option<f64>) -> RolloutConfig {
    let mut c = stepgrpo_core::train::builtin_recipe().rl.rollout;
    c.num_generations = 2;
    c.max_completion_length = 64;
    c.sampling = SamplingConfig { temperature, seed: 11, ..SamplingConfig::default() };
    if temperature == 0.0 {
        c.sampling = SamplingConfig::greedy();
    }
    match delta {
        Some(d) => {
            let t = c.truncation.as_mut().unwrap();
            // Not strict: a probe's confidence is then above 0, so delta 0 exits at every probe.
            (t.probe_threshold, t.strict) = (d, false);
        }
        None => c.truncation = None,
    }
    c
}

fn prompts(data: &RunData, n: usize) -> Vec<Vec<u32>> {
    let problems = data.problems.batch(5, 0, n).unwrap();
    problems.iter().map(|p| data.tokenizer.encode(&p.prompt).unwrap()).collect()
}

fn collect(engine: &mut dyn RolloutSource, prompts: &[Vec<u32>], config: &RolloutConfig) -> Vec<Rollout> {
    let mut out = block(engine.collect(RolloutRequest { prompts, config })).unwrap();
    out.sort_by_key(|r| r.prompt);
    out
}

fn local(model: &CausalLm, data: &RunData) -> LocalEngine {
    let mut engine = LocalEngine::new(data.tokenizer.clone(), data.eos.clone());
    block(engine.load_weights(model, 0)).unwrap();
    engine
}

/// The trainer's log-prob of every response token (temperature 1).
fn trainer_log_probs(model: &CausalLm, prompts: &[Vec<u32>], rollouts: &[Rollout]) -> Vec<Vec<f32>> {
    let sequences: Vec<Sequence> = rollouts
        .iter()
        .map(|r| Sequence { prompt: &prompts[r.prompt], completion: &r.ids, trained: None })
        .collect();
    let batch = TokenBatch::new(&sequences, 0, &model.device());
    let read = token_log_probs(model, &batch, 1.0).log_probs.into_data().try_to_vec::<f32>().unwrap();
    batch.take(&read)
}

/// Greedy rollouts of the same prompts from both engines: the same ids, exits, probes and steps.
fn same_as_local(
    vllm: &mut VllmEngine,
    local: &mut LocalEngine,
    prompts: &[Vec<u32>],
    config: &RolloutConfig,
) -> Vec<Rollout> {
    let theirs = collect(vllm, prompts, config);
    let ours = collect(local, prompts, config);
    for (t, o) in theirs.iter().zip(&ours) {
        assert_eq!(t.ids, o.ids, "greedy ids differ (prompt {})", o.prompt);
        assert_eq!((t.exit, &t.step_starts, t.probes.len()), (o.exit, &o.step_starts, o.probes.len()));
        for (a, b) in t.probes.iter().zip(&o.probes) {
            assert_eq!((a.position, a.exited, a.tokens), (b.position, b.exited, b.tokens));
            assert!((a.confidence - b.confidence).abs() < 1e-4, "{a:?} vs {b:?}");
        }
    }
    theirs
}

/// A run's events as lines, and its metrics records.
#[derive(Default)]
struct Events {
    log: Mutex<Vec<String>>,
    records: Mutex<Vec<serde_json::Value>>,
}

impl RunSink for Events {
    fn event(&self, phase: &str, event: Event<'_>) -> stepgrpo_core::Result<()> {
        if let Event::Record(r) = event {
            self.records.lock().unwrap().push(r.clone());
        }
        self.log.lock().unwrap().push(format!("{phase}: {event:?}"));
        Ok(())
    }
}

fn steps(events: &Events) -> Vec<u64> {
    events.records.lock().unwrap().iter().filter_map(|r| r["step"].as_u64()).collect()
}

#[test]
fn rollouts_on_a_real_vllm_server() {
    let Some(python) = vllm_python() else { return };
    let t0 = Instant::now();
    let phase = |what: &str| eprintln!("[{:.0} s] {what}", t0.elapsed().as_secs_f64());
    let scratch = std::env::temp_dir().join(format!("stepgrpo-vllm-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let cpu = Device::flex();
    let served = scratch.join("served");
    export(&seeded(&cpu, 9, || init(&task::model_config(), &cpu)), &served);
    let mut server = VllmServer::start(&python, &served, &scratch);
    // While it starts: a policy that writes the task's format, and a later version of it.
    let device = cpu.autodiff();
    let policy = warm_start(30, &device);
    let later = warm_start(36, &device);
    server.wait();

    let data = data();
    let config = VllmConfig {
        vllm_server_base_url: vec![server.url.clone()],
        max_retries: 2,
        ..VllmConfig::default()
    };
    let mut vllm =
        VllmEngine::connect(&config, &scratch.join("weights"), data.tokenizer.clone(), data.eos.clone())
            .unwrap_or_else(|e| panic!("{e}\n{}", server.log_tail()));
    // The first load checks a greedy continuation against the trainer's.
    block(vllm.load_weights(&policy, 0)).unwrap();
    let prompts = prompts(&data, 6);
    phase("connected, weights v0 loaded");

    // Sampled rollouts with probes: every sampled token's log-prob is the trainer's.
    let sampled = collect(&mut vllm, &prompts, &rollout_config(1.0, Some(0.999)));
    assert_eq!(sampled.len(), 12);
    assert!(sampled.iter().all(|r| r.policy_version == 0));
    let ours = trainer_log_probs(&policy.valid(), &prompts, &sampled);
    let mut worst = 0f32;
    for (r, lp) in sampled.iter().zip(&ours) {
        for (theirs, ours) in r.log_probs.iter().zip(lp) {
            if let Some(t) = theirs {
                worst = worst.max((t - ours).abs());
            }
        }
    }
    eprintln!("max |log p_vllm - log p_trainer| over sampled tokens: {worst:.2e}");
    assert!(worst < 1e-4, "log-probs differ by {worst}");

    phase("sampled rollouts compared");
    // This server reports raw log-probs: sampling at another temperature than 1 is refused.
    let tempered = rollout_config(0.7, None);
    let refused = block(vllm.collect(RolloutRequest { prompts: &prompts, config: &tempered }));
    assert!(refused.err().unwrap().to_string().contains("--logprobs-mode processed_logprobs"));

    // The ids vLLM returns decode to the text it returns.
    let reply = post(
        &server.url,
        "/v1/completions",
        &json!({"model": served, "prompt": prompts[0], "max_tokens": 40, "temperature": 1.0, "seed": 3,
                "return_token_ids": true, "skip_special_tokens": false}),
    );
    let choice = &reply["choices"][0];
    let ids: Vec<u32> = serde_json::from_value(choice["token_ids"].clone()).unwrap();
    let text = data.tokenizer.decode(&ids).unwrap();
    assert_eq!(text.trim_end_matches("<|endoftext|>"), choice["text"].as_str().unwrap());

    // Greedy: the same rollouts as the in-process engine, plain and with probes that must exit
    // (delta 0) or must not (delta 1).
    let mut ours = local(&policy.valid(), &data);
    same_as_local(&mut vllm, &mut ours, &prompts, &rollout_config(0.0, None));
    let exits = same_as_local(&mut vllm, &mut ours, &prompts, &rollout_config(0.0, Some(0.0)));
    assert!(exits.iter().any(|r| r.exit == ExitType::EarlyExit), "delta 0: every probe exits");
    assert!(exits.iter().all(|r| r.probes.iter().all(|p| p.exited)));
    let never = same_as_local(&mut vllm, &mut ours, &prompts, &rollout_config(0.0, Some(1.0)));
    assert!(never.iter().any(|r| !r.probes.is_empty()), "the test needs triggers in the greedy output");
    assert!(never.iter().all(|r| r.exit != ExitType::EarlyExit && r.probes.iter().all(|p| !p.exited)));

    // After a weight sync the server decodes as the new weights do.
    block(vllm.load_weights(&later, 1)).unwrap();
    let mut ours = local(&later.valid(), &data);
    let synced = same_as_local(&mut vllm, &mut ours, &prompts, &rollout_config(0.0, Some(0.999)));
    assert!(synced.iter().all(|r| r.policy_version == 1));
    drop(vllm);
    phase("greedy rollouts compared, before and after a sync");

    // A Step-GRPO run through the server, killed mid-run, then resumed from its checkpoint.
    let out = scratch.join("run");
    let mut c = stepgrpo_core::train::builtin_recipe();
    (c.output_dir, c.seed, c.sft.max_steps, c.methods, c.jobs) =
        (out.clone(), 2, 0, vec![Method::StepGrpo], 1);
    (c.rl.max_steps, c.rl.prompts_per_step, c.rl.steps_per_generation, c.save_steps) = (6, 2, 1, 1);
    c.rl.rollout.num_generations = 3;
    c.rl.rollout.max_completion_length = 48;
    (c.eval.num_problems, c.eval.max_completion_length, c.eval.eval_steps) = (4, 48, 0);
    c.rollout_engine = RolloutEngineKind::Vllm;
    c.vllm = VllmConfig { weights_dir: Some(scratch.join("run-weights")), ..config.clone() };
    let start = |c: &stepgrpo_core::train::TrainConfig, resume: bool, events: &Events| {
        let (data, model) = prepare(c, &device).unwrap();
        Run::new(c.clone(), data, model, Box::new(DirStore::new(&out)), resume, events).unwrap()
    };
    let events = Events::default();
    let run = start(&c, false, &events);
    let failed = std::thread::scope(|s| {
        let killer = s.spawn(|| {
            let second = out.join("step_grpo/checkpoint-2");
            while !second.exists() {
                std::thread::sleep(Duration::from_millis(20));
            }
            // Mid-rollout: once the next step's requests are being decoded.
            let start = Instant::now();
            while requests_running(&server.url) == 0.0 && start.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_millis(10));
            }
            server.kill();
        });
        let result = run.execute(&events);
        killer.join().unwrap();
        result
    });
    let Err(failed) = failed else { panic!("the run cannot go on without its server") };
    let message = failed.to_string();
    assert!(message.contains(&server.url) && message.contains("tries"), "{message}");
    assert!(message.contains("/v1/completions"), "killed mid-rollout: {message}");
    eprintln!("killed server: {message}");

    phase("run stopped by the killed server");
    let mut server = VllmServer::start(&python, &served, &scratch);
    server.wait();
    c.vllm.vllm_server_base_url = vec![server.url.clone()];
    let events = Events::default();
    let outcomes = start(&c, true, &events).execute(&events).unwrap();
    assert_eq!(outcomes.len(), 2, "the starting point and step_grpo");
    let log = events.log.lock().unwrap().join("\n");
    assert!(log.contains("resumed_from: Some("), "{log}");
    // The resumed phase goes on from its checkpoint to the last step, each step once.
    let resumed = steps(&events);
    assert!(
        resumed[0] > 1 && resumed.windows(2).all(|w| w[1] == w[0] + 1) && resumed.last() == Some(&6),
        "{resumed:?}"
    );
    let last = events.records.lock().unwrap().last().unwrap().clone();
    let mismatch = last["engine/mismatch_mean"].as_f64().unwrap_or_else(|| panic!("{last}"));
    assert!(mismatch < 1e-4, "{last}");
    phase("run resumed to its end");
    let _ = std::fs::remove_dir_all(&scratch);
}
