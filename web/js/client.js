// The page-side API: a trainer that lives in a Web Worker, with every call a promise.
//
//   import { createTrainer } from 'stepgrpo-web';
//   const trainer = await createTrainer({ method: 'step_grpo', sftSteps: 100, rlSteps: 10 });
//   await trainer.train({ onStep: (r) => console.log(r.phase, r.step, r.metrics) });
//
// Types and documentation: client.d.ts.

/** Creates a trainer in its own worker; resolves once the device and the model are ready. */
export async function createTrainer(config = {}, options = {}) {
  const url = options.workerUrl ?? new URL('./worker.js', import.meta.url);
  const trainer = new TrainerClient(new Worker(url, { type: 'module' }));
  try {
    const info = await trainer._call('create', [config]);
    trainer.device = info.device;
    trainer.config = info.config;
  } catch (e) {
    trainer.dispose();
    throw e;
  }
  return trainer;
}

/**
 * Every option of createTrainer with its default (the package's browser recipe), read from a
 * short-lived worker: a page fills its form from these instead of copying the numbers.
 */
export async function trainerDefaults(options = {}) {
  const url = options.workerUrl ?? new URL('./worker.js', import.meta.url);
  const client = new TrainerClient(new Worker(url, { type: 'module' }));
  try {
    return await client._call('defaults');
  } finally {
    client.dispose();
  }
}

/** A trainer running in a Web Worker. Calls are queued, so they never overlap. */
export class TrainerClient {
  constructor(worker) {
    this._worker = worker;
    this._next = 0;
    this._pending = new Map();
    this._queue = Promise.resolve();
    /** `{ backend: 'webgpu' | 'cpu', name, fallbackReason }`, set by createTrainer. */
    this.device = null;
    /** The configuration with every default filled in, set by createTrainer. */
    this.config = null;
    worker.onmessage = ({ data }) => {
      const waiting = this._pending.get(data.id);
      if (!waiting) return;
      this._pending.delete(data.id);
      if (data.ok) waiting.resolve(data.value);
      else waiting.reject(new Error(data.error));
    };
    // A worker that fails to load (e.g. the .wasm is missing) fails every call with its reason.
    worker.onerror = (event) => {
      event.preventDefault();
      this._failAll(new Error(`stepgrpo worker: ${event.message || 'failed to load'}`));
    };
  }

  _failAll(error) {
    for (const { reject } of this._pending.values()) reject(error);
    this._pending.clear();
  }

  _call(op, args = [], transfer = []) {
    const run = () =>
      new Promise((resolve, reject) => {
        if (!this._worker) return reject(new Error('the trainer was disposed'));
        const id = this._next++;
        this._pending.set(id, { resolve, reject });
        this._worker.postMessage({ id, op, args }, transfer);
      });
    const result = this._queue.then(run, run);
    this._queue = result.catch(() => {});
    return result;
  }

  /** The next step: SFT until its steps are done, then RL. */
  step() { return this._call('step'); }
  /** One supervised step. */
  sftStep() { return this._call('sftStep'); }
  /** One RL step (the first one ends SFT). */
  rlStep() { return this._call('rlStep'); }
  /** Where training stands. */
  status() { return this._call('status'); }
  /** Answers a problem such as '37+8-6'. */
  generate(problem, options = {}) { return this._call('generate', [problem, options]); }
  /** Held-out accuracy and lengths of the current model or the warm start. */
  evaluate(n, { model = 'current', deer = false } = {}) { return this._call('evaluate', [n, model, deer]); }
  /** A held-out problem's text. */
  heldOutProblem(index) { return this._call('heldOutProblem', [index]); }
  /** The current weights as `model.safetensors` bytes. */
  exportCheckpoint() { return this._call('exportCheckpoint'); }
  /** The newest checkpoint kept every `saveSteps` steps: `{ phase, step, model }`, or null. */
  checkpoint() { return this._call('checkpoint'); }
  /** Loads `model.safetensors` bytes as the warm start; RL starts over from them. */
  importCheckpoint(bytes) {
    const copy = new Uint8Array(bytes);
    return this._call('importCheckpoint', [copy], [copy.buffer]);
  }

  /**
   * Runs the remaining steps, calling `onStep(report)` after each; stops early when `signal` is
   * aborted. Resolves to the last report.
   */
  async train({ onStep, signal } = {}) {
    let last = null;
    while (!signal?.aborted && !(await this.status()).done) {
      last = await this.step();
      onStep?.(last);
    }
    return last;
  }

  /** Stops the worker; the trainer cannot be used afterwards. */
  dispose() {
    this._failAll(new Error('the trainer was disposed'));
    this._worker?.terminate();
    this._worker = null;
  }
}
