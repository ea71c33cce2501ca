/**
 * Float-plane resampling with OpenCV's conventions, for the synthetic coarse
 * masks (train/coarse_eval.py uses cv2.resize) and for coarse masks stored at
 * another size than their image.
 *
 * @module
 */

import type { Plane } from "./guided_filter.ts";

/** One output sample's sources: indices and weights (summing to 1). */
interface Taps {
  index: Int32Array;
  weight: Float64Array;
  start: Int32Array; // taps of output i are [start[i], start[i + 1])
}

/**
 * Area taps from `n` source samples to `m` outputs (m <= n): output i averages
 * the source interval [i·s, (i+1)·s), s = n / m, each sample weighted by its
 * overlap (cv2.INTER_AREA when shrinking).
 */
function areaTaps(n: number, m: number): Taps {
  const s = n / m;
  const index: number[] = [], weight: number[] = [], start = new Int32Array(m + 1);
  for (let i = 0; i < m; i++) {
    start[i] = index.length;
    const a = i * s, b = Math.min(n, (i + 1) * s);
    for (let j = Math.floor(a); j < b; j++) {
      const w = Math.min(b, j + 1) - Math.max(a, j);
      if (w > 1e-9) {
        index.push(j);
        weight.push(w / s);
      }
    }
  }
  start[m] = index.length;
  return { index: Int32Array.from(index), weight: Float64Array.from(weight), start };
}

/**
 * Bilinear taps from `n` source samples to `m` outputs with cv2.INTER_LINEAR's
 * half-pixel centres: x = (i + 0.5)·n/m - 0.5, clamped to the edge samples.
 */
function linearTaps(n: number, m: number): Taps {
  const index = new Int32Array(2 * m),
    weight = new Float64Array(2 * m),
    start = new Int32Array(m + 1);
  const s = n / m;
  for (let i = 0; i < m; i++) {
    let x = (i + 0.5) * s - 0.5;
    let x0 = Math.floor(x);
    if (x0 < 0) x = x0 = 0;
    if (x0 >= n - 1) x = x0 = n - 1;
    const f = x - x0;
    index[2 * i] = x0;
    index[2 * i + 1] = Math.min(x0 + 1, n - 1);
    weight[2 * i] = 1 - f;
    weight[2 * i + 1] = f;
    start[i] = 2 * i;
  }
  start[m] = 2 * m;
  return { index, weight, start };
}

/** Applies column taps `tx` and row taps `ty` to a plane (separable). */
function applyTaps(src: Plane, dw: number, dh: number, tx: Taps, ty: Taps): Plane {
  const { width: sw, height: sh, data } = src;
  const rows = new Float64Array(dw * sh); // horizontal pass
  for (let y = 0; y < sh; y++) {
    for (let x = 0; x < dw; x++) {
      let acc = 0;
      for (let k = tx.start[x]; k < tx.start[x + 1]; k++) {
        acc += tx.weight[k] * data[y * sw + tx.index[k]];
      }
      rows[y * dw + x] = acc;
    }
  }
  const out = new Float32Array(dw * dh);
  for (let y = 0; y < dh; y++) {
    for (let k = ty.start[y]; k < ty.start[y + 1]; k++) {
      const w = ty.weight[k], base = ty.index[k] * dw;
      for (let x = 0; x < dw; x++) out[y * dw + x] += w * rows[base + x];
    }
  }
  return { width: dw, height: dh, data: out };
}

function checkTarget(dw: number, dh: number): void {
  if (!Number.isInteger(dw) || !Number.isInteger(dh) || dw < 1 || dh < 1) {
    throw new RangeError(`target size must be positive integers, got ${dw}x${dh}`);
  }
}

/** Shrinks a plane by area averaging (cv2.INTER_AREA); the target must not be larger. */
export function resizeArea(src: Plane, dw: number, dh: number): Plane {
  checkTarget(dw, dh);
  if (dw > src.width || dh > src.height) {
    throw new RangeError(`resizeArea only shrinks: ${src.width}x${src.height} -> ${dw}x${dh}`);
  }
  return applyTaps(src, dw, dh, areaTaps(src.width, dw), areaTaps(src.height, dh));
}

/** Resizes a plane bilinearly (cv2.INTER_LINEAR, float samples). */
export function resizeBilinear(src: Plane, dw: number, dh: number): Plane {
  checkTarget(dw, dh);
  return applyTaps(src, dw, dh, linearTaps(src.width, dw), linearTaps(src.height, dh));
}
