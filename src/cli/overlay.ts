/**
 * The `--overlay` view: the photo at full size with two contours drawn on
 * it, the coarse mask's (magenta, the mask scaled to the photo) and the
 * refined mask's (green, on top), so a person sees at a glance where the
 * refinement moved the boundary.
 *
 * @module
 */

import type { Mask, RgbImage } from "../types.ts";

/** Contour colours, RGB. */
export const REFINED_COLOUR = [0, 255, 0] as const;
/** Contour colours, RGB. */
export const COARSE_COLOUR = [255, 0, 255] as const;

/**
 * A new RGB image: `image` with the contours of `coarse` (resized to the
 * image bilinearly, so its boundary is smooth rather than blocky) and of
 * `refined` (at the image's size). A contour is 2 px wide: the pixels on
 * both sides of each foreground/background edge (threshold 128).
 */
export function drawOverlay(image: RgbImage, refined: Mask, coarse: Mask): RgbImage {
  const { width, height } = image;
  if (refined.width !== width || refined.height !== height) {
    throw new Error(
      `overlay: refined mask is ${refined.width}x${refined.height}, image ${width}x${height}`,
    );
  }
  const out = toRgb(image);
  paintEdges(out, width, height, foreground(resizeBilinear(coarse, width, height)), COARSE_COLOUR);
  paintEdges(out, width, height, foreground(refined.data), REFINED_COLOUR);
  return { width, height, channels: 3, data: out };
}

function toRgb(image: RgbImage): Uint8Array {
  if (image.channels === 3) return Uint8Array.from(image.data);
  const n = image.width * image.height, out = new Uint8Array(n * 3), src = image.data;
  for (let i = 0; i < n; i++) {
    out[i * 3] = src[i * 4];
    out[i * 3 + 1] = src[i * 4 + 1];
    out[i * 3 + 2] = src[i * 4 + 2];
  }
  return out;
}

/** 1 where the mask is foreground (>= 128), else 0. */
function foreground(mask: Uint8Array): Uint8Array {
  const out = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) out[i] = mask[i] >= 128 ? 1 : 0;
  return out;
}

/** Colours every pixel whose label differs from a 4-neighbour's. */
function paintEdges(
  rgb: Uint8Array,
  w: number,
  h: number,
  fg: Uint8Array,
  colour: readonly number[],
): void {
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x, v = fg[i];
      const edge = (x > 0 && fg[i - 1] !== v) || (x < w - 1 && fg[i + 1] !== v) ||
        (y > 0 && fg[i - w] !== v) || (y < h - 1 && fg[i + w] !== v);
      if (edge) rgb.set(colour, i * 3);
    }
  }
}

/**
 * Bilinear resize of a mask with pixel-centre alignment (the convention of
 * the refiner's own resizing), separable: one pass over rows of the output.
 */
function resizeBilinear(m: Mask, w: number, h: number): Uint8Array {
  const xs = axis(m.width, w), ys = axis(m.height, h);
  const out = new Uint8Array(w * h), src = m.data, sw = m.width;
  for (let y = 0; y < h; y++) {
    const r0 = ys.i0[y] * sw, r1 = ys.i1[y] * sw, fy = ys.f[y];
    for (let x = 0; x < w; x++) {
      const a = src[r0 + xs.i0[x]],
        b = src[r0 + xs.i1[x]],
        c = src[r1 + xs.i0[x]],
        d = src[r1 + xs.i1[x]];
      const fx = xs.f[x], top = a + (b - a) * fx, bottom = c + (d - c) * fx;
      out[y * w + x] = Math.round(top + (bottom - top) * fy);
    }
  }
  return out;
}

/** For each output coordinate: the two source samples and the weight of the second. */
function axis(
  srcSize: number,
  dstSize: number,
): { i0: Int32Array; i1: Int32Array; f: Float32Array } {
  const i0 = new Int32Array(dstSize), i1 = new Int32Array(dstSize), f = new Float32Array(dstSize);
  for (let o = 0; o < dstSize; o++) {
    const s = Math.min(Math.max(((o + 0.5) * srcSize) / dstSize - 0.5, 0), srcSize - 1);
    i0[o] = Math.floor(s);
    i1[o] = Math.min(i0[o] + 1, srcSize - 1);
    f[o] = s - i0[o];
  }
  return { i0, i1, f };
}
