/**
 * Messages between the pool (src/workers/pool.ts) and a worker
 * (src/workers/worker.ts). Plain data only: they cross `postMessage`.
 *
 * @module
 */

import type { KernelBuild } from "../engine/wasm.ts";
import type { UnitJob, UnitResult } from "../pipeline/unit.ts";

/** A failure injected on purpose (tests only): on the `unit`-th unit a worker receives (1-based). */
export interface WorkerFault {
  unit: number;
  /** which worker, by start order from 0 (default: every worker; replacements count too) */
  worker?: number;
  /** "throw": the unit throws (reported back); "die": the worker crashes with an uncaught error */
  mode: "throw" | "die";
}

/** Pool -> worker. */
export type ToWorker =
  | {
    type: "init";
    module: WebAssembly.Module;
    build: KernelBuild;
    weights: Uint8Array;
    fault?: WorkerFault;
  }
  | { type: "unit"; id: number; job: UnitJob };

/** Worker -> pool. */
export type FromWorker =
  | { type: "ready" }
  | { type: "result"; id: number; result: UnitResult }
  | { type: "error"; id: number | null; name: string; message: string };
