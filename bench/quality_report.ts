/**
 * The quality benchmark's figures and their presentation: one result row per
 * (set, coarse kind, method) from the metrics' {@link MaskStats}, the
 * markdown table, and the list of skipped files. Field names follow
 * train/evaluate.py's results.json, so both outputs can be compared.
 *
 * @module
 */

import { type IouResult, type MaskStats, meanOf } from "../src/metrics/mod.ts";
import type { Skipped } from "./quality_data.ts";

/**
 * The methods compared: the coarse input, the guided filter, crispmask sparse
 * and dense, and sparse with test-time flipping (`RefineOptions.flip`).
 */
export const METHODS = ["coarse", "guided", "sparse", "dense", "flip"] as const;
/** One of {@link METHODS}. */
export type Method = typeof METHODS[number];

/** "Made worse": IoU more than 2 points below the coarse mask's. */
export const IOU_DROP = 0.02;

/** One image's figures for one method. */
export interface ImageRow {
  name: string;
  iou: number;
  /** ground-truth foreground left out, as a share of the union (iou + missed + extra = 1) */
  missed: number;
  /** foreground outside the ground truth, as a share of the union */
  extra: number;
  mba: number;
  /** wall seconds of the method on this image (0 for the coarse input) */
  seconds: number;
}

/** The figures of one method on one set and coarse kind. */
export interface ResultRow {
  set: string;
  kind: string;
  /** "file" (a coarse-<kind> folder) or "synthetic" */
  coarse_source: string;
  method: Method;
  images: number;
  /** summed intersections / summed unions, in [0, 1] */
  dataset_iou: number;
  /** mean of per-image IoU, in [0, 1] */
  mean_iou: number;
  /**
   * The IoU lost, split by direction: mean per-image share of the union that is
   * missed foreground, and that is extra foreground (mean_iou + missed + extra = 1).
   * It tells a refiner that shrinks objects from one that spills over.
   */
  missed: number;
  extra: number;
  /** mean of per-image mBA, in [0, 1] */
  mba: number;
  /** the coarse masks' mean mBA on the same images */
  mba_coarse: number;
  /** (mBA - mBA_coarse) / (1 - mBA_coarse); null when the coarse mBA is 1 */
  boundary_error_removed: number | null;
  /** images whose IoU fell by more than {@link IOU_DROP} against the coarse mask */
  iou_drops: number;
  iou_drop_images: string[];
  /** mean wall seconds per image (null for the coarse input) */
  seconds_per_image: number | null;
  per_image: ImageRow[];
}

/**
 * The share of the coarse mask's boundary error that a method removed:
 * (mBA - mBA_coarse) / (1 - mBA_coarse); negative when it added error.
 */
export function boundaryErrorRemoved(mba: number, mbaCoarse: number): number | null {
  return mbaCoarse >= 1 ? null : (mba - mbaCoarse) / (1 - mbaCoarse);
}

/** The result row of `stats` (one method) against `coarse` (the coarse masks of the same images). */
export function resultRow(
  key: { set: string; kind: string; source: string; method: Method },
  stats: MaskStats,
  seconds: number[],
  coarse: MaskStats,
): ResultRow {
  const coarseIou = new Map(coarse.images.map((r) => [r.name, r.iou.iou]));
  const coarseMba = new Map(coarse.images.map((r) => [r.name, r.mba.mba]));
  const drops = stats.images.filter((r) =>
    r.iou.iou < (coarseIou.get(r.name) ?? -Infinity) - IOU_DROP
  );
  // the reference mBA over exactly the images this method scored
  let refSum = 0;
  for (const r of stats.images) refSum += coarseMba.get(r.name) ?? NaN;
  const mbaCoarse = refSum / stats.count;
  const total = seconds.reduce((a, b) => a + b, 0);
  const perImage = stats.images.map((r, i) => ({
    name: r.name,
    iou: r.iou.iou,
    ...iouLost(r.iou),
    mba: r.mba.mba,
    seconds: seconds[i] ?? 0,
  }));
  return {
    set: key.set,
    kind: key.kind,
    coarse_source: key.source,
    method: key.method,
    images: stats.count,
    dataset_iou: stats.datasetIou,
    mean_iou: stats.meanIou,
    missed: meanOf(perImage.map((r) => r.missed)),
    extra: meanOf(perImage.map((r) => r.extra)),
    mba: stats.meanMba,
    mba_coarse: mbaCoarse,
    boundary_error_removed: boundaryErrorRemoved(stats.meanMba, mbaCoarse),
    iou_drops: drops.length,
    iou_drop_images: drops.map((r) => r.name),
    seconds_per_image: key.method === "coarse" ? null : total / stats.count,
    per_image: perImage,
  };
}

/** 1 - IoU split into missed and extra foreground, as shares of the union (0 and 0 for an empty union). */
function iouLost(r: IouResult): { missed: number; extra: number } {
  return r.union === 0
    ? { missed: 0, extra: 0 }
    : { missed: r.missed / r.union, extra: r.extra / r.union };
}

const pct = (x: number) => (100 * x).toFixed(2);

/** The markdown table of the rows (figures in percent). */
export function formatTable(rows: ResultRow[]): string {
  const lines = [
    "| set | kind | method | images | IoU (dataset) | mean IoU | mBA | boundary error removed | IoU drops > 2 pt | IoU lost: missed / extra | s/image |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    const isCoarse = r.method === "coarse";
    const ber = isCoarse || r.boundary_error_removed === null
      ? "—"
      : `${(100 * r.boundary_error_removed).toFixed(1)}%`;
    const drops = isCoarse ? "—" : String(r.iou_drops);
    const secs = r.seconds_per_image === null ? "—" : r.seconds_per_image.toFixed(2);
    const kind = r.coarse_source === "synthetic" ? `${r.kind}*` : r.kind;
    lines.push(
      `| ${r.set} | ${kind} | ${r.method} | ${r.images} | ${pct(r.dataset_iou)} | ${
        pct(r.mean_iou)
      } | ${pct(r.mba)} | ${ber} | ${drops} | ${pct(r.missed)} / ${pct(r.extra)} | ${secs} |`,
    );
  }
  return lines.join("\n");
}

/** The skipped files as a markdown list ("" when nothing was skipped). */
export function formatSkipped(skipped: Skipped[]): string {
  if (skipped.length === 0) return "";
  const lines = [`Skipped (${skipped.length}):`, ""];
  for (const s of skipped) {
    const scope = [s.kind && `kind ${s.kind}`, s.method && `method ${s.method}`].filter(Boolean)
      .join(", ");
    lines.push(`- ${s.set}: ${s.file}${scope ? ` (${scope})` : ""}: ${s.reason}`);
  }
  return lines.join("\n");
}
