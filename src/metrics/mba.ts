/**
 * mBA: CascadePSP's mean boundary accuracy, with OpenCV-exact elliptical
 * morphology.
 *
 * The definition (identical in train/metrics.py): for a w x h image, with
 * R = (w + h) / 300, the radii are r_i = 1 + trunc((R - 1) / 5 * i), i = 0..4
 * (CascadePSP's formula, not linspace: the largest radius stays below R, and
 * all are 1 when R < 1). For each radius the boundary region is the
 * morphological gradient (dilation minus erosion) of the binary ground truth
 * with OpenCV's MORPH_ELLIPSE disk of size 2r+1, with OpenCV's default
 * borders (pixels outside the image never change a dilation or an erosion).
 * Accuracy = fraction of region pixels where prediction == ground truth,
 * 1 for an empty region; mBA = mean of the 5 accuracies.
 *
 * With ignored ground-truth pixels the region is dilate(fg | ignore) minus
 * erode(fg), ignored pixels removed: the pixels whose disk holds both a
 * possibly-foreground and a not-surely-foreground pixel. Without ignored
 * pixels it is the plain gradient.
 *
 * How it is computed fast. The disk is a union of horizontal segments, one
 * per row offset dy, of half-width hw_r(dy). A pixel p lies in the gradient
 * for radius r iff its disk reaches a pixel of the "other" class (for a
 * foreground pixel: a background or ignored one; for a background pixel: a
 * foreground or ignored one). With hd(q) = horizontal distance from q to the
 * nearest other-class pixel in q's row, p's disk reaches one iff some row
 * offset dy has hd(p + dy) <= hw_r(dy). The disks are nested (checked in the
 * tests), so each pixel has a smallest reaching radius, its *reach*, and the
 * region for radius r is {reach <= r}: all 5 radii come from one pass. The
 * reach is looked up in a table T[dy][hd] = smallest r whose row dy covers
 * horizontal distance hd, scanning dy outwards and stopping once dy exceeds
 * the best found; a vertical pre-pass skips pixels farther than the largest
 * radius from the other class. Cost: O(pixels) plus O(radius) per pixel near
 * the boundary, about 1 s for a 24 MP mask at radius 26 on one core.
 *
 * @module
 */

import type { Mask, MetricOptions } from "./mod.ts";
import { checkMask, checkPair, FG_THRESHOLD } from "./iou.ts";

/** Number of radii mBA averages over. */
export const MBA_STEPS = 5;

/** Boundary counts for one radius. */
export interface BoundaryCount {
  /** Disk radius in pixels (kernel size 2r+1). */
  radius: number;
  /** Pixels in the boundary region (ignored pixels excluded). */
  region: number;
  /** Region pixels where prediction and ground truth agree. */
  correct: number;
}

/** mBA of one image. */
export interface MbaResult {
  /** Mean of `accuracies`, in [0, 1]. */
  mba: number;
  /** The 5 radii ({@link mbaRadii}). */
  radii: number[];
  /** correct / region per radius; 1 for an empty region. */
  accuracies: number[];
  /** Raw counts per radius. */
  counts: BoundaryCount[];
}

/**
 * CascadePSP's radii for a w x h image: 1 + trunc((R - 1) / 5 * i), i = 0..4,
 * R = (w + h) / 300, in double precision in this order of operations.
 */
export function mbaRadii(width: number, height: number): number[] {
  const maxR = (width + height) / 300;
  const radii: number[] = [];
  for (let i = 0; i < MBA_STEPS; i++) radii.push(1 + Math.trunc((maxR - 1) / MBA_STEPS * i));
  return radii;
}

/** Round half to even, as OpenCV's cvRound (lrint) does for doubles. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * OpenCV's MORPH_ELLIPSE structuring element of size `size` x `size`
 * (cv::getStructuringElement), row-major, 1 inside. Reimplements its formula:
 * r = c = floor(size / 2); row i has dy = i - r and half-width
 * dx = cvRound(c * sqrt((r*r - dy*dy) / (r*r))), covering columns
 * [max(c - dx, 0), min(c + dx + 1, size)). Identical to OpenCV 4.6 for every
 * size tested (tests/fixtures/ellipse_kernels.json, and 1..1000 in
 * train/check_metrics.py).
 */
export function ellipseKernel(size: number): Uint8Array {
  if (!Number.isInteger(size) || size < 1) {
    throw new Error(`kernel size must be a positive integer, got ${size}`);
  }
  const r = Math.floor(size / 2), c = r;
  const invR2 = r > 0 ? 1 / (r * r) : 0;
  const k = new Uint8Array(size * size);
  for (let i = 0; i < size; i++) {
    const dy = i - r;
    if (Math.abs(dy) > r) continue;
    const dx = roundHalfEven(c * Math.sqrt((r * r - dy * dy) * invR2));
    const j1 = Math.max(c - dx, 0), j2 = Math.min(c + dx + 1, size);
    k.fill(1, i * size + j1, i * size + j2);
  }
  return k;
}

/**
 * Half-widths of the disk of radius r (kernel size 2r+1): element |dy| is the
 * number of pixels the row at offset dy extends left and right of the centre.
 * Same formula as {@link ellipseKernel}.
 */
export function ellipseHalfWidths(radius: number): Int32Array {
  if (!Number.isInteger(radius) || radius < 0) {
    throw new Error(`radius must be an integer >= 0, got ${radius}`);
  }
  const r = radius;
  const invR2 = r > 0 ? 1 / (r * r) : 0;
  const hw = new Int32Array(r + 1);
  for (let dy = 0; dy <= r; dy++) hw[dy] = roundHalfEven(r * Math.sqrt((r * r - dy * dy) * invR2));
  return hw;
}

// --------------------------------------------------------------------------
// reach: the smallest disk radius at which a pixel sees the other class

const BG = 0, FG = 1, IGNORED = 2;

type Dist = Uint8Array | Uint16Array;

/** Array type wide enough for values 0..cap. */
function distArray(n: number, cap: number): Dist {
  if (cap <= 0xff) return new Uint8Array(n);
  if (cap <= 0xffff) return new Uint16Array(n);
  throw new Error(`radius ${cap - 1} is too large`);
}

/**
 * T[dy * stride + h] = smallest r in 1..rMax whose disk row dy reaches
 * horizontal distance h, or cap = rMax + 1 when none does; stride = cap + 1
 * so that h = cap ("nothing in this row within rMax") is a valid index.
 */
function reachTable(rMax: number): { table: Uint16Array; stride: number } {
  const cap = rMax + 1, stride = cap + 1;
  const table = new Uint16Array((rMax + 1) * stride).fill(cap);
  const widths: Int32Array[] = [];
  for (let r = 0; r <= rMax; r++) widths.push(ellipseHalfWidths(r));
  for (let dy = 0; dy <= rMax; dy++) {
    let h = 0; // first horizontal distance not yet covered by a smaller radius
    for (let r = Math.max(dy, 1); r <= rMax; r++) {
      const hw = Math.min(widths[r][dy], rMax);
      while (h <= hw) table[dy * stride + h++] = r;
    }
  }
  return { table, stride };
}

/**
 * Per row, the horizontal distance (capped at `cap`) from each pixel to the
 * nearest "possibly foreground" pixel (class FG or IGNORED) in `toA`, and to
 * the nearest "not surely foreground" pixel (BG or IGNORED) in `toB`.
 */
function rowDistances(
  cls: Uint8Array,
  w: number,
  h: number,
  cap: number,
): { toA: Dist; toB: Dist } {
  const toA = distArray(cls.length, cap), toB = distArray(cls.length, cap);
  for (let y = 0; y < h; y++) {
    const o = y * w;
    let da = cap, db = cap;
    for (let x = 0; x < w; x++) {
      const c = cls[o + x];
      da = c !== BG ? 0 : Math.min(da + 1, cap);
      db = c !== FG ? 0 : Math.min(db + 1, cap);
      toA[o + x] = da;
      toB[o + x] = db;
    }
    da = cap, db = cap;
    for (let x = w - 1; x >= 0; x--) {
      const c = cls[o + x];
      da = c !== BG ? 0 : Math.min(da + 1, cap);
      db = c !== FG ? 0 : Math.min(db + 1, cap);
      if (da < toA[o + x]) toA[o + x] = da;
      if (db < toB[o + x]) toB[o + x] = db;
    }
  }
  return { toA, toB };
}

/**
 * For every FG pixel the smallest radius (<= rMax) whose disk holds a BG or
 * IGNORED pixel; for every BG pixel the smallest whose disk holds an FG or
 * IGNORED pixel; rMax + 1 when there is none, and for IGNORED pixels.
 * Only in-image pixels count, as with OpenCV's default morphology borders.
 */
function reachMap(cls: Uint8Array, w: number, h: number, rMax: number): Dist {
  const cap = rMax + 1;
  const { toA, toB } = rowDistances(cls, w, h, cap);
  const { table, stride } = reachTable(rMax);
  const reach = distArray(cls.length, cap).fill(cap);
  const FAR = -(cap + 1); // a row index more than rMax away from any row
  // top-down: mark (0) pixels with an other-class pixel within rMax
  // horizontally in some row at most rMax above
  const lastA = new Int32Array(w).fill(FAR), lastB = new Int32Array(w).fill(FAR);
  for (let y = 0; y < h; y++) {
    const o = y * w;
    for (let x = 0; x < w; x++) {
      const p = o + x;
      if (toA[p] <= rMax) lastA[x] = y;
      if (toB[p] <= rMax) lastB[x] = y;
      const c = cls[p];
      if ((c === FG && y - lastB[x] <= rMax) || (c === BG && y - lastA[x] <= rMax)) reach[p] = 0;
    }
  }
  // bottom-up: the same below, then the exact reach of each marked pixel
  const nextA = new Int32Array(w).fill(h + cap), nextB = new Int32Array(w).fill(h + cap);
  for (let y = h - 1; y >= 0; y--) {
    const o = y * w;
    for (let x = 0; x < w; x++) {
      const p = o + x;
      if (toA[p] <= rMax) nextA[x] = y;
      if (toB[p] <= rMax) nextB[x] = y;
      const c = cls[p];
      if (c === IGNORED) continue;
      const near = reach[p] === 0 || (c === FG ? nextB[x] - y <= rMax : nextA[x] - y <= rMax);
      if (!near) continue;
      const dist = c === FG ? toB : toA;
      // rows at offset dy can only give radii >= dy: stop once dy reaches the best
      let best = table[dist[p]];
      for (let dy = 1; dy < best; dy++) {
        const row = dy * stride;
        if (y >= dy) {
          const v = table[row + dist[p - dy * w]];
          if (v < best) best = v;
        }
        if (y + dy < h) {
          const v = table[row + dist[p + dy * w]];
          if (v < best) best = v;
        }
      }
      reach[p] = best;
    }
  }
  return reach;
}

/** Classes of the ground truth: FG (>= 128), BG, or IGNORED (== ignoreValue). */
function classify(gt: Mask, ignoreValue: number | undefined): Uint8Array {
  const g = gt.data, cls = new Uint8Array(g.length);
  const ignore = ignoreValue ?? -1;
  for (let i = 0; i < g.length; i++) {
    const v = g[i];
    cls[i] = v === ignore ? IGNORED : v >= FG_THRESHOLD ? FG : BG;
  }
  return cls;
}

// --------------------------------------------------------------------------
// public API

/**
 * Each BoundaryRegions' pixels: kept off the object so that its public shape
 * is plain fields (the hand-written declarations can state it exactly).
 */
const REGIONS = new WeakMap<
  BoundaryRegions,
  { gt: Uint8Array; cls: Uint8Array; reach: Dist }
>();

/**
 * The boundary regions of one ground truth at mBA's 5 radii (its pixels'
 * reach). Scoring a prediction computes them; make them once with
 * `new BoundaryRegions(gt, opts)` and pass them as `opts.regions` to score
 * several predictions against one ground truth (an evaluation's methods and
 * coarse kinds) for a fraction of the cost. They hold a reference to `gt`'s
 * pixels, which must not change afterwards.
 */
export class BoundaryRegions {
  /** ground-truth width in pixels */
  readonly width: number;
  /** ground-truth height in pixels */
  readonly height: number;
  /** the ignore value the regions were made with */
  readonly ignoreValue: number | undefined;
  /** the 5 radii */
  readonly radii: number[];

  /** Computes the regions of `gt` (ground-truth pixels equal to `opts.ignoreValue` in none). */
  constructor(gt: Mask, opts: MetricOptions = {}) {
    checkMask(gt, "ground truth");
    this.width = gt.width;
    this.height = gt.height;
    this.ignoreValue = opts.ignoreValue;
    this.radii = mbaRadii(gt.width, gt.height);
    const cls = classify(gt, opts.ignoreValue);
    const reach = reachMap(cls, gt.width, gt.height, this.radii[this.radii.length - 1]);
    REGIONS.set(this, { gt: gt.data, cls, reach });
  }

  /** Whether these are the regions of `gt` (the same pixels) with `ignoreValue`. */
  isFor(gt: Mask, ignoreValue: number | undefined): boolean {
    return gt.data === REGIONS.get(this)!.gt && gt.width === this.width &&
      gt.height === this.height &&
      ignoreValue === this.ignoreValue;
  }

  /** Region size and agreement of `pred` (binarised at 128) for each radius. */
  counts(pred: Mask): BoundaryCount[] {
    checkMask(pred, "prediction");
    if (pred.width !== this.width || pred.height !== this.height) {
      throw new Error(
        `prediction is ${pred.width}x${pred.height}, ground truth ${this.width}x${this.height}`,
      );
    }
    const { cls, reach } = REGIONS.get(this)!, rMax = this.radii[this.radii.length - 1];
    // histogram by reach; region(r) is the cumulative count up to r
    const region = new Float64Array(rMax + 1), correct = new Float64Array(rMax + 1);
    const p = pred.data;
    for (let i = 0; i < cls.length; i++) {
      const r = reach[i];
      if (r > rMax) continue; // also every ignored pixel
      region[r]++;
      if ((p[i] >= FG_THRESHOLD) === (cls[i] === FG)) correct[r]++;
    }
    for (let r = 1; r <= rMax; r++) {
      region[r] += region[r - 1];
      correct[r] += correct[r - 1];
    }
    return this.radii.map((r) => ({ radius: r, region: region[r], correct: correct[r] }));
  }
}

/**
 * Boundary-region size and agreement for each of the 5 mBA radii of `gt`.
 * Both masks are binarised at 128; ground-truth pixels equal to
 * `opts.ignoreValue` are in no region. `opts.regions`, when given, must be
 * this `gt`'s (with the same ignore value).
 */
export function boundaryCounts(pred: Mask, gt: Mask, opts: MetricOptions = {}): BoundaryCount[] {
  checkPair(pred, gt, opts);
  const regions = opts.regions;
  if (regions && !regions.isFor(gt, opts.ignoreValue)) {
    throw new Error(
      "opts.regions belong to another ground truth or ignore value: make them with " +
        "new BoundaryRegions(gt, opts) for this ground truth",
    );
  }
  return (regions ?? new BoundaryRegions(gt, opts)).counts(pred);
}

/**
 * Mean boundary accuracy of `pred` against `gt`, in [0, 1], as CascadePSP
 * defines it (see the module doc), with ignored pixels excluded.
 */
export function mba(pred: Mask, gt: Mask, opts: MetricOptions = {}): MbaResult {
  const counts = boundaryCounts(pred, gt, opts);
  const accuracies = counts.map((c) => (c.region === 0 ? 1 : c.correct / c.region));
  let sum = 0;
  for (const a of accuracies) sum += a; // left to right, as train/metrics.py
  return { mba: sum / accuracies.length, radii: counts.map((c) => c.radius), accuracies, counts };
}

/** Binary mask (>= 128) -> classes FG / BG. */
function binaryClasses(mask: Mask): Uint8Array {
  checkMask(mask, "mask");
  return classify(mask, undefined);
}

/**
 * Dilation of the binarised mask by OpenCV's elliptical disk of the given
 * radius (kernel size 2r+1), pixels outside the image counting as background
 * (cv2.dilate's default border). Returns a 0/255 mask.
 */
export function dilate(mask: Mask, radius: number): Mask {
  if (!Number.isInteger(radius) || radius < 0) {
    throw new Error(`radius must be an integer >= 0, got ${radius}`);
  }
  const cls = binaryClasses(mask);
  const reach = reachMap(cls, mask.width, mask.height, radius);
  const out = new Uint8Array(cls.length);
  for (let i = 0; i < cls.length; i++) out[i] = cls[i] === FG || reach[i] <= radius ? 255 : 0;
  return { width: mask.width, height: mask.height, data: out };
}

/**
 * Erosion of the binarised mask by OpenCV's elliptical disk of the given
 * radius, pixels outside the image counting as foreground (cv2.erode's
 * default border). Returns a 0/255 mask.
 */
export function erode(mask: Mask, radius: number): Mask {
  if (!Number.isInteger(radius) || radius < 0) {
    throw new Error(`radius must be an integer >= 0, got ${radius}`);
  }
  const cls = binaryClasses(mask);
  const reach = reachMap(cls, mask.width, mask.height, radius);
  const out = new Uint8Array(cls.length);
  for (let i = 0; i < cls.length; i++) out[i] = cls[i] === FG && reach[i] > radius ? 255 : 0;
  return { width: mask.width, height: mask.height, data: out };
}
