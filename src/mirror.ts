/**
 * Test-time flipping: the network is not exactly mirror-symmetric, so
 * refining the mirrored photo too and averaging the two predictions
 * cancels part of its error (`RefineOptions.flip`).
 *
 * @module
 */

import type { Mask, RgbImage } from "./types.ts";

/** The image mirrored left to right (a copy). */
export function mirrorImage(image: RgbImage): RgbImage {
  const { width, height, channels } = image;
  const src = image.data;
  const out = new Uint8Array(src.length);
  const rowBytes = width * channels;
  for (let y = 0; y < height; y++) {
    const row = y * rowBytes;
    for (let x = 0; x < width; x++) {
      const from = row + (width - 1 - x) * channels, to = row + x * channels;
      for (let c = 0; c < channels; c++) out[to + c] = src[from + c];
    }
  }
  return { width, height, channels, data: out };
}

/** The mask mirrored left to right (a copy). */
export function mirrorMask(mask: Mask): Mask {
  const { width, height } = mask;
  const out = new Uint8Array(mask.data.length);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    out.set(mask.data.slice(row, row + width).reverse(), row);
  }
  return { width, height, data: out };
}

/**
 * The mean of two 8-bit probability planes of one size, rounded half up.
 * Symmetric in its arguments, so a flipped refinement of the mirrored photo
 * is exactly the mirror of the flipped refinement of the photo.
 */
export function averagePlanes(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length !== b.length) {
    throw new RangeError(`planes differ in size: ${a.length} and ${b.length}`);
  }
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] + b[i] + 1) >> 1;
  return out;
}
