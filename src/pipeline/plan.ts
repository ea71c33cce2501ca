/**
 * The one place that plans the work of a stage: row strips (dense), boundary
 * tiles (sparse) and how tiles group into work units.
 *
 * A unit is a window of the stage's target (query) grid plus the rectangles
 * in it to query. Its encoder input is derived from the window by the
 * encoder-window planner (src/pipeline/encoder_window.ts), which gives the
 * exact halo layer by layer, the unit's memory and its work. Results never
 * depend on how the work is cut into units (every queried pixel gets
 * exactly its whole-image value), so the cutting may depend on the worker
 * count and the memory budget freely.
 *
 * @module
 */

import type { ModelConfig } from "../weights/model_config.ts";
import type { EncoderGraph } from "../model/graph.ts";
import { tensorSizes } from "../model/graph.ts";
import { supportCells } from "../engine/kernels/cam.ts";
import { requiredSpans, type Span, spanMacs } from "./encoder_window.ts";
import { type ProbPlane, RUN, type TileMap } from "./planes.ts";

export type { TileMap };
import { planUnit, unitBytes } from "./unit.ts";

/** A rectangle of a grid: rows [y0, y0 + h), columns [x0, x0 + w). */
export interface Rect {
  y0: number;
  x0: number;
  h: number;
  w: number;
}

/** One stage's geometry: the encoder size and the grid it is queried on. */
export interface StageGeometry {
  /** encoder (input) size [h, w] */
  size: [number, number];
  /** query (target) size [h, w] */
  target: [number, number];
  /** the full image's size [h, w] (the encoder input is area-resized from it) */
  full: [number, number];
}

/** A unit of work: a target window and the rectangles of it to query. */
export interface UnitPlan {
  window: Rect;
  /** disjoint rectangles inside `window` whose logits are computed */
  queries: Rect[];
}

/**
 * Receptive radius, in encoder input pixels, of one latent cell plus the
 * CAM's neighbouring cell: train/model.py's `receptive_radius`, term for
 * term. The exact per-layer halo comes from the encoder-window planner; this
 * is the bound it never exceeds (checked in tests), and the figure to quote.
 */
export function receptiveRadius(cfg: Pick<ModelConfig, "stages">): number {
  let r = 3, jump = 2; // stem 7x7 stride 2
  r += jump; // max-pool 3x3 stride 2
  jump *= 2;
  for (const st of cfg.stages) {
    for (let b = 0; b < st.blocks; b++) {
      const s = b === 0 ? st.stride : 1;
      r += st.dilation * jump; // conv1 3x3
      jump *= s;
      r += st.dilation * jump; // conv2 3x3
    }
  }
  r += jump; // bilinear upsampling of the stride-4/8 maps reads one neighbour each way
  r += 2; // fuse 3x3 at stride 2
  r += 2; // CAM reads the neighbouring latent cell
  return r;
}

/**
 * Relative cost of a unit, in seconds of one core: encoder multiply-adds at
 * 18.5 G/s and implicit-function pixels at 2.4 M/s (the relaxed-SIMD kernels'
 * rates, bench/README.md). Only ratios matter: it balances work across workers.
 */
export function unitSeconds(macs: number, queried: number): number {
  return macs / 18.5e9 + queried / 2.4e6;
}

/** Multiply-adds of a unit's encoder (every row once), without planning its steps. */
export function unitMacs(graph: EncoderGraph, geo: StageGeometry, rects: readonly Rect[]): number {
  const grids = tensorSizes(graph, geo.size[0], geo.size[1]);
  const [hf, wf] = grids.get(graph.output)!;
  const [Ht, Wt] = geo.target;
  let span: Span | null = null;
  for (const q of rects) {
    const [r0, r1] = supportCells(Ht, hf, q.y0, q.h), [c0, c1] = supportCells(Wt, wf, q.x0, q.w);
    span = span
      ? {
        r0: Math.min(span.r0, r0),
        r1: Math.max(span.r1, r1),
        c0: Math.min(span.c0, c0),
        c1: Math.max(span.c1, c1),
      }
      : { r0, r1, c0, c1 };
  }
  return spanMacs(graph, requiredSpans(graph, grids, span!));
}

/** The longest worker's load when `times` go, largest first, to the least loaded of `workers`. */
export function makespan(times: readonly number[], workers: number): number {
  const load = new Array(Math.max(1, workers)).fill(0);
  for (const t of [...times].sort((a, b) => b - a)) {
    let k = 0;
    for (let i = 1; i < load.length; i++) if (load[i] < load[k]) k = i;
    load[k] += t;
  }
  return Math.max(...load);
}

/** Bytes and multiply-adds of a unit: its streamed encoder plan plus per-step staging. */
export function unitCost(
  graph: EncoderGraph,
  geo: StageGeometry,
  rects: readonly Rect[],
  window: Rect = rects.reduce(bounding),
): { bytes: number; macs: number } {
  const steps = planUnit(graph, geo, rects);
  return { bytes: unitBytes(steps, window, geo.full, 4), macs: steps.plan.macs };
}

/** Options of the strip planner. */
export interface StripOptions {
  /** target rows per strip (default: the count that finishes soonest on `workers`) */
  rows?: number;
  /** memory of one unit, bytes: wider strips are cut into columns */
  budgetBytes: number;
  /** workers that share the strips */
  workers: number;
}

/**
 * Strips of the target grid (dense work). A unit streams its rows, so its
 * memory grows with its width, not its height: the height is cut only for
 * parallelism, into the number of strips (1, or 1-4 per worker) that
 * finishes soonest, each cut costing one halo of recomputation; the width
 * only when one strip of the full width exceeds the budget.
 */
export function planStrips(
  graph: EncoderGraph,
  geo: StageGeometry,
  opts: StripOptions,
): UnitPlan[] {
  const [Ht, Wt] = geo.target;
  let rows = opts.rows ?? Ht;
  if (opts.rows === undefined) {
    let best = Infinity;
    for (
      const n of new Set([1, opts.workers, 2 * opts.workers, 3 * opts.workers, 4 * opts.workers])
    ) {
      if (n > 1 && Ht / n < 32) continue;
      const h = Math.ceil(Ht / n);
      const times = strips(Ht, Wt, h, Wt).map((w) =>
        unitSeconds(unitMacs(graph, geo, [w]), w.h * w.w)
      );
      const t = makespan(times, opts.workers);
      if (t < best * 0.98) [best, rows] = [t, h];
    }
  }
  let pieces = 1;
  const probe = (w: number) =>
    unitCost(graph, geo, [{ y0: 0, x0: 0, h: Math.min(rows, Ht), w }]).bytes;
  while (Wt / pieces > 256 && probe(Math.ceil(Wt / pieces)) > opts.budgetBytes) pieces++;
  return strips(Ht, Wt, rows, Math.ceil(Wt / pieces)).map((win) => ({
    window: win,
    queries: [win],
  }));
}

/** The grid cut into rectangles of `rows` x `cols` (the last ones smaller). */
function strips(Ht: number, Wt: number, rows: number, cols: number): Rect[] {
  const out: Rect[] = [];
  for (let y0 = 0; y0 < Ht; y0 += rows) {
    for (let x0 = 0; x0 < Wt; x0 += cols) {
      out.push({ y0, x0, h: Math.min(rows, Ht - y0), w: Math.min(cols, Wt - x0) });
    }
  }
  return out;
}

// --------------------------------------------------------------------------
// boundary-band sparsity

/** How confident pixels are told from the boundary band. */
export interface SparsityOptions {
  /** tile side in target pixels (default 64) */
  tile: number;
  /** a pixel is confident below `low` or above `high` (defaults 0.02, 0.98) */
  low: number;
  high: number;
  /** margin around each tile, in pixels of the previous prediction's grid (default 8) */
  margin: number;
  /**
   * the margin at the first stage (default 16), where the "previous
   * prediction" is the coarse mask: its errors are wider than a stage's, so
   * tiles run farther from its contour
   */
  firstMargin: number;
  /**
   * when the tiles that run would cost at least this fraction of computing the
   * whole stage (most of the image near the boundary), the stage runs dense
   * instead (default 0.9; Infinity never)
   */
  denseAbove: number;
}

/** Default sparsity settings. */
export const SPARSITY: SparsityOptions = {
  tile: 64,
  low: 0.02,
  high: 0.98,
  margin: 8,
  firstMargin: 16,
  denseAbove: 0.9,
};

/** The sparsity settings of stage `stage` (0 first): the first stage uses `firstMargin`. */
export function stageSparsity(
  opts: Partial<SparsityOptions> | undefined,
  stage: number,
): SparsityOptions {
  const all = { ...SPARSITY, ...opts };
  return stage === 0 ? { ...all, margin: all.firstMargin } : all;
}

/**
 * Marks the target tiles that must run the network. `prob` is the previous
 * stage's probability on the stage's encoder grid (`size`), from which the
 * skipped tiles' output is upsampled. A tile is skipped when every
 * probability in its footprint on that grid, widened by `margin`, is below
 * `low` (LOW), or every one is above `high` (HIGH): the upsampled prediction,
 * a convex combination of those values, is then confidently 0 (or 1) on
 * the whole tile and far from any uncertain pixel. A tile that sees both
 * classes runs (their contour crosses it).
 */
export function planTiles(
  prob: ProbPlane,
  geo: StageGeometry,
  opts: Pick<SparsityOptions, "tile" | "low" | "high" | "margin">,
): TileMap {
  const [Hs, Ws] = geo.size, [Ht, Wt] = geo.target;
  const T = opts.tile;
  const rows = Math.ceil(Ht / T), cols = Math.ceil(Wt / T);
  const colRange = Array.from(
    { length: cols },
    (_, j) => footprint(j * T, Math.min(Wt, (j + 1) * T), Wt, Ws, opts.margin),
  );
  const state = new Uint8Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const [r0, r1] = footprint(i * T, Math.min(Ht, (i + 1) * T), Ht, Hs, opts.margin);
    for (let j = 0; j < cols; j++) {
      const [c0, c1] = colRange[j];
      state[i * cols + j] = prob.classify(
        { y0: r0, x0: c0, h: r1 - r0, w: c1 - c0 },
        opts.low,
        opts.high,
      );
    }
  }
  return { tile: T, rows, cols, state };
}

/** Source pixels [first, end) of target pixels [t0, t1) (nTarget over nSource), widened by `margin`. */
function footprint(
  t0: number,
  t1: number,
  nTarget: number,
  nSource: number,
  margin: number,
): [number, number] {
  const a = Math.floor((t0 * nSource) / nTarget) - margin;
  const b = Math.ceil((t1 * nSource) / nTarget) + margin;
  return [Math.max(0, a), Math.min(nSource, b)];
}

/** Target rectangles of the runs of tiles that run (`"run"`) or are skipped (`"skip"`), per tile row. */
export function tileRuns(map: TileMap, geo: StageGeometry, want: "run" | "skip"): Rect[] {
  const [Ht, Wt] = geo.target;
  const match = (k: number) => (map.state[k] === RUN) === (want === "run");
  const out: Rect[] = [];
  for (let i = 0; i < map.rows; i++) {
    let j = 0;
    while (j < map.cols) {
      if (!match(i * map.cols + j)) {
        j++;
        continue;
      }
      const start = j;
      while (j < map.cols && match(i * map.cols + j)) j++;
      out.push(tileRect(map, Ht, Wt, i, start, j));
    }
  }
  return out;
}

function tileRect(map: TileMap, Ht: number, Wt: number, row: number, c0: number, c1: number): Rect {
  const T = map.tile;
  const y0 = row * T, x0 = c0 * T;
  return { y0, x0, h: Math.min(Ht, y0 + T) - y0, w: Math.min(Wt, c1 * T) - x0 };
}

/**
 * Groups the active tiles into units. Runs of active tiles in a tile row
 * start as units; a unit then absorbs the next run (across skipped tiles, in
 * the same tile row or the row below) when one encoder window over both
 * costs no more multiply-adds than two (their halos overlap more than the
 * gap costs) and still fits the memory budget. Units are then split by tile
 * rows while that shortens the estimated time on `workers`. Returns the
 * units and their estimated work before that split (`seconds`, independent
 * of the worker count). Only the active tiles are queried;
 * skipped tiles inside a unit's window only feed the encoder.
 */
export function planSparseUnits(
  graph: EncoderGraph,
  geo: StageGeometry,
  map: TileMap,
  budgetBytes: number,
  workers = 1,
): { units: UnitPlan[]; seconds: number } {
  const macs = (rects: Rect[]) => unitMacs(graph, geo, rects);
  const out: Group[] = [];
  let open: Group[] = []; // units that reach the previous or the current tile row
  for (const run of tileRuns(map, geo, "run")) {
    open = open.filter((u) => u.box.y0 + u.box.h >= run.y0);
    const own = macs([run]);
    // the candidate that saves the most work; its memory is checked last (planning it costs more)
    const gains = open
      .map((u) => ({ u, merged: macs([...u.queries, run]) }))
      .map(({ u, merged }) => ({ u, merged, gain: u.macs + own - merged }))
      .filter((c) => c.gain >= 0)
      .sort((a, b) => b.gain - a.gain);
    const best = gains.find((c) =>
      unitCost(graph, geo, [...c.u.queries, run]).bytes <= budgetBytes
    );
    if (best) {
      best.u.queries.push(run);
      best.u.box = bounding(best.u.box, run);
      best.u.macs = best.merged;
      continue;
    }
    const bytes = unitCost(graph, geo, [run]).bytes;
    const pieces = bytes <= budgetBytes
      ? [run]
      : splitRun(run, map.tile, Math.ceil(bytes / budgetBytes));
    for (const piece of pieces) {
      const u = { queries: [piece], box: piece, macs: pieces.length > 1 ? macs([piece]) : own };
      out.push(u);
      open.push(u);
    }
  }
  // the work before balancing: it does not depend on the worker count
  const seconds = out.reduce(
    (a, u) => a + unitSeconds(u.macs, u.queries.reduce((b, q) => b + q.h * q.w, 0)),
    0,
  );
  balance(graph, geo, out, workers);
  return { units: out.map((u) => ({ window: u.box, queries: u.queries })), seconds };
}

/** Estimated work of the whole stage computed densely (as one unit), seconds of one core. */
export function denseSeconds(graph: EncoderGraph, geo: StageGeometry): number {
  const [Ht, Wt] = geo.target;
  return unitSeconds(unitMacs(graph, geo, [{ y0: 0, x0: 0, h: Ht, w: Wt }]), Ht * Wt);
}

interface Group {
  queries: Rect[];
  box: Rect;
  macs: number;
}

/**
 * Splits the costliest group by rows of queries while that shortens the
 * estimated time on `workers` (a split recomputes one halo, but lets another
 * worker share the work).
 */
function balance(graph: EncoderGraph, geo: StageGeometry, groups: Group[], workers: number): void {
  const time = (g: Group) => unitSeconds(g.macs, g.queries.reduce((a, q) => a + q.h * q.w, 0));
  for (let guard = 0; guard < 8 * workers; guard++) {
    groups.sort((a, b) => time(b) - time(a));
    const big = groups[0];
    const rows = big ? [...new Set(big.queries.map((q) => q.y0))].sort((a, b) => a - b) : [];
    if (rows.length < 2) return;
    const cut = rows[rows.length >> 1];
    const parts = [big.queries.filter((q) => q.y0 < cut), big.queries.filter((q) => q.y0 >= cut)]
      .map((qs) => ({ queries: qs, box: qs.reduce(bounding), macs: unitMacs(graph, geo, qs) }));
    const before = makespan(groups.map(time), workers);
    const after = makespan([...groups.slice(1), ...parts].map(time), workers);
    if (after >= before * 0.98) return;
    groups.splice(0, 1, ...parts);
  }
}

/** A run cut into `n` pieces of whole tiles. */
function splitRun(run: Rect, tile: number, n: number): Rect[] {
  const tiles = Math.ceil(run.w / tile);
  const per = Math.ceil(tiles / Math.min(n, tiles));
  const out: Rect[] = [];
  for (let t = 0; t < tiles; t += per) {
    const x0 = run.x0 + t * tile;
    out.push({ y0: run.y0, x0, h: run.h, w: Math.min(run.x0 + run.w, x0 + per * tile) - x0 });
  }
  return out;
}

/** The bounding rectangle of two rectangles. */
export function bounding(a: Rect, b: Rect): Rect {
  const y0 = Math.min(a.y0, b.y0), x0 = Math.min(a.x0, b.x0);
  const y1 = Math.max(a.y0 + a.h, b.y0 + b.h), x1 = Math.max(a.x0 + a.w, b.x0 + b.w);
  return { y0, x0, h: y1 - y0, w: x1 - x0 };
}
