// Types of the stepgrpo browser API (client.js). The raw wasm-bindgen class, for use inside your own
// worker, is typed in stepgrpo_web.d.ts.

/** RL methods; the first three are the demo's comparison, the rest ablations of Step-GRPO. */
export type Method =
  | 'step_grpo'
  | 'grpo'
  | 'grpo_length_penalty'
  | 'step_grpo_no_step_reward'
  | 'step_grpo_no_truncation'
  | 'step_grpo_all_mean';

/** Knobs of a trainer; every one is optional. Defaults: the package's browser recipe, as
 * trainerDefaults() reports them (recipes/browser.toml in the repository). */
export interface TrainerConfig {
  /** The RL method. */
  method?: Method;
  /** Responses per prompt (the group size G). */
  numGenerations?: number;
  /** Prompts per RL step. */
  promptsPerStep?: number;
  /** Supervised warm-start steps (0: RL starts from the initial or imported weights). */
  sftSteps?: number;
  /** Traces per SFT step. */
  sftBatchSize?: number;
  /** Peak SFT learning rate (the recipe's schedule and share of warm-up). */
  sftLearningRate?: number;
  /** RL steps. */
  rlSteps?: number;
  /** RL learning rate. */
  learningRate?: number;
  /** Probe confidence at which a truncating method stops thinking (the paper's delta). */
  delta?: number;
  /** Response tokens at most. */
  maxCompletionLength?: number;
  /** Held-out problems available to evaluate() and to the evaluations during RL. */
  evalProblems?: number;
  /** During RL, evaluate every this many steps (metrics then carry eval/accuracy, eval/mean_length, eval/steps_mean); 0 = never. */
  evalSteps?: number;
  /** Keep a checkpoint every this many steps of a phase (see checkpoint()); 0 = never. */
  saveSteps?: number;
  /** Seed of initialisation, problems and sampling. */
  seed?: number;
  /** 'auto' (WebGPU when available, else the CPU), 'webgpu' (fail without it) or 'cpu'. */
  device?: 'auto' | 'webgpu' | 'cpu';
}

export interface DeviceInfo {
  backend: 'webgpu' | 'cpu';
  /** The WebGPU adapter (its description, else vendor and architecture), or 'CPU (WebAssembly)'. */
  name: string;
  /** Why the CPU is used although WebGPU was asked for ('auto'), if it is. */
  fallbackReason: string | null;
}

export interface Status {
  phase: 'sft' | 'rl';
  method: Method;
  sftStep: number;
  sftSteps: number;
  rlStep: number;
  rlSteps: number;
  done: boolean;
}

/** The record `stepgrpo train` writes per SFT step. */
export interface SftMetrics {
  step: number;
  loss: number;
  grad_norm: number;
  learning_rate: number;
}

/** The record `stepgrpo train` writes per RL step (TRL's names where one exists). */
export interface RlMetrics {
  method: Method;
  step: number;
  reward: number;
  reward_std: number;
  frac_reward_zero_std: number;
  'completions/mean_length': number;
  'completions/clipped_ratio': number;
  kl: number;
  /** Share of tokens clipped below 1 - epsilon (negative advantage). */
  'clip_ratio/low_mean': number;
  /** Share of tokens clipped above 1 + epsilon_high (positive advantage). */
  'clip_ratio/high_mean': number;
  'clip_ratio/region_mean': number;
  /** Share of tokens held by the dual clip. */
  'clip_ratio/dual_mean': number;
  /** The policy's mean entropy over response tokens. */
  entropy: number;
  'steps/mean': number;
  'early_exit/rate': number;
  'early_exit/mean_probes': number;
  'early_exit/mean_confidence': number;
  /** Share of correct answers among the responses a probe ended (the probe's precision); null when none. */
  'early_exit/accuracy': number | null;
  accuracy: number;
  tokens_per_correct: number | null;
  loss: number;
  grad_norm: number;
  learning_rate: number;
  rollout_seconds: number;
  step_seconds: number;
  /** Present on steps that ran an evaluation (evalSteps). */
  'eval/accuracy'?: number;
  'eval/mean_length'?: number;
  'eval/steps_mean'?: number;
}

export interface Probe {
  /** Response-token index where thinking paused (the trigger's first token). */
  position: number;
  confidence: number;
  /** Greedy tokens the probe decoded. */
  tokens: number;
  /** Whether this probe ended the thinking. */
  exited: boolean;
}

/** One response, ready to draw. */
export interface RolloutView {
  /** e.g. '37+8-6=?'. */
  problem: string;
  /** The ground truth. */
  answer: string;
  text: string;
  /** One decoded piece per response token; joined they are `text`. */
  tokens: string[];
  /** The semantic step of every token (each 'Wait' opens one). */
  tokenSteps: number[];
  numSteps: number;
  probes: Probe[];
  exit: 'early_exit' | 'natural' | 'budget' | 'eos' | 'repetition';
  /** Token index where a confident probe cut the thinking, if one did. */
  cutAt: number | null;
  clipped: boolean;
  /** The boxed answer given. */
  given: string | null;
  correct: boolean;
  /** Training rollouts: the method's reward and the group-relative advantage. */
  reward: number | null;
  advantage: number | null;
}

export interface StepReport {
  phase: 'sft' | 'rl';
  /** Step of the phase, from 1. */
  step: number;
  totalSteps: number;
  /** Wall-clock seconds of the step. */
  seconds: number;
  metrics: SftMetrics | RlMetrics;
  /** RL steps: the responses of the step's first group; SFT steps: empty. */
  group: RolloutView[];
  /** What the run reported during the step: its metrics record, a checkpoint kept, a note. */
  events: Array<
    | { kind: 'record'; phase: string; record: SftMetrics | RlMetrics }
    | { kind: 'saved'; phase: string; step: number }
    | { kind: 'note'; phase: string; text: string }
  >;
  /** Whether every SFT and RL step has run. */
  done: boolean;
}

export interface EvalSummary {
  problems: number;
  accuracy: number;
  meanTokens: number;
  meanSteps: number;
  tokensPerCorrect: number | null;
  earlyExitRate: number;
  seconds: number;
}

export interface GenerateOptions {
  /** 'current' (default) or 'warmStart': the model RL started from. */
  model?: 'current' | 'warmStart';
  /** 0 (default) decodes greedily. */
  temperature?: number;
  /** Probe at every 'Wait' and stop thinking when confident (DEER). Default false. */
  deer?: boolean;
  seed?: number;
}

export interface CreateOptions {
  /** Where worker.js is served from; default: next to client.js. */
  workerUrl?: string | URL;
}

/** Creates a trainer in its own Web Worker; resolves once the device and the model are ready. */
export function createTrainer(config?: TrainerConfig, options?: CreateOptions): Promise<TrainerClient>;

/** Every option of createTrainer with its default (the package's browser recipe). */
export function trainerDefaults(options?: CreateOptions): Promise<Required<TrainerConfig>>;

/** A trainer running in a Web Worker. Calls are queued, so they never overlap. */
export class TrainerClient {
  readonly device: DeviceInfo;
  readonly config: Required<TrainerConfig>;
  /** The next step: SFT until its steps are done, then RL. */
  step(): Promise<StepReport>;
  /** One supervised step (fails once RL has started). */
  sftStep(): Promise<StepReport>;
  /** One RL step; the first one ends SFT and starts RL from its model. */
  rlStep(): Promise<StepReport>;
  status(): Promise<Status>;
  /** Answers a problem of the task such as '37+8-6'. */
  generate(problem: string, options?: GenerateOptions): Promise<RolloutView>;
  /** Accuracy and lengths on the first n held-out problems. */
  evaluate(n: number, options?: { model?: 'current' | 'warmStart'; deer?: boolean }): Promise<EvalSummary>;
  /** A held-out problem's text, e.g. '37+8-6=?'. */
  heldOutProblem(index: number): Promise<string>;
  /** The current weights as a Hugging Face model.safetensors file. */
  exportCheckpoint(): Promise<Uint8Array>;
  /** The newest checkpoint kept every saveSteps steps of the current phase, or null. */
  checkpoint(): Promise<{ phase: string; step: number; model: Uint8Array } | null>;
  /** Loads model.safetensors bytes (from exportCheckpoint or `stepgrpo train`) as the warm start; RL starts over. */
  importCheckpoint(bytes: Uint8Array | ArrayBuffer): Promise<void>;
  /** Runs the remaining steps, calling onStep after each; resolves to the last report. */
  train(options?: { onStep?: (report: StepReport) => void; signal?: AbortSignal }): Promise<StepReport | null>;
  /** Stops the worker. */
  dispose(): void;
}
