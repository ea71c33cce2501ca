/**
 * The one place that talks to workers: a pool of Web Workers running units
 * (src/pipeline/unit.ts), and the inline runner used where `Worker` does not
 * exist.
 *
 * Each worker gets the compiled `WebAssembly.Module` once (no recompiling)
 * and the weights, and instantiates its own memory: no SharedArrayBuffer is
 * needed, so this works in browser pages without cross-origin isolation.
 * Units carry their own crops (transferred, not copied).
 *
 * From source a worker starts from src/workers/worker.ts; a bundle embeds
 * the worker's code (src/platform/embedded.ts) and starts it from a Blob
 * URL, so the one file needs nothing beside it.
 *
 * Failure rules: a unit that throws in a worker rejects its `run` with a
 * CrispmaskError("worker") carrying the worker's message; a worker that dies
 * (an uncaught error) rejects the unit it was running the same way and is
 * replaced for later calls. An aborted signal drops the caller's queued
 * units and rejects at once; a unit already running finishes in its worker
 * and its result is discarded.
 *
 * @module
 */

import { CrispmaskError } from "../errors.ts";
import type { KernelModule } from "../engine/wasm.ts";
import type { UnitRunner } from "../pipeline/refine.ts";
import { runUnit, type UnitContext, type UnitJob, type UnitResult } from "../pipeline/unit.ts";
import type { FromWorker, ToWorker, WorkerFault } from "./protocol.ts";
import { embedded } from "../platform/embedded.ts";

/** Options of `WorkerPool.create`. */
export interface PoolOptions {
  /** number of workers (at least 1) */
  size: number;
  module: KernelModule;
  /** the safetensors bytes (each worker gets a copy) */
  weights: Uint8Array;
  /** tests only: make a worker fail on purpose */
  fault?: WorkerFault;
}

interface Task {
  id: number;
  job: UnitJob;
  signal?: AbortSignal;
  settled: boolean;
  resolve: (r: UnitResult) => void;
  reject: (e: unknown) => void;
  /** removes the abort listener */
  detach: () => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  task: Task | null;
}

/** True where this runtime can start module workers. */
export function workersAvailable(): boolean {
  return typeof Worker !== "undefined";
}

let blobUrl: string | undefined;

/** Where a worker's module comes from: the embedded source of a bundle, or worker.ts. */
function workerUrl(): URL | string {
  const source = embedded.worker;
  if (source === undefined) return new URL("./worker.ts", import.meta.url);
  // one URL for the life of the process: every pool's workers share it
  blobUrl ??= URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  return blobUrl;
}

/** A fixed-size pool of workers that run units. */
export class WorkerPool implements UnitRunner {
  readonly concurrency: number;
  #opts: PoolOptions;
  #slots: Slot[] = [];
  #queue: Task[] = [];
  #nextId = 1;
  #spawned = 0;
  #closed = false;

  private constructor(opts: PoolOptions) {
    this.#opts = opts;
    this.concurrency = opts.size;
  }

  /** Starts `size` workers and waits until each has instantiated the kernels. */
  static async create(opts: PoolOptions): Promise<WorkerPool> {
    if (!Number.isInteger(opts.size) || opts.size < 1) {
      throw new RangeError(`workers must be >= 1, got ${opts.size}`);
    }
    const pool = new WorkerPool(opts);
    try {
      await Promise.all(Array.from({ length: opts.size }, () => pool.#spawn()));
    } catch (err) {
      pool.terminate();
      throw err;
    }
    return pool;
  }

  /** Runs one unit on the next free worker. */
  run(job: UnitJob, signal?: AbortSignal): Promise<UnitResult> {
    if (this.#closed) {
      return Promise.reject(new CrispmaskError("disposed", "the worker pool was terminated"));
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<UnitResult>((resolve, reject) => {
      const task: Task = {
        id: this.#nextId++,
        job,
        signal,
        settled: false,
        resolve,
        reject,
        detach: () => {},
      };
      if (signal) {
        const onAbort = () => this.#abort(task);
        signal.addEventListener("abort", onAbort, { once: true });
        task.detach = () => signal.removeEventListener("abort", onAbort);
      }
      this.#queue.push(task);
      this.#dispatch();
    });
  }

  /** Stops every worker; queued and running units reject. */
  terminate(): void {
    if (this.#closed) return;
    this.#closed = true;
    const err = new CrispmaskError("disposed", "the worker pool was terminated");
    for (const t of this.#queue) settle(t, err);
    this.#queue = [];
    for (const s of this.#slots) {
      if (s.task) settle(s.task, err);
      s.worker.terminate();
    }
    this.#slots = [];
  }

  #spawn(): Promise<void> {
    const worker = new Worker(workerUrl(), { type: "module" });
    const index = this.#spawned++;
    const fault = this.#opts.fault;
    const slot: Slot = { worker, ready: false, task: null };
    this.#slots.push(slot);
    return new Promise<void>((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<FromWorker>) => {
        const msg = e.data;
        if (!slot.ready) {
          if (msg.type === "ready") {
            slot.ready = true;
            resolve();
            this.#dispatch();
          } else if (msg.type === "error") {
            reject(new CrispmaskError("worker", `a worker failed to start: ${msg.message}`));
          }
          return;
        }
        this.#onMessage(slot, msg);
      };
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault(); // handled here: do not let it reach the main thread as uncaught
        const err = new CrispmaskError("worker", `a worker died: ${e.message}`);
        if (!slot.ready) reject(err);
        this.#onDeath(slot, err);
      };
      worker.onmessageerror = () => {
        const err = new CrispmaskError("worker", "a worker's message could not be read");
        if (!slot.ready) reject(err);
        this.#onDeath(slot, err);
      };
      const init: ToWorker = {
        type: "init",
        module: this.#opts.module.module,
        build: this.#opts.module.build,
        weights: this.#opts.weights,
        fault: fault && (fault.worker === undefined || fault.worker === index) ? fault : undefined,
      };
      worker.postMessage(init);
    });
  }

  #onMessage(slot: Slot, msg: FromWorker): void {
    const task = slot.task;
    slot.task = null;
    if (task && msg.type === "result" && msg.id === task.id) {
      if (!task.settled) {
        task.settled = true;
        task.detach();
        task.resolve(msg.result);
      }
    } else if (task && msg.type === "error") {
      settle(task, new CrispmaskError("worker", `a worker failed: ${msg.name}: ${msg.message}`));
    }
    this.#dispatch();
  }

  /** A dead worker fails its unit and is replaced (the replacement serves later units). */
  #onDeath(slot: Slot, err: CrispmaskError): void {
    const i = this.#slots.indexOf(slot);
    if (i < 0) return;
    this.#slots.splice(i, 1);
    slot.worker.terminate();
    if (slot.task) settle(slot.task, err);
    slot.task = null;
    if (this.#closed || !slot.ready) return;
    // later units need a worker; queued units of the failed call were dropped by its caller
    this.#spawn().catch((e) => {
      for (const t of this.#queue.splice(0)) settle(t, e);
    });
  }

  #abort(task: Task): void {
    const q = this.#queue.indexOf(task);
    if (q >= 0) this.#queue.splice(q, 1);
    settle(task, task.signal!.reason);
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      if (!slot.ready || slot.task) continue;
      const task = this.#queue.shift();
      if (!task) return;
      slot.task = task;
      const msg: ToWorker = { type: "unit", id: task.id, job: task.job };
      slot.worker.postMessage(msg, [task.job.image.data.buffer, task.job.mask.data.buffer]);
    }
  }
}

function settle(task: Task, err: unknown): void {
  if (task.settled) return;
  task.settled = true;
  task.detach();
  task.reject(err);
}

/**
 * Runs units on the calling thread, one at a time, yielding to the event
 * loop before each so that an abort or a timer gets through between units.
 */
export class InlineRunner implements UnitRunner {
  readonly concurrency = 1;
  #ctx: UnitContext;
  constructor(ctx: UnitContext) {
    this.#ctx = ctx;
  }

  async run(job: UnitJob, signal?: AbortSignal): Promise<UnitResult> {
    await new Promise((resolve) => setTimeout(resolve, 0));
    signal?.throwIfAborted();
    return runUnit(this.#ctx, job);
  }
}
