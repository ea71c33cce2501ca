/**
 * Host-side pixels of a stage: the coarse mask and (for small stages) the
 * image at the stage's size, and crops for units.
 * Every resize here uses the conventions of train/model.py's `resize` on
 * images divided by 255 first (src/engine/kernels/window.ts), bit for bit,
 * and works in bands of rows: no full-size float copy of a full-size image
 * or mask is made.
 *
 * @module
 */

import {
  areaSourceRange,
  bilinearSourceRange,
  resizeAreaU8Window,
  resizeBilinearWindow,
} from "../engine/kernels/window.ts";
import { resizeModeFor } from "../engine/kernels/resize.ts";
import type { Mask } from "../types.ts";
import type { Span } from "./encoder_window.ts";
import type { StageGeometry } from "./plan.ts";
import type { UnitContext } from "./unit.ts";

/** Source bytes per band when resizing from 8 bits (bounds the host instance's memory). */
const BAND_BYTES = 1 << 22;

/**
 * An 8-bit grid (`channels` used of `pixelBytes` per pixel) area-resized to
 * `size`, x / 255 first: `resize(x / 255, size)` when shrinking.
 */
export function areaResizeU8(
  host: UnitContext,
  data: Uint8Array | Uint8ClampedArray,
  from: [number, number],
  pixelBytes: number,
  channels: number,
  size: [number, number],
): Float32Array {
  const [h, w] = size, [ih, iw] = from;
  const out = new Float32Array(h * w * channels);
  const { arena, kernels: k } = host.net;
  const band = Math.max(1, Math.floor(BAND_BYTES / (iw * pixelBytes * Math.ceil(ih / h))));
  for (let y0 = 0; y0 < h; y0 += band) {
    const y1 = Math.min(h, y0 + band);
    const [r0, r1] = areaSourceRange(ih, h, y0, y1);
    const mark = arena.mark();
    try {
      const rows = data.subarray(r0 * iw * pixelBytes, r1 * iw * pixelBytes);
      const src = arena.bytes(rows.length);
      new Uint8Array(k.memory.buffer, src, rows.length).set(rows);
      const dst = arena.f32((y1 - y0) * w * channels);
      resizeAreaU8Window(
        k,
        { ptr: src, gridH: ih, gridW: iw, y0: r0, x0: 0, h: r1 - r0, w: iw, pixelBytes, channels },
        host.lutPtr,
        { ptr: dst.ptr, gridH: h, gridW: w, y0, x0: 0, h: y1 - y0, w, channels },
      );
      out.set(arena.view(dst), y0 * w * channels);
    } finally {
      arena.release(mark);
    }
  }
  return out;
}

/**
 * The coarse mask at the first stage's size, in [0, 1], as `resize(coarse /
 * 255, size)`: area from the 8-bit mask when shrinking, bilinear otherwise.
 */
export function coarseToStage(
  host: UnitContext,
  coarse: Mask,
  size: [number, number],
): Float32Array {
  const from: [number, number] = [coarse.height, coarse.width];
  if (resizeModeFor(from[0], from[1], size[0], size[1]) === "area") {
    return areaResizeU8(host, coarse.data, from, 1, 1, size);
  }
  // growing in some axis: the mask is at most the stage's size there; bilinear from x / 255
  const [h, w] = size, [ch, cw] = from;
  const out = new Float32Array(h * w);
  const { arena, kernels: k } = host.net;
  const lut = arena.view({ ptr: host.lutPtr, length: 256 });
  const band = Math.max(1, Math.floor(BAND_BYTES / (4 * cw * Math.max(1, Math.ceil(ch / h)))));
  for (let y0 = 0; y0 < h; y0 += band) {
    const y1 = Math.min(h, y0 + band);
    const [r0, r1] = bilinearSourceRange(ch, h, y0, y1);
    const mark = arena.mark();
    try {
      const rows = coarse.data.subarray(r0 * cw, r1 * cw);
      const src = arena.f32(rows.length);
      const v = arena.view(src);
      for (let i = 0; i < rows.length; i++) v[i] = lut[rows[i]];
      const dst = arena.f32((y1 - y0) * w);
      resizeBilinearWindow(
        k,
        { ptr: src.ptr, gridH: ch, gridW: cw, y0: r0, x0: 0, h: r1 - r0, w: cw, channels: 1 },
        { ptr: dst.ptr, gridH: h, gridW: w, y0, x0: 0, h: y1 - y0, w, channels: 1 },
      );
      out.set(arena.view(dst), y0 * w);
    } finally {
      arena.release(mark);
    }
  }
  return out;
}

/**
 * Whether a stage's units should get the image pre-resized to the stage's
 * size (float32, 12 bytes per stage pixel) rather than 8-bit crops of the
 * full image (3-4 bytes per full pixel): when the stage is at most a
 * quarter of the full size in each axis, the resized crops are smaller, and
 * a stage unit's halo does not make every unit carry the whole photo.
 */
export function preResize(geo: StageGeometry): boolean {
  return geo.full[0] >= 4 * geo.size[0] && geo.full[1] >= 4 * geo.size[1];
}

/** Rows/columns `s` of an interleaved grid of `width` pixels, `px` values each. */
export function crop<T extends Uint8Array | Uint8ClampedArray | Float32Array>(
  data: T,
  width: number,
  px: number,
  s: Span,
): T {
  const w = (s.c1 - s.c0) * px;
  const out = new (data.constructor as { new (n: number): T })((s.r1 - s.r0) * w);
  for (let r = s.r0; r < s.r1; r++) {
    const from = (r * width + s.c0) * px;
    out.set(data.subarray(from, from + w) as ArrayLike<number>, (r - s.r0) * w);
  }
  return out;
}

/** Rows/columns `s` of an RGBA image as RGB (the alpha is never read: a quarter less to send). */
export function cropRgb(data: Uint8Array, width: number, s: Span): Uint8Array {
  const w = s.c1 - s.c0;
  const out = new Uint8Array((s.r1 - s.r0) * w * 3);
  for (let r = s.r0, o = 0; r < s.r1; r++) {
    for (let i = (r * width + s.c0) * 4, end = i + 4 * w; i < end; i += 4, o += 3) {
      out[o] = data[i];
      out[o + 1] = data[i + 1];
      out[o + 2] = data[i + 2];
    }
  }
  return out;
}
