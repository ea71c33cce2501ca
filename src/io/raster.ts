/**
 * The common currency of the codecs: an 8-bit interleaved raster with 1 to 4
 * channels, and its conversions into the API's `RgbImage` and `Mask`.
 *
 * Every decoder returns a `Raster` whatever the file held (16-bit, palette,
 * 1-bit gray...), so the rules for turning pixels into an image or a mask live
 * here once, not in each codec.
 *
 * @module
 */

import type { Mask, RgbImage } from "../types.ts";

/** An 8-bit raster: gray (1), gray+alpha (2), RGB (3) or RGBA (4), row-major, interleaved. */
export interface Raster {
  /** width in pixels */
  width: number;
  /** height in pixels */
  height: number;
  /** samples per pixel */
  channels: 1 | 2 | 3 | 4;
  /** `width * height * channels` samples */
  data: Uint8Array | Uint8ClampedArray;
}

/**
 * The raster as an `RgbImage`: RGB and RGBA are used as they are (no copy),
 * gray and gray+alpha are expanded to RGB (their alpha is dropped, as
 * `RgbImage` ignores alpha anyway).
 */
export function toRgbImage(r: Raster): RgbImage {
  if (r.channels === 3 || r.channels === 4) {
    return { width: r.width, height: r.height, channels: r.channels, data: r.data };
  }
  const n = r.width * r.height, step = r.channels, src = r.data;
  const out = new Uint8Array(n * 3);
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    const v = src[i * step];
    out[j] = v;
    out[j + 1] = v;
    out[j + 2] = v;
  }
  return { width: r.width, height: r.height, channels: 3, data: out };
}

/**
 * The raster as a `Mask`. The rule:
 *
 * - no alpha channel, or an alpha that is the same everywhere: the first
 *   channel (gray, or red of RGB/RGBA);
 * - an alpha that varies: the alpha. That covers both a plain alpha mask
 *   (constant colour, the mask only in alpha) and a cut-out (the photo's
 *   colours with a transparent background, as background removers write
 *   them), where the first channel would be the photo's red, not a mask.
 */
export function toMask(r: Raster): Mask {
  const channel = hasAlpha(r) && !isConstant(r, r.channels - 1) ? r.channels - 1 : 0;
  return { width: r.width, height: r.height, data: extractChannel(r, channel) };
}

/** Which channel `toMask` reads: "gray", "red" or "alpha" (for reports). */
export function maskSource(r: Raster): "gray" | "red" | "alpha" {
  if (hasAlpha(r) && !isConstant(r, r.channels - 1)) return "alpha";
  return r.channels <= 2 ? "gray" : "red";
}

function hasAlpha(r: Raster): boolean {
  return r.channels === 2 || r.channels === 4;
}

/** True when channel `c` holds one value in every pixel. */
function isConstant(r: Raster, c: number): boolean {
  const d = r.data, step = r.channels, first = d[c];
  for (let i = c; i < d.length; i += step) if (d[i] !== first) return false;
  return true;
}

/** Channel `c` as its own array (a copy, so the mask owns its memory). */
function extractChannel(r: Raster, c: number): Uint8Array {
  const n = r.width * r.height, step = r.channels, src = r.data;
  if (step === 1) return new Uint8Array(src.buffer, src.byteOffset, n).slice();
  const out = new Uint8Array(n);
  for (let i = 0, j = c; i < n; i++, j += step) out[i] = src[j];
  return out;
}
