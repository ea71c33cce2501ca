/**
 * Deterministic synthetic coarse masks for evaluation, the TypeScript twin of
 * train/coarse_eval.py. The evaluation sets ship one real coarse kind
 * (`coarse-isnet`); these kinds are made from the ground truth when a set has
 * no `coarse-<kind>/` folder. They are pure functions of the ground truth
 * (and, for `perturbed`, of the image name), so every run and every machine
 * scores the same inputs.
 *
 * - `lowres8` / `lowres32`: the ground truth's alpha (gt / 255, so an ignore
 *   value 128 counts as one half) area-downsampled by 8 / 32 (size
 *   max(1, round(side / factor))), bilinearly upsampled back (OpenCV's
 *   half-pixel convention), thresholded at >= 0.5: blocky masks like those of
 *   a small segmentation network.
 * - `perturbed`: CascadePSP/CRM-style corruption. From the binary ground truth
 *   (>= 128), random sub-rectangles centred on boundary pixels are dilated or
 *   eroded with an elliptical disk until the IoU with the ground truth falls
 *   to 0.85 ± 0.02.
 *
 * `lowres*` follow the Python definition step for step (equal up to float
 * rounding at exactly 0.5). `perturbed` follows the same algorithm with the
 * same parameters, but its random stream is this project's seeded generator
 * (src/baselines/rng.ts), not numpy's, so its masks are different draws of
 * the same distribution as the Python ones.
 *
 * @module
 */

import { dilate, erode } from "../metrics/mod.ts";
import type { Mask } from "../types.ts";
import { maskPlane } from "./guided_filter.ts";
import { resizeArea, resizeBilinear } from "./resample.ts";
import { Rng } from "./rng.ts";

/** The coarse kinds this module can synthesise. */
export const SYNTHETIC_KINDS = ["lowres8", "lowres32", "perturbed"] as const;
/** One of {@link SYNTHETIC_KINDS}. */
export type SyntheticKind = typeof SYNTHETIC_KINDS[number];

/** Target IoU of `perturbed` masks with their ground truth. */
export const PERTURB_TARGET_IOU = 0.85;
/** Accepted distance from the target IoU. */
export const PERTURB_TOLERANCE = 0.02;
/** Most dilate/erode steps tried per mask. */
export const PERTURB_MAX_STEPS = 400;

/** Whether `kind` names a synthetic kind. */
export function isSyntheticKind(kind: string): kind is SyntheticKind {
  return (SYNTHETIC_KINDS as readonly string[]).includes(kind);
}

/** The `kind` coarse mask (0/255, at the ground truth's size) for ground truth `gt` of image `name`. */
export function synthesizeCoarse(kind: SyntheticKind, gt: Mask, name: string): Mask {
  switch (kind) {
    case "lowres8":
      return lowres(gt, 8);
    case "lowres32":
      return lowres(gt, 32);
    case "perturbed":
      return perturbed(gt, name);
    default:
      throw new RangeError(
        `no synthetic coarse kind ${JSON.stringify(kind)}; known: ${SYNTHETIC_KINDS.join(", ")}`,
      );
  }
}

/** Round half to even, as Python 3's round(). */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  return x - f === 0.5 ? (f % 2 === 0 ? f : f + 1) : Math.round(x);
}

/** Area-downsample the alpha by `factor`, upsample bilinearly, threshold at 0.5. */
export function lowres(gt: Mask, factor: number): Mask {
  const { width: w, height: h } = gt;
  const sw = Math.max(1, roundHalfEven(w / factor)), sh = Math.max(1, roundHalfEven(h / factor));
  const up = resizeBilinear(resizeArea(maskPlane(gt), sw, sh), w, h).data;
  const out = new Uint8Array(w * h);
  // 0.5 in float32, as the reference compares its float32 planes
  for (let i = 0; i < out.length; i++) out[i] = up[i] >= 0.5 ? 255 : 0;
  return { width: w, height: h, data: out };
}

// ---------------------------------------------------------------------------
// perturbed

/** Flags (and their count) of pixels whose in-image 3x3 neighbourhood holds both classes. */
function boundaryFlags(m: Uint8Array, w: number, h: number): { flags: Uint8Array; count: number } {
  // 3-wide horizontal "has fg" / "has bg", then the same vertically
  const hasFg = new Uint8Array(w * h), hasBg = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let fg = 0, bg = 0;
      for (let dx = Math.max(0, x - 1); dx <= Math.min(w - 1, x + 1); dx++) {
        if (m[y * w + dx]) fg = 1;
        else bg = 1;
      }
      hasFg[y * w + x] = fg;
      hasBg[y * w + x] = bg;
    }
  }
  const flags = new Uint8Array(w * h);
  let count = 0;
  for (let y = 0; y < h; y++) {
    const ya = Math.max(0, y - 1), yb = Math.min(h - 1, y + 1);
    for (let x = 0; x < w; x++) {
      let fg = 0, bg = 0;
      for (let yy = ya; yy <= yb; yy++) {
        fg |= hasFg[yy * w + x];
        bg |= hasBg[yy * w + x];
      }
      if (fg && bg) {
        flags[y * w + x] = 1;
        count++;
      }
    }
  }
  return { flags, count };
}

/** The `k`-th set flag's index. */
function nthFlag(flags: Uint8Array, k: number): number {
  for (let i = 0; i < flags.length; i++) if (flags[i] && k-- === 0) return i;
  throw new RangeError("flag index out of range");
}

/** Intersection and union of two 0/255 masks over a rectangle. */
function rectCounts(
  a: Uint8Array,
  aw: number,
  b: Uint8Array,
  bw: number,
  r: Rect,
  ax = 0,
  ay = 0,
): [number, number] {
  let inter = 0, union = 0;
  for (let y = r.y0; y < r.y1; y++) {
    for (let x = r.x0; x < r.x1; x++) {
      const p = a[(y - ay) * aw + (x - ax)] !== 0, q = b[y * bw + x] !== 0;
      if (p && q) inter++;
      if (p || q) union++;
    }
  }
  return [inter, union];
}

interface Rect {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** A copy of the rectangle `r` of a mask. */
function crop(m: Uint8Array, w: number, r: Rect): Mask {
  const cw = r.x1 - r.x0, ch = r.y1 - r.y0, out = new Uint8Array(cw * ch);
  for (let y = 0; y < ch; y++) {
    out.set(m.subarray((r.y0 + y) * w + r.x0, (r.y0 + y) * w + r.x1), y * cw);
  }
  return { width: cw, height: ch, data: out };
}

/** One proposed change: rectangle `rect` of the mask gets `content` (a mask over `area`). */
interface Step {
  rect: Rect;
  area: Rect;
  content: Mask;
}

/**
 * One random dilation or erosion of a sub-rectangle centred on a boundary
 * pixel; null when the mask has no boundary. The morphology runs on a crop
 * with a margin of the disk radius, so the rectangle's content is exact.
 * Draws from `rng` in the reference's order.
 */
function perturbStep(m: Uint8Array, w: number, h: number, rng: Rng, scale: number): Step | null {
  const { flags, count } = boundaryFlags(m, w, h);
  if (count === 0) return null;
  const at = nthFlag(flags, rng.int(count));
  const cy = Math.floor(at / w), cx = at % w;
  const rh = Math.max(3, Math.trunc(h * rng.uniform(0.05, 0.35)));
  const rw = Math.max(3, Math.trunc(w * rng.uniform(0.05, 0.35)));
  const y0 = Math.max(0, cy - (rh >> 1)), x0 = Math.max(0, cx - (rw >> 1));
  const rect = { x0, y0, x1: Math.min(w, x0 + rw), y1: Math.min(h, y0 + rh) };
  const radius = Math.max(1, roundHalfEven(scale * rng.uniform(0.3, 1.0)));
  const area = {
    x0: Math.max(0, rect.x0 - radius),
    y0: Math.max(0, rect.y0 - radius),
    x1: Math.min(w, rect.x1 + radius),
    y1: Math.min(h, rect.y1 + radius),
  };
  const op = rng.random() < 0.5 ? dilate : erode;
  return { rect, area, content: op(crop(m, w, area), radius) };
}

/**
 * Random dilate/erode of boundary sub-rectangles of the binary ground truth
 * until its IoU with the ground truth is within ±0.02 of `targetIou`
 * (at most {@link PERTURB_MAX_STEPS} steps; a step that would overshoot is
 * rejected and later steps get smaller disks). Seeded by `name`.
 */
export function perturbed(gt: Mask, name: string, targetIou = PERTURB_TARGET_IOU): Mask {
  const { width: w, height: h } = gt;
  const fg = new Uint8Array(w * h);
  for (let i = 0; i < fg.length; i++) fg[i] = gt.data[i] >= 128 ? 255 : 0;
  const m = fg.slice();
  const rng = new Rng(`perturbed:${name}`);
  const whole = { x0: 0, y0: 0, x1: w, y1: h };
  let [inter, union] = rectCounts(m, w, fg, w, whole);
  let scale = 0.03 * (h + w) / 2; // disk radius scale: 3% of the mean side
  const lo = targetIou - PERTURB_TOLERANCE, hi = targetIou + PERTURB_TOLERANCE;
  for (let n = 0; n < PERTURB_MAX_STEPS; n++) {
    if (union === 0 || inter / union <= hi) break;
    const step = perturbStep(m, w, h, rng, scale);
    if (!step) break;
    const { rect, area, content } = step;
    const [oi, ou] = rectCounts(m, w, fg, w, rect);
    const [ni, nu] = rectCounts(content.data, content.width, fg, w, rect, area.x0, area.y0);
    const ti = inter - oi + ni, tu = union - ou + nu;
    if (tu > 0 && ti / tu < lo) {
      scale = Math.max(1, scale * 0.7); // overshot: smaller steps from now on
      continue;
    }
    paste(m, w, content, rect, area);
    inter = ti;
    union = tu;
  }
  return { width: w, height: h, data: m };
}

/** Writes the `rect` part of `content` (which covers `area`) into the mask. */
function paste(m: Uint8Array, w: number, content: Mask, rect: Rect, area: Rect): void {
  for (let y = rect.y0; y < rect.y1; y++) {
    const src = (y - area.y0) * content.width + (rect.x0 - area.x0);
    m.set(content.data.subarray(src, src + rect.x1 - rect.x0), y * w + rect.x0);
  }
}
