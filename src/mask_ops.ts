/**
 * Cheap decisions on the coarse mask before any network runs: its aspect
 * ratio, whether it is empty or full, and whether its object is tiny.
 *
 * @module
 */

import { CrispmaskError } from "./errors.ts";
import type { Mask } from "./types.ts";

/**
 * Throws unless a `mw` x `mh` mask has the aspect ratio of a `w` x `h` image,
 * allowing one pixel of rounding at the mask's scale.
 */
export function checkAspect(w: number, h: number, mw: number, mh: number): void {
  const wantW = (w * mh) / h, wantH = (h * mw) / w;
  if (Math.abs(mw - wantW) > 1 && Math.abs(mh - wantH) > 1) {
    throw new CrispmaskError(
      "aspect-mismatch",
      `the coarse mask is ${mw}x${mh} but the image is ${w}x${h}: aspect ratios differ by more than rounding`,
    );
  }
}

/** Bounding box of the foreground (>= 128) of a mask, or null when there is none. */
export function foregroundBox(m: Mask): { x0: number; y0: number; x1: number; y1: number; count: number } | null {
  let x0 = m.width, y0 = m.height, x1 = -1, y1 = -1, count = 0;
  for (let y = 0; y < m.height; y++) {
    const row = y * m.width;
    for (let x = 0; x < m.width; x++) {
      if (m.data[row + x] >= 128) {
        count++;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  return count ? { x0, y0, x1: x1 + 1, y1: y1 + 1, count } : null;
}

/** A mask of one value at the given size. */
export function constantMask(width: number, height: number, value: number): Mask {
  return { width, height, data: new Uint8Array(width * height).fill(value) };
}

/** Nearest-neighbour resize of a mask (used only to pass masks through unchanged). */
export function resizeNearest(m: Mask, width: number, height: number): Mask {
  if (m.width === width && m.height === height) return { width, height, data: m.data.slice() };
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(m.height - 1, Math.floor(((y + 0.5) * m.height) / height));
    for (let x = 0; x < width; x++) {
      const sx = Math.min(m.width - 1, Math.floor(((x + 0.5) * m.width) / width));
      out[y * width + x] = m.data[sy * m.width + sx];
    }
  }
  return { width, height, data: out };
}

/** The mask thresholded at 128 to 0/255 (in place). */
export function binarise(m: Mask): Mask {
  for (let i = 0; i < m.data.length; i++) m.data[i] = m.data[i] >= 128 ? 255 : 0;
  return m;
}
