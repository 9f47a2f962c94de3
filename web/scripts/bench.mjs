// Steps per second of the demo page in headless Chromium on the CPU fallback, for the configuration
// of bench/native.toml (which `stepgrpo train --config web/bench/native.toml --device cpu` runs natively).
//   node scripts/bench.mjs      (after scripts/build.sh)
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from './serve.mjs';

const CONFIG = {
  sftSteps: 50, sftBatchSize: 16, rlSteps: 5, numGenerations: 8, promptsPerStep: 4,
  maxCompletionLength: 128, delta: 0.95, seed: 0, method: 'step_grpo', deviceChoice: 'cpu', autostart: 1,
};
const web = fileURLToPath(new URL('..', import.meta.url));
const server = await serve(web);
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const page = await browser.newPage();
  const query = new URLSearchParams(Object.entries(CONFIG).map(([k, v]) => [k, String(v)]));
  await page.goto(`http://127.0.0.1:${server.address().port}/www/?${query}`);
  await page.waitForSelector('body[data-state="done"], body[data-state="error"]', { timeout: 60 * 60_000 });
  const rate = JSON.parse(await page.getAttribute('#status', 'data-rate'));
  for (const [phase, t] of Object.entries(rate)) {
    console.log(`${phase}: ${t.steps} steps in ${t.seconds.toFixed(1)} s = ${(t.steps / t.seconds).toFixed(3)} steps/s`);
  }
} finally {
  await browser.close();
  server.close();
}
