/**
 * The multi-resolution refinement, scheduled: train/model.py's `refine`
 * stage by stage, each stage cut into units (row strips, or boundary tiles)
 * that a `UnitRunner` executes — a worker pool or
 * this thread. Memory stays bounded by the units: the full-size image stays
 * 8-bit (units get crops and resize them as they stream their rows), and
 * the stages' probabilities are planes on their own grids; in sparse mode
 * a plane stores only the tiles that ran (src/pipeline/planes.ts), so the
 * only full-size plane is the final 8-bit mask.
 *
 * Dense mode computes every target pixel and equals the whole-image
 * pipeline (src/pipeline/refine_dense.ts) bit for bit. Sparse mode (the
 * default) runs the network only on tiles that touch the previous
 * prediction's uncertain band (src/pipeline/plan.ts); other tiles keep the
 * upsampled previous prediction. At the first stage the previous prediction
 * is the coarse mask, with a wider margin (its errors are the widest), so
 * far from its contour the coarse mask passes through: the network is not
 * asked to find objects the coarse mask has no trace of.
 *
 * @module
 */

import type { Mask, RgbImage } from "../types.ts";
import {
  denseSeconds,
  planSparseUnits,
  planStrips,
  planTiles,
  type Rect,
  SPARSITY,
  type SparsityOptions,
  type StageGeometry,
  stageSparsity,
  tileRuns,
  type UnitPlan,
} from "./plan.ts";
import { querySizes, stageSizes } from "./schedule.ts";
import { areaResizeU8, coarseToStage, crop, cropRgb, preResize } from "./stage_inputs.ts";
import { DensePlane, type ProbPlane, RUN, SparsePlane, type TileMap, upsample } from "./planes.ts";
import {
  imageSpanFor,
  planUnit,
  queryOffsets,
  type UnitContext,
  unitInputSpan,
  type UnitJob,
  type UnitOutput,
  type UnitResult,
} from "./unit.ts";

export { coarseToStage };

/** Progress of a refinement: `done` of `total` target pixels over all stages. */
export interface Progress {
  stage: number;
  stages: number;
  done: number;
  total: number;
}

/** Executes units: a worker pool, or the calling thread. */
export interface UnitRunner {
  /** how many units it runs at once */
  readonly concurrency: number;
  /** runs one unit; rejects with the unit's error, or when `signal` aborts before it starts */
  run(job: UnitJob, signal?: AbortSignal): Promise<UnitResult>;
}

/** What one stage did, as the scheduler fills it (`StageReport` is its read-only form). */
export interface StageStats {
  /** encoder size, [height, width] */
  size: [number, number];
  /** query size, [height, width] */
  target: [number, number];
  /** whether only boundary tiles ran */
  sparse: boolean;
  /** work units run */
  units: number;
  /** target pixels computed by the network */
  queried: number;
  /** fraction of target tiles that ran (1 for dense stages) */
  activeTiles: number;
  /** encoder multiply-adds planned */
  macs: number;
  /** largest linear memory of an instance that ran a unit, bytes */
  memoryBytes: number;
  /** wall milliseconds of the stage */
  ms: number;
}

/** Options of `refineScheduled`. */
export interface ScheduleOptions {
  /** compute every pixel of every stage (default false: boundary-band sparsity at every stage) */
  dense?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** long side of the first stage (default: the model's `base_long_side`) */
  baseLongSide?: number;
  /** target rows per strip (default: from the memory budget) */
  stripRows?: number;
  /** memory of one unit (default 96 MiB): wider units are cut into columns */
  unitBytes?: number;
  /** tiles and thresholds of the sparsity */
  sparsity?: Partial<SparsityOptions>;
  /** called with each stage's statistics when it ends */
  onStage?: (stats: StageStats) => void;
  /** filled with per-stage statistics */
  stats?: StageStats[];
}

/** Default memory of one unit. */
export const UNIT_BYTES = 96 * 2 ** 20;

/**
 * Refines `coarse` into the image's full size: 8-bit probabilities
 * (`output` "u8") or float logits ("logits", for tests and evaluation).
 */
export async function refineScheduled(
  host: UnitContext,
  runner: UnitRunner,
  image: RgbImage,
  coarse: Mask,
  output: "u8",
  opts?: ScheduleOptions,
): Promise<Uint8Array>;
export async function refineScheduled(
  host: UnitContext,
  runner: UnitRunner,
  image: RgbImage,
  coarse: Mask,
  output: "logits",
  opts?: ScheduleOptions,
): Promise<Float32Array>;
export async function refineScheduled(
  host: UnitContext,
  runner: UnitRunner,
  image: RgbImage,
  coarse: Mask,
  output: "u8" | "logits",
  opts: ScheduleOptions = {},
): Promise<Uint8Array | Float32Array> {
  const H = image.height, W = image.width;
  const sizes = stageSizes(H, W, opts.baseLongSide ?? host.net.config.base_long_side);
  const targets = querySizes(sizes);
  const progress = new ProgressCounter(
    opts.onProgress,
    sizes.length,
    targets.reduce((s, [h, w]) => s + h * w, 0),
  );
  let mask: ProbPlane = new DensePlane(...sizes[0], coarseToStage(host, coarse, sizes[0]));
  for (let s = 0; s < sizes.length; s++) {
    opts.signal?.throwIfAborted();
    const geo: StageGeometry = { size: sizes[s], target: targets[s], full: [H, W] };
    const final = s === sizes.length - 1;
    progress.stage = s;
    const plane = await runStage(host, runner, image, mask, geo, final ? output : "prob", {
      ...opts,
      dense: opts.dense,
      sparsity: stageSparsity(opts.sparsity, s),
      progress: (n) => progress.add(n),
    });
    if (final) return plane as Uint8Array | Float32Array;
    mask = plane as ProbPlane;
  }
  throw new Error("unreachable: no stages");
}

/** Options of `runStage`. */
export interface StageOptions extends Omit<ScheduleOptions, "onProgress" | "baseLongSide"> {
  /** called with the target pixels each finished unit or skipped rectangle covers */
  progress?: (pixels: number) => void;
}

/**
 * One stage: plans its units (strips, or boundary tiles unless `dense`),
 * runs them, and fills what they skip from `mask` (the previous
 * probability on the stage's encoder grid). Returns the stage's
 * probability plane (`kind` "prob"; sparse stages store only their run
 * tiles), or the final values (8-bit or logits) on the target grid.
 */
export async function runStage(
  host: UnitContext,
  runner: UnitRunner,
  image: RgbImage,
  mask: ProbPlane,
  geo: StageGeometry,
  kind: UnitOutput,
  opts: StageOptions = {},
): Promise<ProbPlane | Uint8Array | Float32Array> {
  const t0 = performance.now();
  const stats: StageStats = {
    size: geo.size,
    target: geo.target,
    sparse: !opts.dense,
    units: 0,
    queried: 0,
    activeTiles: 1,
    macs: 0,
    memoryBytes: 0,
    ms: 0,
  };
  const budget = opts.unitBytes ?? UNIT_BYTES;
  const workers = runner.concurrency;
  let units: UnitPlan[] = [];
  let map: TileMap | null = null;
  if (!opts.dense) {
    const sparsity = { ...SPARSITY, ...opts.sparsity };
    map = planTiles(mask, geo, sparsity);
    const plan = planSparseUnits(host.net.graph, geo, map, budget, workers);
    if (plan.seconds < sparsity.denseAbove * denseSeconds(host.net.graph, geo)) {
      units = plan.units;
      stats.activeTiles = map.state.reduce((a, s) => a + (s === RUN ? 1 : 0), 0) / map.state.length;
    } else {
      map = null; // sparsity would not pay: every tile runs
    }
  }
  if (!map) {
    units = planStrips(host.net.graph, geo, { rows: opts.stripRows, budgetBytes: budget, workers });
    stats.sparse = false;
  }
  stats.units = units.length;
  stats.queried = units.reduce((a, u) => a + area(u.queries), 0);
  const out = outputOf(kind, mask, geo, map);
  const staged = preResize(geo)
    ? areaResizeU8(host, image.data, geo.full, image.channels, 3, geo.size)
    : null;
  const jobOf = (u: UnitPlan) => {
    const { job, macs } = unitJob(host, image, staged, mask, geo, u, kind);
    stats.macs += macs;
    return job;
  };
  const running = runAll(runner, units, jobOf, (u, r) => {
    out.paste(u, r.data);
    stats.memoryBytes = Math.max(stats.memoryBytes, r.memoryBytes);
    opts.progress?.(area(u.queries));
  }, opts.signal);
  running.catch(() => {}); // handled below: a failure while filling must not go unhandled
  // Skipped tiles of the last stage are filled while the workers run (they are disjoint from
  // every query rectangle); yielding now and then lets finished units be pasted and the next
  // ones dispatched. A sparse intermediate stage fills nothing: its plane reads through.
  let sinceYield = 0;
  for (const r of map ? tileRuns(map, geo, "skip") : []) {
    opts.signal?.throwIfAborted();
    out.fill(r);
    opts.progress?.(r.h * r.w);
    sinceYield += r.h * r.w;
    if (sinceYield > 1 << 20) {
      sinceYield = 0;
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }
  await running;
  stats.ms = performance.now() - t0;
  opts.stats?.push(stats);
  opts.onStage?.({ ...stats });
  return out.result;
}

/** Where a stage's values go: a sparse or dense plane, or the final 8-bit / logit values. */
function outputOf(kind: UnitOutput, mask: ProbPlane, geo: StageGeometry, map: TileMap | null) {
  const [Ht, Wt] = geo.target;
  if (kind === "prob" && map) {
    const plane = new SparsePlane(mask, geo, map);
    return {
      result: plane as ProbPlane,
      paste: (u: UnitPlan, data: Float32Array | Uint8Array) => {
        const offsets = queryOffsets(u.queries);
        u.queries.forEach((q, i) => plane.put(q, data as Float32Array, q.w, offsets[i]));
      },
      fill: (_r: Rect) => {},
    };
  }
  const values = kind === "u8" ? new Uint8Array(Ht * Wt) : new Float32Array(Ht * Wt);
  return {
    result: kind === "prob" ? new DensePlane(Ht, Wt, values as Float32Array) : values,
    paste: (u: UnitPlan, data: Float32Array | Uint8Array) => paste(data, u, values, Wt),
    fill: (r: Rect) => {
      const p = upsample(mask, geo, r);
      for (let y = 0; y < r.h; y++) {
        const at = (r.y0 + y) * Wt + r.x0, from = y * r.w;
        if (kind === "prob") values.set(p.subarray(from, from + r.w), at);
        else if (kind === "u8") {
          for (let i = 0; i < r.w; i++) values[at + i] = Math.floor(p[from + i] * 255 + 0.5);
        } else {for (let i = 0; i < r.w; i++) {
            values[at + i] = Math.log(p[from + i]) - Math.log1p(-p[from + i]);
          }}
      }
    },
  };
}

function area(rects: readonly Rect[]): number {
  return rects.reduce((a, q) => a + q.h * q.w, 0);
}

/** Runs every unit with at most `concurrency` in flight (crops are made just in time). */
async function runAll(
  runner: UnitRunner,
  units: UnitPlan[],
  jobOf: (u: UnitPlan) => UnitJob,
  done: (u: UnitPlan, r: UnitResult) => void,
  signal?: AbortSignal,
): Promise<void> {
  const limit = runner.concurrency; // a unit's crops are made when a worker is free: memory stays bounded
  let next = 0, failed: unknown = null;
  const inFlight = new Set<Promise<void>>();
  const aborted = signal ? abortPromise(signal) : null;
  try {
    while (next < units.length || inFlight.size > 0) {
      while (failed === null && next < units.length && inFlight.size < limit) {
        signal?.throwIfAborted();
        const u = units[next++];
        const p: Promise<void> = runner.run(jobOf(u), signal).then(
          (r) => {
            if (failed === null) done(u, r);
          },
          (err) => {
            if (failed === null) failed = err;
          },
        ).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      if (failed !== null) throw failed;
      if (inFlight.size === 0) break;
      await Promise.race(aborted ? [...inFlight, aborted.promise] : inFlight);
      if (failed !== null) throw failed;
    }
  } finally {
    aborted?.dispose();
  }
}

/** A promise that rejects with the signal's reason when it aborts. */
function abortPromise(signal: AbortSignal): { promise: Promise<never>; dispose: () => void } {
  let onAbort = () => {};
  const promise = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  promise.catch(() => {}); // observed through Promise.race
  return { promise, dispose: () => signal.removeEventListener("abort", onAbort) };
}

/**
 * The job of a unit: its plan plus crops of the image (8-bit at full size,
 * or float at the stage's size when `staged` holds the pre-resized image)
 * and of the mask; and its multiply-adds.
 */
export function unitJob(
  host: UnitContext,
  image: RgbImage,
  staged: Float32Array | null,
  mask: ProbPlane,
  geo: StageGeometry,
  u: UnitPlan,
  output: UnitOutput,
): { job: UnitJob; macs: number } {
  const steps = planUnit(host.net.graph, geo, u.queries);
  const input = unitInputSpan(steps);
  const full: [number, number] = [image.height, image.width];
  const span = imageSpanFor(full, geo.size, input);
  const job: UnitJob = {
    geo,
    window: u.window,
    queries: u.queries,
    output,
    image: staged ? { kind: "f32", data: crop(staged, geo.size[1], 3, input), span: input } : {
      kind: "u8",
      data: image.channels === 4
        ? cropRgb(bytesOf(image), image.width, span)
        : crop(bytesOf(image), image.width, 3, span),
      pixelBytes: 3,
      full,
      span,
    },
    mask: {
      data: mask.read({
        y0: input.r0,
        x0: input.c0,
        h: input.r1 - input.r0,
        w: input.c1 - input.c0,
      }),
      span: input,
    },
  };
  return { job, macs: steps.plan.macs };
}

/** The image's samples as a Uint8Array view (it may be a Uint8ClampedArray). */
function bytesOf(image: RgbImage): Uint8Array {
  const d = image.data;
  return d instanceof Uint8Array ? d : new Uint8Array(d.buffer, d.byteOffset, d.length);
}

/** Copies the query rectangles of a unit's result into the stage's plane. */
function paste(
  data: Float32Array | Uint8Array,
  u: UnitPlan,
  plane: Float32Array | Uint8Array,
  width: number,
): void {
  const offsets = queryOffsets(u.queries);
  u.queries.forEach((q, i) => {
    for (let y = 0; y < q.h; y++) {
      const from = offsets[i] + y * q.w;
      plane.set(data.subarray(from, from + q.w), (q.y0 + y) * width + q.x0);
    }
  });
}

class ProgressCounter {
  stage = 0;
  #done = 0;
  constructor(
    readonly report: ((p: Progress) => void) | undefined,
    readonly stages: number,
    readonly total: number,
  ) {}
  add(n: number): void {
    this.#done += n;
    this.report?.({ stage: this.stage, stages: this.stages, done: this.#done, total: this.total });
  }
}
