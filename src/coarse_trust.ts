/**
 * Trust in the coarse mask at the output (`RefineOptions.coarseTrust`).
 *
 * Where the coarse mask is already right to within a pixel, the network's
 * own contour is less exact than the mask's, and it wanders by a pixel or
 * so in both directions (weights/MODEL_CARD.md: "which way the IoU is
 * lost"). Adding `trust * (2c - 1)` to the output logit, where c in [0, 1]
 * is the coarse mask, lets a pixel leave its coarse label only where the
 * network is sure enough: with a binary mask, a pixel changes side only
 * where the probability passes sigmoid(trust) (0.62 for trust 0.5) instead
 * of 0.5. Large corrections, which the network makes with confidence, pass.
 *
 * The rule works on the 8-bit output through a lookup table, so it adds no
 * float plane at full size; a coarse mask of another size is read bilinearly
 * (pixel centres aligned, as the pipeline resizes it).
 *
 * @module
 */

import type { Mask } from "./types.ts";

/** The default `coarseTrust`, chosen on the evaluation sets (bench/README.md). */
export const DEFAULT_COARSE_TRUST = 0.5;

/**
 * 256 x 256 table: entry `c * 256 + v` is the 8-bit probability `v` after
 * adding `trust * (2 c / 255 - 1)` to its logit. 0 and 255 stay: they stand
 * for probabilities beyond the 8-bit range, whose logits are unbounded.
 */
export function trustTable(trust: number): Uint8Array {
  const table = new Uint8Array(256 * 256);
  for (let c = 0; c < 256; c++) {
    const shift = trust * (2 * c / 255 - 1);
    const row = c * 256;
    table[row] = 0;
    table[row + 255] = 255;
    for (let v = 1; v < 255; v++) {
      const p = v / 255;
      const z = Math.log(p / (1 - p)) + shift;
      table[row + v] = Math.round(255 / (1 + Math.exp(-z)));
    }
  }
  return table;
}

/**
 * `out` (8-bit probabilities at full size) moved toward `coarse` by `trust`
 * logits, in place; `coarse` may have any size with the same aspect ratio.
 * Trust 0 leaves `out` unchanged.
 */
export function applyCoarseTrust(out: Mask, coarse: Mask, trust: number): Mask {
  if (trust === 0) return out;
  const table = trustTable(trust);
  const { width, height, data } = out;
  const sameSize = coarse.width === width && coarse.height === height;
  const taps = sameSize ? null : {
    cols: bilinearTaps(coarse.width, width),
    rows: bilinearTaps(coarse.height, height),
  };
  let row: Uint8Array = new Uint8Array(width);
  for (let y = 0; y < height; y++) {
    const at = y * width;
    if (!taps) row = coarse.data.subarray(at, at + width);
    else coarseRow(coarse, taps.rows, y, taps.cols, row);
    for (let x = 0; x < width; x++) data[at + x] = table[row[x] * 256 + data[at + x]];
  }
  return out;
}

/** For each target index, the two source indices and the weight of the second. */
interface Taps {
  lo: Int32Array;
  hi: Int32Array;
  w: Float32Array;
}

/** Bilinear taps from `from` source samples to `to` targets, pixel centres aligned. */
function bilinearTaps(from: number, to: number): Taps {
  const lo = new Int32Array(to), hi = new Int32Array(to), w = new Float32Array(to);
  const scale = from / to;
  for (let i = 0; i < to; i++) {
    const s = Math.min(from - 1, Math.max(0, (i + 0.5) * scale - 0.5));
    lo[i] = Math.floor(s);
    hi[i] = Math.min(from - 1, lo[i] + 1);
    w[i] = s - lo[i];
  }
  return { lo, hi, w };
}

/** Row `y` of the coarse mask at the output's width, rounded to 8 bits, into `dst`. */
function coarseRow(coarse: Mask, rows: Taps, y: number, cols: Taps, dst: Uint8Array): void {
  const cw = coarse.width, src = coarse.data;
  const a = rows.lo[y] * cw, b = rows.hi[y] * cw, wy = rows.w[y];
  for (let x = 0; x < dst.length; x++) {
    const l = cols.lo[x], h = cols.hi[x], wx = cols.w[x];
    const top = src[a + l] + (src[a + h] - src[a + l]) * wx;
    const bottom = src[b + l] + (src[b + h] - src[b + l]) * wx;
    dst[x] = Math.round(top + (bottom - top) * wy);
  }
}
