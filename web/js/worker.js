// The Web Worker that owns one trainer: the wasm module trains here, so the page's main thread
// never waits on a step. Messages: { id, op, args } in; { id, ok, value | error } out.
import init, { Trainer } from './stepgrpo_web.js';

// Operations the page may call; anything else is refused with a clear message.
const OPS = new Set([
  'step', 'sftStep', 'rlStep', 'generate', 'evaluate', 'heldOutProblem',
  'exportCheckpoint', 'importCheckpoint', 'checkpoint', 'status', 'device', 'config',
]);

const ready = init();

// Browsers often hide the adapter's description, which is all wgpu reports; vendor and
// architecture (e.g. "google swiftshader") usually remain.
async function describe(device) {
  if (device.backend !== 'webgpu' || device.name) return device;
  const info = (await navigator.gpu?.requestAdapter())?.info;
  const name = [info?.vendor, info?.architecture, info?.device].filter(Boolean).join(' ');
  return { ...device, name: name || 'WebGPU adapter (details hidden by the browser)' };
}
let trainer = null;

self.onmessage = async ({ data }) => {
  const { id, op, args = [] } = data;
  try {
    await ready;
    let value;
    if (op === 'defaults') {
      value = Trainer.defaults();
    } else if (op === 'create') {
      if (trainer) throw new Error('this worker already has a trainer; create another one');
      trainer = await Trainer.create(args[0] ?? {});
      value = { device: await describe(trainer.device()), config: trainer.config(), status: trainer.status() };
    } else if (!OPS.has(op)) {
      throw new Error(`unknown operation ${JSON.stringify(op)}`);
    } else if (!trainer) {
      throw new Error('the trainer is not created yet');
    } else {
      value = await trainer[op](...args);
    }
    // Checkpoints travel without a copy.
    const bytes = value instanceof Uint8Array ? value : value?.model instanceof Uint8Array ? value.model : null;
    const transfer = bytes ? [bytes.buffer] : [];
    self.postMessage({ id, ok: true, value }, transfer);
  } catch (e) {
    self.postMessage({ id, ok: false, error: String(e?.message ?? e) });
  }
};
