/**
 * Segmentation metrics: IoU and mBA (CascadePSP's mean boundary accuracy).
 *
 * These are the same definitions as train/metrics.py (the OpenCV reference),
 * checked against it to 1e-6 in tests/metrics_test.ts. The conventions:
 *
 * - **Binarisation.** An 8-bit mask is foreground where value >= 128. This is
 *   the 0.5 probability threshold: v >= 128 <=> v/255 >= 0.5, and an output
 *   quantised as round(255 p) is >= 128 exactly when p >= 0.5.
 * - **Ignore.** Ground-truth pixels equal to `ignoreValue` (GrabCut: 128) count
 *   for neither metric; the test comes before binarisation.
 * - **IoU.** Per image, intersection / union over non-ignored pixels; an empty
 *   union (both masks empty) is IoU 1. {@link MaskStats} gives the dataset IoU
 *   (summed intersections / summed unions) and the per-image mean. The rest of
 *   the union splits into `missed` (ground-truth foreground left out) and
 *   `extra` (foreground added outside it), which tells the direction of an error.
 * - **mBA.** Radii r_i = 1 + trunc((R - 1) / 5 * i), i = 0..4, R = (w + h) / 300
 *   (CascadePSP's formula); boundary region = morphological gradient of the
 *   ground truth with OpenCV's MORPH_ELLIPSE disk of size 2r+1; accuracy =
 *   fraction of region pixels where prediction == ground truth (1 for an empty
 *   region); mBA = mean over the 5 radii, in [0, 1].
 *
 * @module
 */

import { iou, type IouResult } from "./iou.ts";
import { type BoundaryRegions, mba, type MbaResult } from "./mba.ts";

/** The masks the metrics compare: crispmask's 8-bit `Mask` (foreground where >= 128). */
export type { Mask } from "../types.ts";
import type { Mask } from "../types.ts";

/** Options shared by the metrics. */
export interface MetricOptions {
  /**
   * Ground-truth value whose pixels count for neither metric (GrabCut: 128).
   * Omit when the ground truth has no ignore band.
   */
  ignoreValue?: number;
  /**
   * The ground truth's boundary regions, made once with `new
   * BoundaryRegions(gt, { ignoreValue })` to score several predictions
   * against one ground truth faster (mBA only; same results).
   */
  regions?: BoundaryRegions;
}

export { FG_THRESHOLD, iou, iouFromCounts, type IouResult } from "./iou.ts";
export {
  type BoundaryCount,
  boundaryCounts,
  BoundaryRegions,
  dilate,
  ellipseHalfWidths,
  ellipseKernel,
  erode,
  mba,
  mbaRadii,
  type MbaResult,
} from "./mba.ts";

/** One image's figures, as recorded by {@link MaskStats.add}. */
export interface ImageStats {
  /** Caller's label for the image (file name), or "". */
  name: string;
  /** IoU counts and ratio. */
  iou: IouResult;
  /** Boundary accuracy per radius and their mean. */
  mba: MbaResult;
}

/**
 * Accumulates images into the dataset figures the evaluation reports:
 * dataset IoU (sum of intersections / sum of unions, as CRM and CascadePSP
 * report it), mean per-image IoU, and mean per-image mBA.
 */
export class MaskStats {
  /** Per-image figures in the order added. */
  readonly images: ImageStats[] = [];
  /** Summed intersections over all images. */
  intersection = 0;
  /** Summed unions over all images. */
  union = 0;

  /** Scores one prediction against its ground truth and records it. */
  add(pred: Mask, gt: Mask, opts: MetricOptions = {}, name = ""): ImageStats {
    const row = { name, iou: iou(pred, gt, opts), mba: mba(pred, gt, opts) };
    this.intersection += row.iou.intersection;
    this.union += row.iou.union;
    this.images.push(row);
    return row;
  }

  /** Number of images added. */
  get count(): number {
    return this.images.length;
  }

  /** Summed intersections / summed unions; 1 when every union was empty. */
  get datasetIou(): number {
    return this.union === 0 ? 1 : this.intersection / this.union;
  }

  /** Mean of per-image IoU; NaN before any image. */
  get meanIou(): number {
    return meanOf(this.images.map((r) => r.iou.iou));
  }

  /** Mean of per-image mBA in [0, 1]; NaN before any image. */
  get meanMba(): number {
    return meanOf(this.images.map((r) => r.mba.mba));
  }
}

/** Plain left-to-right mean (the order train/metrics.py uses too); NaN when empty. */
export function meanOf(xs: number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return xs.length === 0 ? NaN : s / xs.length;
}
