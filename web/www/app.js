// The demo page: configure, train step by step in a worker, chart the metrics, show the latest
// group's responses and compare the SFT model with the trained one on the same problem.
import { createTrainer, trainerDefaults } from '../pkg/client.js';
import { LineChart } from './charts.js';
import { renderRollout } from './rollouts.js';

const $ = (id) => document.getElementById(id);
const pct = (v) => `${(100 * v).toFixed(0)} %`;
const num = (v) => v.toFixed(1);

const charts = {
  loss: new LineChart($('chart-loss'), { color: '#6b7280', format: (v) => v.toFixed(2) }),
  reward: new LineChart($('chart-reward'), { color: '#2563eb' }),
  accuracy: new LineChart($('chart-accuracy'), { color: '#16a34a', format: pct }),
  tokens: new LineChart($('chart-tokens'), { color: '#d97706', format: num }),
  steps: new LineChart($('chart-steps'), { color: '#9333ea', format: num }),
  exit: new LineChart($('chart-exit'), { color: '#dc2626', format: pct }),
};

const FIELDS = ['method', 'numGenerations', 'promptsPerStep', 'sftSteps', 'sftBatchSize', 'rlSteps',
  'delta', 'maxCompletionLength', 'seed'];

let trainer = null;
let abort = null;
// Seconds and steps per phase, for the steps-per-second figure.
let timing = {};

function setState(state) {
  document.body.dataset.state = state;
  const busy = state === 'starting' || state === 'training';
  $('train').disabled = busy;
  $('stop').disabled = state !== 'training';
  $('resume').disabled = busy || !trainer;
  $('export').disabled = busy || !trainer;
  $('import').disabled = busy;
  $('compare-button').disabled = busy || !trainer;
}

function showError(e) {
  const el = $('error');
  el.hidden = false;
  el.textContent = `Error: ${e.message ?? e}`;
  setState('error');
}

function readConfig() {
  const config = { device: $('deviceChoice').value };
  for (const f of FIELDS) {
    const el = $(f);
    config[f] = el.type === 'number' ? Number(el.value) : el.value;
  }
  return config;
}

function showDevice(device) {
  const el = $('device');
  el.dataset.backend = device.backend;
  el.textContent = device.backend === 'webgpu'
    ? `Device: WebGPU — ${device.name}`
    : `Device: ${device.name}${device.fallbackReason ? ' — WebGPU unavailable' : ''}`;
  // The full reason (wgpu's adapter error) is long: on hover.
  el.title = device.fallbackReason ?? '';
}

function stepsPerSecond() {
  return Object.entries(timing)
    .map(([phase, t]) => `${phase.toUpperCase()} ${(t.steps / t.seconds).toFixed(2)} steps/s`)
    .join(', ');
}

function logRow(r) {
  const m = r.metrics;
  const cells = r.phase === 'sft'
    ? ['sft', r.step, r.seconds.toFixed(2), m.loss.toFixed(3), '', '', '', '', '']
    : ['rl', r.step, r.seconds.toFixed(2), m.loss.toFixed(3), m.reward.toFixed(3), pct(m.accuracy),
      num(m['completions/mean_length']), m['steps/mean'].toFixed(2), pct(m['early_exit/rate'])];
  const tr = document.createElement('tr');
  tr.dataset.phase = r.phase;
  tr.dataset.step = String(r.step);
  for (const c of cells) {
    const td = document.createElement('td');
    td.textContent = String(c);
    tr.append(td);
  }
  $('log-rows').append(tr);
}

function onStep(r) {
  const t = (timing[r.phase] ??= { steps: 0, seconds: 0 });
  t.steps += 1;
  t.seconds += r.seconds;
  const m = r.metrics;
  if (r.phase === 'sft') {
    charts.loss.push(r.step, m.loss);
  } else {
    charts.reward.push(r.step, m.reward);
    charts.accuracy.push(r.step, m.accuracy);
    charts.tokens.push(r.step, m['completions/mean_length']);
    charts.steps.push(r.step, m['steps/mean']);
    charts.exit.push(r.step, m['early_exit/rate']);
    const group = $('group');
    group.replaceChildren(...r.group.map((v, i) => renderRollout(v, `#${i + 1}`)));
    group.dataset.step = String(r.step);
    $('group-step').textContent = `(step ${r.step}: ${r.group[0]?.problem ?? ''})`;
  }
  logRow(r);
  const status = $('status');
  status.dataset.phase = r.phase;
  status.dataset.step = String(r.step);
  status.dataset.rate = JSON.stringify(timing);
  status.textContent = `${r.phase === 'sft' ? 'Supervised warm start' : 'RL'} step ${r.step} / ${r.totalSteps}` +
    ` (${r.seconds.toFixed(2)} s) — ${stepsPerSecond()}`;
}

/** A fresh trainer for the form's settings; charts, rollouts and log start over. */
async function newTrainer() {
  abort?.abort();
  trainer?.dispose();
  trainer = null;
  timing = {};
  Object.values(charts).forEach((c) => c.reset());
  for (const id of ['group', 'before', 'after', 'log-rows']) $(id).replaceChildren();
  for (const id of ['before-eval', 'after-eval', 'checkpoint-status', 'group-step']) $(id).textContent = '';
  $('error').hidden = true;
  $('status').textContent = 'Loading the model and the device…';
  trainer = await createTrainer(readConfig());
  showDevice(trainer.device);
  if (!$('problem').value) $('problem').value = await trainer.heldOutProblem(0);
}

/** Trains the remaining steps, then answers the comparison problem with both models. */
async function run() {
  abort = new AbortController();
  setState('training');
  await trainer.train({ onStep, signal: abort.signal });
  const stopped = abort.signal.aborted;
  await compare();
  setState(stopped ? 'stopped' : 'done');
}

async function train(event) {
  event.preventDefault();
  setState('starting');
  try {
    await newTrainer();
    await run();
  } catch (e) {
    showError(e);
  }
}

async function resume() {
  try {
    await run();
  } catch (e) {
    showError(e);
  }
}

async function answer(model, target) {
  const view = await trainer.generate($('problem').value, { model });
  $(target).replaceChildren(renderRollout(view));
}

async function compare(event) {
  event?.preventDefault();
  const status = await trainer.status();
  if (status.phase !== 'rl') {
    $('before').textContent = 'RL has not started: the SFT model is the current one.';
    await answer('current', 'after');
    return;
  }
  await answer('warmStart', 'before');
  await answer('current', 'after');
}

async function exportCheckpoint() {
  const bytes = await trainer.exportCheckpoint();
  const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
  const a = Object.assign(document.createElement('a'), { href: url, download: 'model.safetensors' });
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  $('checkpoint-status').textContent = `exported ${(bytes.length / 1e6).toFixed(1)} MB`;
}

async function importCheckpoint() {
  const file = $('import').files[0];
  if (!file) return;
  if (!trainer) await newTrainer();
  await trainer.importCheckpoint(new Uint8Array(await file.arrayBuffer()));
  const status = $('checkpoint-status');
  status.textContent = `imported ${file.name}: press Continue to train RL from it`;
  status.dataset.imported = String(Number(status.dataset.imported ?? 0) + 1);
  $('import').value = '';
}

const guarded = (f) => async (event) => {
  event?.preventDefault?.();
  const previous = document.body.dataset.state;
  try {
    setState('starting');
    await f();
    setState(previous);
  } catch (e) {
    showError(e);
  }
};

// The form starts at the package's defaults (its browser recipe), then query parameters change it
// (e.g. ?method=grpo&rlSteps=5); `autostart=1` presses Train.
const params = new URLSearchParams(location.search);
setState('starting');
const defaults = await trainerDefaults();
for (const f of FIELDS) $(f).value = String(defaults[f]);
for (const f of [...FIELDS, 'deviceChoice', 'problem']) if (params.has(f)) $(f).value = params.get(f);
document.body.dataset.defaults = 'loaded';
$('train-form').addEventListener('submit', train);
$('stop').addEventListener('click', () => abort?.abort());
$('resume').addEventListener('click', resume);
$('export').addEventListener('click', guarded(exportCheckpoint));
$('import').addEventListener('change', guarded(importCheckpoint));
$('compare-form').addEventListener('submit', guarded(compare));
setState('idle');
if (params.get('autostart') === '1') $('train').click();
