// End-to-end test of the demo page in headless Chromium (Debian's, never a downloaded one):
// trains a few SFT and RL steps through the page's controls and checks that metrics and rollouts
// appear and change, that the page stays responsive, that a checkpoint exports (and, on the CPU,
// imports to the same answers), and that nothing is logged as an error. Saves a screenshot to
// web/test-results/.
//
//   node scripts/e2e.mjs webgpu|cpu
//
// webgpu: Chromium with --enable-unsafe-webgpu (SwiftShader's adapter without a GPU); the page must
// train on WebGPU. cpu: without the flag there is no adapter; the page must fall back to the CPU.
import { readFileSync, readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from './serve.mjs';

const mode = process.argv[2];
if (!['webgpu', 'cpu'].includes(mode)) {
  console.error('usage: node scripts/e2e.mjs webgpu|cpu');
  process.exit(2);
}
const web = fileURLToPath(new URL('..', import.meta.url));
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
// Small on purpose, smallest on WebGPU: SwiftShader compiles and runs compute shaders on the CPU and
// takes 20-80 s per step (the CPU backend a fraction of a second), so there one step of each phase
// shows that the WebGPU path trains, and the CPU run checks that metrics move from step to step.
const SETTINGS = mode === 'webgpu'
  ? { sftSteps: 1, sftBatchSize: 4, rlSteps: 1, numGenerations: 2, promptsPerStep: 1, maxCompletionLength: 24 }
  : { sftSteps: 3, sftBatchSize: 8, rlSteps: 2, numGenerations: 4, promptsPerStep: 2, maxCompletionLength: 48 };
const MINUTE = 60_000;
const started = Date.now();

function check(ok, what) {
  if (!ok) throw new Error(`e2e (${mode}): ${what}`);
  console.log(`  ok: ${what}`);
}

const server = await serve(web);
const base = `http://127.0.0.1:${server.address().port}`;
const args = ['--no-sandbox'];
if (mode === 'webgpu') args.push('--enable-unsafe-webgpu');
const browser = await chromium.launch({ executablePath, args, headless: true });
const errors = [];
try {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text().slice(0, 600)}`);
  });
  page.on('pageerror', (e) => errors.push(`page: ${e.message}`));
  page.on('worker', (w) => w.on('close', () => {}));

  await page.goto(`${base}/www/`);
  // The form fills itself from the package's defaults before anything else.
  await page.waitForSelector('body[data-defaults="loaded"]', { timeout: 2 * MINUTE });
  for (const [id, value] of Object.entries(SETTINGS)) await page.fill(`#${id}`, String(value));
  await page.selectOption('#method', 'step_grpo');
  await page.click('#train');

  const device = await page.waitForSelector('#device[data-backend]:not([data-backend=""])', { timeout: 2 * MINUTE });
  const backend = await device.getAttribute('data-backend');
  console.log(`  device: ${await device.textContent()}`);
  check(backend === mode, `trains on ${mode} (page says ${backend})`);
  if (mode === 'webgpu') {
    // Every kernel of shaders/wgsl compiles in Chromium's WGSL compiler, also those this run does
    // not launch (workgroup size as the Rust side fills it in).
    const dir = fileURLToPath(new URL('../../shaders/wgsl/', import.meta.url));
    const sources = Object.fromEntries(readdirSync(dir).filter((f) => f.endsWith('.wgsl'))
      .map((f) => [f, readFileSync(dir + f, 'utf8').replaceAll('{{ wg }}', '256')]));
    const messages = await page.evaluate(async (sources) => {
      const device = await (await navigator.gpu.requestAdapter()).requestDevice();
      const out = {};
      for (const [name, code] of Object.entries(sources)) {
        const info = await device.createShaderModule({ code }).getCompilationInfo();
        out[name] = info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}: ${m.message}`);
      }
      return out;
    }, sources);
    const bad = Object.entries(messages).filter(([, m]) => m.length > 0);
    check(Object.keys(messages).length > 0 && bad.length === 0,
      `the ${Object.keys(messages).length} WGSL kernels compile in Chromium${bad.length ? `: ${JSON.stringify(bad)}` : ''}`);
  }

  // After the first RL step: a group of responses, one per generation, drawn token by token.
  await page.waitForSelector('#group[data-step="1"], body[data-state="error"]', { timeout: 10 * MINUTE });
  const failed = (await page.getAttribute('body', 'data-state')) === 'error';
  check(!failed, `the first RL step ran${failed ? `: ${await page.locator('#error').innerText()}\n${errors.join('\n')}` : ''}`);
  const firstGroup = await page.locator('#group').innerText();
  check((await page.locator('#group .rollout').count()) === SETTINGS.numGenerations, 'a whole group is shown');
  check((await page.locator('#group .tok').count()) > 0, 'responses are drawn token by token');

  // The page keeps answering while the worker trains.
  const t0 = Date.now();
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r())));
  const frameMs = Date.now() - t0;
  check(frameMs < 1000, `the page stays responsive while training (a frame in ${frameMs} ms)`);

  await page.waitForSelector('body[data-state="done"], body[data-state="error"]', { timeout: 10 * MINUTE });
  const error = await page.locator('#error').innerText();
  check((await page.getAttribute('body', 'data-state')) === 'done', `training finishes (${error || 'no error'})`);
  const trainedMs = Date.now() - started;

  // Metrics: every step logged, charts drawn, values moving.
  const rows = await page.$$eval('#log-rows tr', (trs) => trs.map((tr) => ({
    phase: tr.dataset.phase, cells: [...tr.children].map((td) => td.textContent),
  })));
  for (const r of rows) console.log(`    ${r.cells.join('  ')}`);
  const sft = rows.filter((r) => r.phase === 'sft');
  const rl = rows.filter((r) => r.phase === 'rl');
  check(sft.length === SETTINGS.sftSteps && rl.length === SETTINGS.rlSteps, `${rows.length} steps logged`);
  if (SETTINGS.sftSteps > 1) {
    check(sft[0].cells[3] !== sft[sft.length - 1].cells[3], `SFT loss changes (${sft[0].cells[3]} -> ${sft[sft.length - 1].cells[3]})`);
  }
  if (SETTINGS.rlSteps > 1) {
    check(rl[0].cells.slice(3).join() !== rl[1].cells.slice(3).join(), `RL metrics change (${rl[0].cells.slice(3)} -> ${rl[1].cells.slice(3)})`);
  }
  for (const chart of ['loss', 'reward', 'accuracy', 'tokens', 'steps', 'exit']) {
    const points = Number(await page.getAttribute(`#chart-${chart}`, 'data-points'));
    const want = chart === 'loss' ? SETTINGS.sftSteps : SETTINGS.rlSteps;
    check(points === want, `chart ${chart} has ${points} points`);
  }
  check((await page.getAttribute('#group', 'data-step')) === String(SETTINGS.rlSteps), 'the rollout viewer shows the last step');
  if (SETTINGS.rlSteps > 1) {
    check((await page.locator('#group').innerText()) !== firstGroup, 'the rollouts change between steps');
  }

  // Before/after: both models answered the same problem.
  check((await page.locator('#before .rollout').count()) === 1, 'the SFT model answered');
  check((await page.locator('#after .rollout').count()) === 1, 'the trained model answered');

  // Checkpoint round trip: the imported weights answer exactly as the trained ones did (greedy).
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
  const bytes = await (async () => {
    const chunks = [];
    for await (const c of await download.createReadStream()) chunks.push(c);
    return Buffer.concat(chunks);
  })();
  check(bytes.length > 3_000_000, `exported a checkpoint of ${(bytes.length / 1e6).toFixed(2)} MB`);
  // Importing is the same code on either backend; its greedy answer costs a minute on SwiftShader.
  if (mode === 'cpu') {
    const trainedAnswer = await page.locator('#after .tokens').innerText();
    await page.setInputFiles('#import', { name: 'model.safetensors', mimeType: 'application/octet-stream', buffer: bytes });
    await page.waitForSelector('#checkpoint-status[data-imported="1"]', { timeout: 2 * MINUTE });
    await page.click('#compare-button');
    await page.waitForFunction(() => document.body.dataset.state === 'done' && !document.getElementById('compare-button').disabled,
      null, { timeout: 5 * MINUTE });
    check((await page.locator('#before .tokens').innerText()) === trainedAnswer, 'the imported checkpoint answers as the trained model did');
  }

  await mkdir(`${web}/test-results`, { recursive: true });
  await page.screenshot({ path: `${web}/test-results/e2e-${mode}.png`, fullPage: true });

  const rate = JSON.parse((await page.getAttribute('#status', 'data-rate')) ?? '{}');
  const perPhase = Object.entries(rate).map(([p, t]) => `${p} ${(t.steps / t.seconds).toFixed(2)} steps/s`).join(', ');
  console.log(`  speed in the page (${mode}): ${perPhase}; trained in ${(trainedMs / 1000).toFixed(1)} s`);

  // The embedding example (CPU: SwiftShader would only repeat the same path more slowly), with the
  // run's cadence: a checkpoint and a held-out evaluation every step.
  if (mode === 'cpu') {
    await page.goto(`${base}/www/embed.html?sftSteps=2&rlSteps=2&saveSteps=1&evalSteps=1&evalProblems=4`);
    await page.waitForSelector('body[data-state="done"]', { timeout: 5 * MINUTE });
    const out = await page.locator('#out').innerText();
    console.log(out.split('\n').map((l) => `    ${l}`).join('\n'));
    check(out.includes('rl 2:') && out.includes('37+8-6 ->'), 'the embedding example trains and answers');
    check(/rl 1: .*held-out accuracy/.test(out) && /rl 2: .*held-out accuracy/.test(out), 'it evaluates every evalSteps');
    check(out.includes('[checkpoint sft 1]') && out.includes('[checkpoint step_grpo 1]')
      && /newest checkpoint: step_grpo step 1, \d{6,} bytes/.test(out), 'it keeps a checkpoint every saveSteps');
  }
  check(errors.length === 0, `no console errors${errors.length ? `:\n${errors.join('\n')}` : ''}`);
  console.log(`e2e ${mode}: passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} finally {
  await browser.close();
  server.close();
}
