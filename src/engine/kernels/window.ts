/**
 * Typed wrappers of the window kernels (assembly/window.ts): bilinear resize,
 * 3x3/2 max-pool and 8-bit area resize over windows of GLOBAL grids, and the
 * encoder-input normalisation.
 *
 * A window holds rows [y0, y0 + h) x columns [x0, x0 + w) of a gridH x gridW
 * grid, row-major, `stride` floats per pixel. Values are computed from global
 * coordinates, so a strip or a tile gets bit-identical values to the same
 * pixels of a whole-image call. Each wrapper checks that the source window
 * holds every pixel the output window reads (the `*SourceRange` helpers say
 * which) and that every buffer lies inside linear memory.
 *
 * @module
 */

import type { KernelInstance } from "../wasm.ts";
import { checkInt, checkSpan, spanOf } from "./check.ts";
import { bilinearRow, floorDiv } from "./resize.ts";

/** A window of a float32 grid in linear memory. */
export interface GridWindow {
  /** byte offset of pixel (y0, x0), channel 0 */
  ptr: number;
  gridH: number;
  gridW: number;
  y0: number;
  x0: number;
  h: number;
  w: number;
  /** channels read or written */
  channels: number;
  /** floats from one pixel to the next (default `channels`) */
  stride?: number;
}

/** A window of an 8-bit interleaved grid (masks: 1 byte per pixel; RGB(A): 3 or 4). */
export interface U8Window {
  /** byte offset of pixel (y0, x0) */
  ptr: number;
  gridH: number;
  gridW: number;
  y0: number;
  x0: number;
  h: number;
  w: number;
  /** bytes per pixel */
  pixelBytes: number;
  /** channels used (the first ones of each pixel) */
  channels: number;
}

/** Source indices [first, end) a bilinear resize inSize -> outSize reads for outputs [o0, o1). */
export function bilinearSourceRange(
  inSize: number,
  outSize: number,
  o0: number,
  o1: number,
): [number, number] {
  const first = bilinearRow(inSize, outSize, o0);
  const last = bilinearRow(inSize, outSize, o1 - 1);
  return [first, Math.min(last + 1, inSize - 1) + 1];
}

/** Source indices [first, end) an area resize inSize -> outSize averages for outputs [o0, o1). */
export function areaSourceRange(
  inSize: number,
  outSize: number,
  o0: number,
  o1: number,
): [number, number] {
  return [floorDiv(o0 * inSize, outSize), -floorDiv(-o1 * inSize, outSize)];
}

/** Source indices [first, end) the 3x3/2 pool (padding 1) of an inSize axis reads for outputs [o0, o1). */
export function poolSourceRange(inSize: number, o0: number, o1: number): [number, number] {
  return [Math.max(2 * o0 - 1, 0), Math.min(2 * o1, inSize)];
}

/** The 256 floats x / 255 (float32), the 8-bit convention of `resizeAreaU8Window`. */
export function unitTable(): Float32Array {
  return Float32Array.from({ length: 256 }, (_, x) => x / 255);
}

/** Bilinear resize (half-pixel centres, PyTorch's) of `src`'s grid to `dst`'s, for `dst`'s window. */
export function resizeBilinearWindow(k: KernelInstance, src: GridWindow, dst: GridWindow): void {
  checkPair(src, dst);
  const rows = bilinearSourceRange(src.gridH, dst.gridH, dst.y0, dst.y0 + dst.h);
  const cols = bilinearSourceRange(src.gridW, dst.gridW, dst.x0, dst.x0 + dst.w);
  checkHolds("resizeBilinearWindow", src, rows, cols);
  checkWindowSpan(k, "resizeBilinearWindow source", src);
  checkWindowSpan(k, "resizeBilinearWindow output", dst);
  k.exports.resizeBilinearWindow(
    src.ptr,
    src.gridH,
    src.gridW,
    src.channels,
    src.stride ?? src.channels,
    src.y0,
    src.x0,
    src.w,
    dst.ptr,
    dst.gridH,
    dst.gridW,
    dst.stride ?? dst.channels,
    dst.y0,
    dst.x0,
    dst.h,
    dst.w,
  );
}

/** 3x3/2 max-pool with padding 1 of `src`'s grid, for `dst`'s window (contiguous channels). */
export function maxPoolWindow(k: KernelInstance, src: GridWindow, dst: GridWindow): void {
  checkPair(src, dst);
  for (const t of [src, dst]) {
    if ((t.stride ?? t.channels) !== t.channels) {
      throw new RangeError("maxPoolWindow needs contiguous channels");
    }
  }
  const outH = Math.floor((src.gridH - 1) / 2) + 1, outW = Math.floor((src.gridW - 1) / 2) + 1;
  if (dst.gridH !== outH || dst.gridW !== outW) {
    throw new RangeError(
      `maxPoolWindow: output grid ${dst.gridH}x${dst.gridW}, the pool gives ${outH}x${outW}`,
    );
  }
  const rows = poolSourceRange(src.gridH, dst.y0, dst.y0 + dst.h);
  const cols = poolSourceRange(src.gridW, dst.x0, dst.x0 + dst.w);
  checkHolds("maxPoolWindow", src, rows, cols);
  checkWindowSpan(k, "maxPoolWindow source", src);
  checkWindowSpan(k, "maxPoolWindow output", dst);
  k.exports.maxPoolWindow(
    src.ptr,
    src.gridH,
    src.gridW,
    src.channels,
    src.y0,
    src.x0,
    src.w,
    dst.ptr,
    dst.y0,
    dst.x0,
    dst.h,
    dst.w,
  );
}

/**
 * Area resize of 8-bit samples to float32 in [0, 1] (x / 255 per sample, then
 * averaged: bit-identical to area-resizing the float image), for `dst`'s
 * window. `lutPtr` holds `unitTable()`.
 */
export function resizeAreaU8Window(
  k: KernelInstance,
  src: U8Window,
  lutPtr: number,
  dst: GridWindow,
): void {
  checkGridWindow("source", src);
  checkGridWindow("destination", dst);
  checkInt("source pixel bytes", src.pixelBytes, 1, 16);
  checkInt("source channels", src.channels, 1, src.pixelBytes);
  if (src.channels !== dst.channels) {
    throw new RangeError(
      `resizeAreaU8Window: source has ${src.channels} channels, destination ${dst.channels}`,
    );
  }
  if (dst.gridH > src.gridH || dst.gridW > src.gridW) {
    throw new RangeError(
      `resizeAreaU8Window only shrinks: ${src.gridH}x${src.gridW} -> ${dst.gridH}x${dst.gridW}`,
    );
  }
  const rows = areaSourceRange(src.gridH, dst.gridH, dst.y0, dst.y0 + dst.h);
  const cols = areaSourceRange(src.gridW, dst.gridW, dst.x0, dst.x0 + dst.w);
  checkHolds("resizeAreaU8Window", src, rows, cols);
  if (
    !Number.isInteger(src.ptr) || src.ptr <= 0 ||
    src.ptr + src.h * src.w * src.pixelBytes > k.memory.buffer.byteLength
  ) {
    throw new RangeError(
      `resizeAreaU8Window source: ${src.h}x${src.w} pixels at ${src.ptr} overrun linear memory`,
    );
  }
  checkSpan(k.memory, "resizeAreaU8Window table", lutPtr, 256);
  checkWindowSpan(k, "resizeAreaU8Window output", dst);
  k.exports.resizeAreaU8Window(
    src.ptr,
    src.gridH,
    src.gridW,
    src.channels,
    src.pixelBytes,
    src.y0,
    src.x0,
    src.w,
    lutPtr,
    dst.ptr,
    dst.gridH,
    dst.gridW,
    dst.stride ?? dst.channels,
    dst.y0,
    dst.x0,
    dst.h,
    dst.w,
  );
}

/**
 * Encoder input in place over `n` pixels of 4 floats holding RGB in [0, 1]:
 * (v - mean) / std per channel and channel 3 = mask * 2 - 1 (`maskPtr`: n
 * floats). `paramsPtr`: mean[3] then std[3] as floats.
 */
export function normalizeEncoderInput(
  k: KernelInstance,
  ptr: number,
  maskPtr: number,
  n: number,
  paramsPtr: number,
): void {
  checkInt("pixels", n, 0);
  checkSpan(k.memory, "normalizeEncoderInput pixels", ptr, 4 * n);
  checkSpan(k.memory, "normalizeEncoderInput mask", maskPtr, n);
  checkSpan(k.memory, "normalizeEncoderInput params", paramsPtr, 6);
  k.exports.normalizeEncoderInput(ptr, maskPtr, n, paramsPtr);
}

function checkGridWindow(
  what: string,
  t: Omit<GridWindow, "ptr" | "channels"> & { channels: number },
): void {
  checkInt(`${what} grid height`, t.gridH);
  checkInt(`${what} grid width`, t.gridW);
  checkInt(`${what} window height`, t.h, 1, t.gridH);
  checkInt(`${what} window width`, t.w, 1, t.gridW);
  checkInt(`${what} window row`, t.y0, 0, t.gridH - t.h);
  checkInt(`${what} window column`, t.x0, 0, t.gridW - t.w);
  checkInt(`${what} channels`, t.channels);
}

function checkPair(src: GridWindow, dst: GridWindow): void {
  checkGridWindow("source", src);
  checkGridWindow("destination", dst);
  checkInt("source pixel stride", src.stride ?? src.channels, src.channels);
  checkInt("destination pixel stride", dst.stride ?? dst.channels, dst.channels);
  if (src.channels !== dst.channels) {
    throw new RangeError(`source has ${src.channels} channels, destination ${dst.channels}`);
  }
}

function checkHolds(
  name: string,
  src: { y0: number; x0: number; h: number; w: number },
  [r0, r1]: [number, number],
  [c0, c1]: [number, number],
): void {
  if (r0 < src.y0 || r1 > src.y0 + src.h || c0 < src.x0 || c1 > src.x0 + src.w) {
    throw new RangeError(
      `${name}: the source window rows [${src.y0}, ${src.y0 + src.h}) x columns [${src.x0}, ${
        src.x0 + src.w
      }) ` +
        `does not hold the rows [${r0}, ${r1}) x columns [${c0}, ${c1}) the output reads`,
    );
  }
}

function checkWindowSpan(k: KernelInstance, name: string, t: GridWindow): void {
  checkSpan(k.memory, name, t.ptr, spanOf(t.h, t.w, t.channels, t.stride ?? t.channels));
}
