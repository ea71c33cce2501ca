/**
 * The one place that converts between layouts: pixels as users hold them
 * (interleaved 8-bit RGB/RGBA, 8-bit masks, planar NCHW float arrays) and the
 * engine's NHWC float32 tensors.
 *
 * @module
 */

import type { ModelConfig } from "../weights/model_config.ts";

/**
 * Builds the encoder input (NHWC, 4 channels): RGB normalised with the
 * model's mean/std, and the mask mapped from [0, 1] to [-1, 1], exactly as
 * train/model.py's `encoder_input` (same float32 operations).
 *
 * `rgb(i, c)` gives channel c of pixel i in [0, 1]; `mask(i)` in [0, 1].
 */
export function encoderInputInto(
  out: Float32Array,
  pixels: number,
  cfg: Pick<ModelConfig, "mean" | "std">,
  rgb: (i: number, c: number) => number,
  mask: (i: number) => number,
): void {
  if (out.length < pixels * 4) throw new RangeError(`encoder input buffer too small for ${pixels} pixels`);
  const mean = Float32Array.from(cfg.mean), std = Float32Array.from(cfg.std);
  const t = new Float32Array(1); // rounds each step to float32, as PyTorch does
  for (let i = 0; i < pixels; i++) {
    for (let c = 0; c < 3; c++) {
      t[0] = rgb(i, c) - mean[c];
      t[0] = t[0] / std[c];
      out[4 * i + c] = t[0];
    }
    t[0] = mask(i) * 2;
    out[4 * i + 3] = t[0] - 1;
  }
}

/** NCHW planes (one image) to NHWC. */
export function nchwToNhwc(src: Float32Array, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(c * h * w);
  const plane = h * w;
  for (let ch = 0; ch < c; ch++) {
    for (let i = 0; i < plane; i++) out[i * c + ch] = src[ch * plane + i];
  }
  return out;
}

/** An 8-bit RGB(A) image as NHWC float32 RGB in [0, 1] (alpha dropped). */
export function rgbToUnit(
  data: Uint8Array | Uint8ClampedArray,
  pixels: number,
  channels: 3 | 4,
  out: Float32Array,
): void {
  if (out.length < pixels * 3) throw new RangeError(`RGB buffer too small for ${pixels} pixels`);
  for (let i = 0, j = 0; i < pixels; i++, j += channels) {
    out[3 * i] = data[j] / 255;
    out[3 * i + 1] = data[j + 1] / 255;
    out[3 * i + 2] = data[j + 2] / 255;
  }
}

/** An 8-bit mask as float32 in [0, 1]. */
export function maskToUnit(data: Uint8Array, out: Float32Array): void {
  if (out.length < data.length) throw new RangeError(`mask buffer too small for ${data.length} pixels`);
  for (let i = 0; i < data.length; i++) out[i] = data[i] / 255;
}

/**
 * The encoder input from an NHWC RGB buffer in [0, 1] and a mask in [0, 1]
 * (both at the encoder's size).
 */
export function encoderInputFromUnit(
  rgb: Float32Array,
  mask: Float32Array,
  pixels: number,
  cfg: Pick<ModelConfig, "mean" | "std">,
  out: Float32Array,
): void {
  encoderInputInto(out, pixels, cfg, (i, c) => rgb[3 * i + c], (i) => mask[i]);
}
