/**
 * Intersection over union of a binarised prediction and ground truth.
 *
 * @module
 */

import type { Mask, MetricOptions } from "./mod.ts";

/** 8-bit foreground threshold: a pixel is foreground where value >= 128 (p >= 0.5). */
export const FG_THRESHOLD = 128;

/** IoU of one image. */
export interface IouResult {
  /** Pixels foreground in both (ignored pixels excluded). */
  intersection: number;
  /** Pixels foreground in either (ignored pixels excluded). */
  union: number;
  /** Ground-truth foreground the prediction left out (in the union, not the intersection). */
  missed: number;
  /** Prediction foreground outside the ground truth; missed + extra = union - intersection. */
  extra: number;
  /** intersection / union, or 1 when the union is empty (both masks empty). */
  iou: number;
}

/** intersection / union, with 1 for an empty union: two empty masks agree perfectly. */
export function iouFromCounts(intersection: number, union: number): number {
  return union === 0 ? 1 : intersection / union;
}

/**
 * IoU of `pred` against `gt`, both binarised at 128; ground-truth pixels equal
 * to `opts.ignoreValue` count for neither the intersection nor the union.
 * Throws when the masks are malformed or differ in size.
 */
export function iou(pred: Mask, gt: Mask, opts: MetricOptions = {}): IouResult {
  checkPair(pred, gt, opts);
  const p = pred.data, g = gt.data;
  const ignore = opts.ignoreValue ?? -1; // -1 never equals a byte
  let inter = 0, missed = 0, extra = 0;
  for (let i = 0; i < g.length; i++) {
    const gv = g[i];
    if (gv === ignore) continue;
    const pf = p[i] >= FG_THRESHOLD, gf = gv >= FG_THRESHOLD;
    if (pf && gf) inter++;
    else if (gf) missed++;
    else if (pf) extra++;
  }
  const union = inter + missed + extra;
  return { intersection: inter, union, missed, extra, iou: iouFromCounts(inter, union) };
}

/** Throws a clear error unless `m` is a well-formed Mask. */
export function checkMask(m: Mask, what: string): void {
  const { width, height, data } = m;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new Error(`${what}: width and height must be positive integers, got ${width}x${height}`);
  }
  if (!(data instanceof Uint8Array)) throw new Error(`${what}: data must be a Uint8Array`);
  if (data.length !== width * height) {
    throw new Error(
      `${what}: data has ${data.length} bytes, expected ${width}x${height} = ${width * height}`,
    );
  }
}

/** Validates a prediction / ground-truth pair and the options. */
export function checkPair(pred: Mask, gt: Mask, opts: MetricOptions): void {
  checkMask(pred, "prediction");
  checkMask(gt, "ground truth");
  if (pred.width !== gt.width || pred.height !== gt.height) {
    throw new Error(
      `prediction ${pred.width}x${pred.height} and ground truth ${gt.width}x${gt.height} differ in size`,
    );
  }
  const iv = opts.ignoreValue;
  if (iv !== undefined && !(Number.isInteger(iv) && iv >= 0 && iv <= 255)) {
    throw new Error(`ignoreValue must be an integer in 0..255, got ${iv}`);
  }
}
