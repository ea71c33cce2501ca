/**
 * The library facade: a refiner owns a kernel instance with the packed
 * weights and refines (image, coarse mask) pairs.
 *
 * @module
 */

import { compileKernels, instantiateKernels, type KernelBuild } from "./engine/wasm.ts";
import { Arena } from "./engine/arena.ts";
import { loadNetwork } from "./model/network.ts";
import { loadModelWeights, type ModelWeights } from "./weights/model_weights.ts";
import { WeightsError } from "./weights/safetensors.ts";
import {
  refineScheduled,
  type ScheduleOptions,
  type StageStats,
  type UnitRunner,
} from "./pipeline/refine.ts";
import { type UnitContext, unitContext } from "./pipeline/unit.ts";
import { InlineRunner, WorkerPool, workersAvailable } from "./workers/pool.ts";
import type { WorkerFault } from "./workers/protocol.ts";
import { CrispmaskError } from "./errors.ts";
import { applyCoarseTrust, DEFAULT_COARSE_TRUST } from "./coarse_trust.ts";
import { binarise, checkAspect, foregroundBox, resizeNearest } from "./mask_ops.ts";
import { averagePlanes, mirrorImage, mirrorMask } from "./mirror.ts";
import { checkImage, checkMask, type Mask, type RgbImage } from "./types.ts";
import { readBytes } from "./platform/read.ts";

/** Progress of a `refine` call: `done` of `total` target pixels over all stages. */
export interface Progress {
  /** the stage running, from 0 */
  stage: number;
  /** stages in all (the first near the training resolution, the last at full size) */
  stages: number;
  /** target pixels finished, over all stages */
  done: number;
  /** target pixels of all stages */
  total: number;
}

/** Where the weights come from: bytes, or a URL / path of a safetensors file. */
export type WeightsSource = Uint8Array | URL | string;

/** Options of `createRefiner`. */
export interface RefinerOptions {
  /** the weights (default: the bundled weights/crm-lite.safetensors) */
  weights?: WeightsSource;
  /** force a kernel build (default: relaxed SIMD where the runtime validates it) */
  build?: KernelBuild;
  /** largest image accepted, in pixels (default 100 megapixels) */
  maxPixels?: number;
  /**
   * worker threads (default: one per core, `navigator.hardwareConcurrency`);
   * 0 runs on the calling thread, as it does where `Worker` does not exist or
   * (by default only) where workers cannot start, e.g. in Deno without read
   * access to the module's src/ folder. Results are identical for every count.
   */
  workers?: number;
  /**
   * bytes that the refiner's WebAssembly memories may grow to, all together
   * (this thread's and each worker's; they never shrink): work units are
   * sized to fit (default: 96 MiB of work per unit). The images passed in
   * and the mask returned are not counted.
   */
  memoryBudget?: number;
}

/** Options of one `refine` call. */
export interface RefineOptions {
  /** cancels the call; it rejects with a CrispmaskError("aborted") */
  signal?: AbortSignal;
  /** progress, as work units done of total */
  onProgress?: (p: Progress) => void;
  /** "soft" 8-bit probabilities (default) or "binary" 0/255 */
  output?: "soft" | "binary";
  /**
   * run the network on every pixel of every stage (default false: only
   * tiles near the uncertain band of the previous prediction run, the
   * coarse mask's at the first stage; confident tiles keep it)
   */
  dense?: boolean;
  /**
   * also refine the mirrored photo and average the two predictions (default
   * false). About twice the time, and a copy of the image in memory; with
   * the shipped weights and no coarse trust it removed 9.0% of the
   * evaluation sets' boundary error on average instead of 7.7%, better on
   * all 16 set x kind pairs (bench/README.md). The coarse trust applies
   * once, to the average. With it, `onProgress` counts both passes and
   * `onStage` reports every stage twice, the mirrored pass second.
   */
  flip?: boolean;
  /** called after each stage with its figures (size, time, pixels evaluated) */
  onStage?: (stage: StageReport) => void;
  /**
   * how far the output leans toward the coarse mask, in logits (default
   * 0.5; 0 turns it off): `coarseTrust * (2c - 1)` is added to each output
   * logit, c being the coarse mask in [0, 1], so with a binary mask a pixel
   * leaves its coarse label only where the network's probability passes
   * sigmoid(coarseTrust) (0.62 at 0.5). It keeps a nearly right contour
   * from wandering by a pixel; with the ninth run's weights it raised the
   * mean share of boundary error removed on the evaluation sets from 7.7% to
   * 8.8%, at some cost on badly wrong masks (bench/README.md).
   */
  coarseTrust?: number;
}

/** What one stage did: `RefineOptions.onStage` receives one per stage, in order. */
export type StageReport = Readonly<StageStats>;

/** Refines coarse masks; create with `createRefiner`, end with `dispose`. */
export interface Refiner {
  /** the kernel build in use */
  readonly build: KernelBuild;
  /** worker threads it runs on (0: the calling thread) */
  readonly workers: number;
  /** the weights' provenance (training data, steps, metrics) */
  readonly provenance: Readonly<Record<string, unknown>>;
  /**
   * Refines `coarse` (any size with the image's aspect ratio; binary or soft
   * 8-bit) into a mask at the image's full size.
   */
  refine(image: RgbImage, coarse: Mask, options?: RefineOptions): Promise<Mask>;
  /** Frees the refiner; later calls reject. */
  dispose(): void;
}

/** Objects smaller than this (px, both sides) pass through unchanged, as in CRM's evaluation. */
export const TINY_OBJECT = 32;

const DEFAULT_MAX_PIXELS = 100_000_000;

/** Creates a refiner with the bundled weights (or the given ones). */
export function createRefiner(options: RefinerOptions = {}): Promise<Refiner> {
  return createRefinerWith(options, {});
}

/**
 * Test and benchmark hooks, not part of the public API (mod.ts does not
 * export them).
 */
export interface RefinerInternals {
  /** make a worker fail on purpose */
  fault?: WorkerFault;
  /** scheduler settings for every call (first-stage size, strip rows, statistics...) */
  schedule?: Omit<ScheduleOptions, "signal" | "onProgress" | "dense">;
}

/** `createRefiner` with test and benchmark hooks. */
export async function createRefinerWith(
  options: RefinerOptions,
  internals: RefinerInternals,
): Promise<Refiner> {
  const weightsBytes = await readWeightBytes(options.weights);
  const weights = parseWeights(weightsBytes.bytes, weightsBytes.name);
  const km = await compileKernels(options.build);
  const k = instantiateKernels(km);
  const host = unitContext(loadNetwork(k, new Arena(k.memory, k.exports.heapBase()), weights));
  const count = options.workers ?? defaultWorkers();
  if (!Number.isInteger(count) || count < 0) {
    throw new CrispmaskError("bad-input", `workers must be a non-negative integer, got ${count}`);
  }
  let runner: UnitRunner & { terminate?: () => void } = new InlineRunner(host);
  if (count > 0 && workersAvailable()) {
    try {
      runner = await WorkerPool.create({
        size: count,
        module: km,
        weights: weightsBytes.bytes,
        fault: internals.fault,
      });
    } catch (err) {
      // Workers that cannot start (e.g. Deno without read access to src/workers/) fail the
      // call when they were asked for; by default the refiner runs on this thread instead.
      if (options.workers !== undefined) throw err;
    }
  }
  const schedule = { ...internals.schedule };
  if (options.memoryBudget !== undefined && schedule.unitBytes === undefined) {
    schedule.unitBytes = unitBytesWithin(options.memoryBudget, runner, k.memory.buffer.byteLength);
  }
  return new ScheduledRefiner(
    host,
    runner,
    weights,
    options.maxPixels ?? DEFAULT_MAX_PIXELS,
    schedule,
  );
}

/** Smallest work a unit may be given: below it, halos cost more than the work. */
const MIN_UNIT_BYTES = 8 * 2 ** 20;

/**
 * The unit size that keeps every instance's memory within `budget` in all:
 * each instance holds the packed weights (`base`, as measured on this
 * thread's), and units run on the workers, or on this thread without them.
 */
function unitBytesWithin(
  budget: number,
  runner: UnitRunner & { terminate?: () => void },
  base: number,
): number {
  const runners = runner instanceof WorkerPool ? runner.concurrency : 1;
  const instances = runner instanceof WorkerPool ? runners + 1 : 1;
  const unit = Math.floor((budget - instances * base) / runners);
  if (!(unit >= MIN_UNIT_BYTES)) {
    runner.terminate?.();
    const least = instances * base + runners * MIN_UNIT_BYTES;
    throw new CrispmaskError(
      "bad-input",
      `memoryBudget ${budget} is too small for ${instances} instance(s): at least ${least} bytes`,
    );
  }
  return unit;
}

function defaultWorkers(): number {
  const n = typeof navigator !== "undefined" ? navigator.hardwareConcurrency : undefined;
  return typeof n === "number" && n >= 1 ? Math.floor(n) : 1;
}

class ScheduledRefiner implements Refiner {
  #host: UnitContext | null;
  #runner: UnitRunner & { terminate?: () => void };
  #maxPixels: number;
  #schedule: RefinerInternals["schedule"];
  /** calls run one after another: memory stays that of one image */
  #queue: Promise<unknown> = Promise.resolve();
  readonly build: KernelBuild;
  readonly workers: number;
  readonly provenance: Readonly<Record<string, unknown>>;

  constructor(
    host: UnitContext,
    runner: UnitRunner & { terminate?: () => void },
    weights: ModelWeights,
    maxPixels: number,
    schedule: RefinerInternals["schedule"],
  ) {
    this.#host = host;
    this.#runner = runner;
    this.#maxPixels = maxPixels;
    this.#schedule = schedule;
    this.build = host.net.kernels.build;
    this.workers = runner instanceof WorkerPool ? runner.concurrency : 0;
    this.provenance = weights.provenance;
  }

  refine(image: RgbImage, coarse: Mask, options: RefineOptions = {}): Promise<Mask> {
    const run = this.#queue.then(() => this.#refine(image, coarse, options));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #refine(image: RgbImage, coarse: Mask, options: RefineOptions): Promise<Mask> {
    const host = this.#host;
    if (!host) throw new CrispmaskError("disposed", "this refiner was disposed");
    validateInputs(image, coarse, this.#maxPixels);
    const trust = coarseTrustOf(options);
    let out = passThrough(image, coarse);
    if (!out) {
      const data = await runAbortable(
        options.signal,
        () => this.#passes(host, image, coarse, options),
      );
      if (!this.#host) throw new CrispmaskError("disposed", "this refiner was disposed");
      out = applyCoarseTrust({ width: image.width, height: image.height, data }, coarse, trust);
    }
    return options.output === "binary" ? binarise(out) : out;
  }

  /** One scheduled refinement, or with `flip` two (the second mirrored) averaged. */
  async #passes(
    host: UnitContext,
    image: RgbImage,
    coarse: Mask,
    options: RefineOptions,
  ): Promise<Uint8Array> {
    const passes = options.flip ? 2 : 1;
    const pass = (img: RgbImage, mask: Mask, index: number) =>
      refineScheduled(host, this.#runner, img, mask, "u8", {
        ...this.#schedule,
        dense: options.dense,
        signal: options.signal,
        onProgress: options.onProgress && ((p) => options.onProgress!(ofPasses(p, index, passes))),
        onStage: options.onStage,
      });
    const plain = await pass(image, coarse, 0);
    if (passes === 1) return plain;
    if (!this.#host) throw new CrispmaskError("disposed", "this refiner was disposed");
    const width = image.width, height = image.height;
    const mirrored = await pass(mirrorImage(image), mirrorMask(coarse), 1);
    return averagePlanes(plain, mirrorMask({ width, height, data: mirrored }).data);
  }

  dispose(): void {
    this.#host = null;
    this.#runner.terminate?.();
  }
}

/** Progress of pass `index` of `passes` as progress over all of them. */
function ofPasses(p: Progress, index: number, passes: number): Progress {
  return {
    stage: index * p.stages + p.stage,
    stages: passes * p.stages,
    done: index * p.total + p.done,
    total: passes * p.total,
  };
}

function validateInputs(image: RgbImage, coarse: Mask, maxPixels: number): void {
  try {
    checkImage(image, "image");
    checkMask(coarse, "coarse mask");
  } catch (err) {
    throw new CrispmaskError("bad-input", (err as Error).message);
  }
  const pixels = image.width * image.height;
  if (pixels > maxPixels) {
    throw new CrispmaskError(
      "too-large",
      `the image has ${(pixels / 1e6).toFixed(1)} MP, over the limit of ${
        (maxPixels / 1e6).toFixed(1)
      } MP (option maxPixels)`,
    );
  }
  checkAspect(image.width, image.height, coarse.width, coarse.height);
}

/** `options.coarseTrust`, checked, or the default. */
function coarseTrustOf(options: RefineOptions): number {
  const trust = options.coarseTrust ?? DEFAULT_COARSE_TRUST;
  if (typeof trust !== "number" || !Number.isFinite(trust) || trust < 0) {
    throw new CrispmaskError(
      "bad-input",
      `coarseTrust must be a finite number >= 0, got ${String(trust)}`,
    );
  }
  return trust;
}

/**
 * Masks that need no network: empty or full ones, and tiny objects, which
 * CRM's evaluation leaves unchanged. Returns null when refinement must run.
 */
function passThrough(image: RgbImage, coarse: Mask): Mask | null {
  const box = foregroundBox(coarse);
  const full = () => resizeNearest(coarse, image.width, image.height);
  if (!box || box.count === coarse.width * coarse.height) return full();
  const sx = image.width / coarse.width, sy = image.height / coarse.height;
  if ((box.x1 - box.x0) * sx < TINY_OBJECT && (box.y1 - box.y0) * sy < TINY_OBJECT) return full();
  return null;
}

/** Runs `f`; a rejection caused by `signal` becomes CrispmaskError("aborted"). */
async function runAbortable<T>(signal: AbortSignal | undefined, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    const abortError = (err instanceof DOMException || err instanceof Error) &&
      err.name === "AbortError";
    if (abortError || (signal?.aborted && err === signal.reason)) {
      throw new CrispmaskError("aborted", "refinement aborted", { cause: err });
    }
    throw err;
  }
}

async function readWeightBytes(
  source: WeightsSource | undefined,
): Promise<{ bytes: Uint8Array; name: string }> {
  const url = source === undefined
    ? new URL("../weights/crm-lite.safetensors", import.meta.url)
    : source;
  const name = url instanceof Uint8Array ? "weights bytes" : String(url);
  try {
    return { bytes: url instanceof Uint8Array ? url : await readBytes(url), name };
  } catch (err) {
    throw new CrispmaskError(
      "weights",
      `cannot read the weights ${name}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

function parseWeights(bytes: Uint8Array, name: string): ModelWeights {
  try {
    return loadModelWeights(bytes, name);
  } catch (err) {
    if (err instanceof WeightsError) {
      throw new CrispmaskError("weights", err.message, { cause: err });
    }
    throw err;
  }
}
