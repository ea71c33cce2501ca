/**
 * Typed wrappers of the resizing kernels (assembly/resize.ts), and the
 * resizing policy of train/model.py's `resize()`.
 *
 * Images are NHWC float32 in linear memory. Rows are indexed in the global
 * grid: output row `oy` of a call lives at `dst.ptr + oy * dst.w * stride * 4`
 * whatever rows the call computes, so row ranges split across workers write
 * disjoint rows and give bit-identical results. A caller that holds only a
 * strip of rows may pass a base pointer shifted by the strip's first row:
 * the checks cover exactly the memory a call touches.
 *
 * @module
 */

import type { KernelInstance } from "../wasm.ts";
import { checkInt, checkSpan } from "./check.ts";

/** An NHWC float32 image (or a channel slice of one) in linear memory. */
export interface ImageRef {
  /** byte offset of channel 0 of pixel (0, 0) */
  ptr: number;
  /** height in pixels */
  h: number;
  /** width in pixels */
  w: number;
  /** channels read or written per pixel */
  channels: number;
  /** floats from one pixel to the next (default: `channels`); larger for a channel slice */
  stride?: number;
}

/** Which of the two kernels `resize()` uses. */
export type ResizeMode = "area" | "bilinear";

/**
 * The mode train/model.py's `resize()` picks for a size change: area
 * (adaptive average pooling) when shrinking or keeping both axes, otherwise
 * bilinear with half-pixel centres. (Equal sizes are a copy; bilinear at
 * scale 1 is an exact copy, area with 1x1 bins too.)
 */
export function resizeModeFor(inH: number, inW: number, outH: number, outW: number): ResizeMode {
  return outH <= inH && outW <= inW ? "area" : "bilinear";
}

/** Resizes `src` into `dst` with the mode model.py's `resize()` uses (rows [y0, y1) of dst). */
export function resize(
  k: KernelInstance,
  src: ImageRef,
  dst: ImageRef,
  rows?: [number, number],
): void {
  if (resizeModeFor(src.h, src.w, dst.h, dst.w) === "area") resizeArea(k, src, dst, rows);
  else resizeBilinear(k, src, dst, rows);
}

/**
 * Bilinear resize with half-pixel centres, exactly PyTorch's
 * `F.interpolate(mode="bilinear", align_corners=False)` given an output size,
 * for output rows [y0, y1) (default all).
 */
export function resizeBilinear(
  k: KernelInstance,
  src: ImageRef,
  dst: ImageRef,
  rows: [number, number] = [0, dst.h],
): void {
  const [oy0, oy1] = checkResize(src, dst, rows);
  if (oy0 === oy1) return;
  const first = bilinearRow(src.h, dst.h, oy0);
  const last = Math.min(bilinearRow(src.h, dst.h, oy1 - 1) + 1, src.h - 1);
  checkRows(k, "resizeBilinear input", src, first, last + 1);
  checkRows(k, "resizeBilinear output", dst, oy0, oy1);
  k.exports.resizeBilinear(
    src.ptr,
    src.h,
    src.w,
    src.channels,
    src.stride ?? src.channels,
    dst.ptr,
    dst.h,
    dst.w,
    dst.stride ?? dst.channels,
    oy0,
    oy1,
  );
}

/**
 * Area resize, exactly PyTorch's `adaptive_avg_pool2d`: output i averages
 * input [floor(i*in/out), ceil((i+1)*in/out)) in each axis. Output rows [y0, y1).
 */
export function resizeArea(
  k: KernelInstance,
  src: ImageRef,
  dst: ImageRef,
  rows: [number, number] = [0, dst.h],
): void {
  const [oy0, oy1] = checkResize(src, dst, rows);
  if (oy0 === oy1) return;
  const first = floorDiv(oy0 * src.h, dst.h);
  const end = -floorDiv(-oy1 * src.h, dst.h); // ceil
  checkRows(k, "resizeArea input", src, first, end);
  checkRows(k, "resizeArea output", dst, oy0, oy1);
  k.exports.resizeArea(
    src.ptr,
    src.h,
    src.w,
    src.channels,
    src.stride ?? src.channels,
    dst.ptr,
    dst.h,
    dst.w,
    dst.stride ?? dst.channels,
    oy0,
    oy1,
  );
}

/**
 * The lower source row PyTorch's bilinear reads for output row `dst`, as the
 * kernel computes it: scale = in/out in float32, then
 * min(floor(max(scale*(dst+0.5)-0.5, 0)), in-1) in float64.
 */
export function bilinearRow(inSize: number, outSize: number, dst: number): number {
  const scale = Math.fround(inSize / outSize);
  const src = Math.max(scale * (dst + 0.5) - 0.5, 0);
  return Math.min(Math.floor(src), inSize - 1);
}

/** floor(a / b) for integers (exact below 2^53, unlike Math.floor(a / b)). */
export function floorDiv(a: number, b: number): number {
  let q = Math.floor(a / b);
  if (q * b > a) q--;
  else if ((q + 1) * b <= a) q++;
  return q;
}

/** Checks sizes, channels, strides and the row range; returns the range. */
function checkResize(src: ImageRef, dst: ImageRef, rows: [number, number]): [number, number] {
  checkImage("source", src);
  checkImage("destination", dst);
  if (src.channels !== dst.channels) {
    throw new RangeError(
      `resize: source has ${src.channels} channels, destination ${dst.channels}`,
    );
  }
  const [oy0, oy1] = rows;
  checkInt("first output row", oy0, 0, dst.h);
  checkInt("end output row", oy1, oy0, dst.h);
  return [oy0, oy1];
}

function checkImage(what: string, im: ImageRef): void {
  checkInt(`${what} height`, im.h);
  checkInt(`${what} width`, im.w);
  checkInt(`${what} channels`, im.channels);
  checkInt(`${what} pixel stride`, im.stride ?? im.channels, im.channels);
}

/** Checks that rows [r0, r1) of `im` lie inside linear memory. */
function checkRows(k: KernelInstance, name: string, im: ImageRef, r0: number, r1: number): void {
  const stride = im.stride ?? im.channels;
  const start = im.ptr + r0 * im.w * stride * 4;
  checkSpan(k.memory, name, start, ((r1 - r0) * im.w - 1) * stride + im.channels);
}
