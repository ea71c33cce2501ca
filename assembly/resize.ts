// Image resizing, NHWC float32, exactly as train/model.py's `resize()`:
// bilinear with half-pixel centres (PyTorch `F.interpolate(mode="bilinear",
// align_corners=False)` given an output size) and area (PyTorch
// `adaptive_avg_pool2d`).
//
// Both kernels share one signature:
//   (inPtr, inH, inW, C, inStride, outPtr, outH, outW, outStride, oy0, oy1)
// Pixel (y, x) of the input lives at inPtr + ((y * inW + x) * inStride) * 4, and
// output pixel (oy, ox) at outPtr + ((oy * outW + ox) * outStride) * 4: rows are
// indexed in the GLOBAL grid, so a call for rows [oy0, oy1) touches only those
// output rows and the input rows they read. Strides above C read from or write
// into a channel slice (e.g. concatenation). Each output value depends only on
// its own coordinates, so any split of the rows gives bit-identical results.

import {
  bilinearScalar,
  bilinearVec,
  binEnd,
  binStart,
  srcIndex,
  srcLambda,
} from "./sampling";

// --------------------------------------------------------------------------
// bilinear

/**
 * Bilinear resize (half-pixel centres) of rows [oy0, oy1) of the output.
 * Per output pixel: top = x00*w0 + x01*w1, bottom likewise, out = top*h0 + bottom*h1.
 */
export function resizeBilinear(
  inPtr: usize,
  inH: i32,
  inW: i32,
  C: i32,
  inStride: i32,
  outPtr: usize,
  outH: i32,
  outW: i32,
  outStride: i32,
  oy0: i32,
  oy1: i32,
): void {
  const sy: f32 = <f32>inH / <f32>outH;
  const sx: f32 = <f32>inW / <f32>outW;
  const inPix = <usize>inStride << 2;
  const inRow = <usize>inW * inPix;
  for (let oy = oy0; oy < oy1; oy++) {
    const y0 = srcIndex(sy, oy, inH);
    const ly: f32 = srcLambda(sy, oy, y0);
    const rowA = inPtr + <usize>y0 * inRow;
    // equal sizes: PyTorch reads the same tap twice (weights 1 and 0)
    const rowB = y0 < inH - 1 && inH != outH ? rowA + inRow : rowA;
    const outRow = outPtr + ((<usize>oy * <usize>outW * <usize>outStride) << 2);
    for (let ox = 0; ox < outW; ox++) {
      const x0 = srcIndex(sx, ox, inW);
      const lx: f32 = srcLambda(sx, ox, x0);
      const dx: usize = x0 < inW - 1 && inW != outW ? inPix : 0;
      const a = rowA + <usize>x0 * inPix;
      const b = rowB + <usize>x0 * inPix;
      const o = outRow + ((<usize>ox * <usize>outStride) << 2);
      if (C >= 4) bilinearVec(a, a + dx, b, b + dx, o, C, <f32>1 - lx, lx, <f32>1 - ly, ly);
      else bilinearScalar(a, a + dx, b, b + dx, o, C, <f32>1 - lx, lx, <f32>1 - ly, ly);
    }
  }
}

// --------------------------------------------------------------------------
// area (adaptive average pooling)

// PyTorch's adaptive_avg_pool2d: output i averages input [floor(i*in/out),
// ceil((i+1)*in/out)), in integers; the sum runs row by row, then is divided
// by the bin height and then by the bin width (the contiguous-tensor kernel).

/** Area resize (adaptive average pooling) of rows [oy0, oy1) of the output. */
export function resizeArea(
  inPtr: usize,
  inH: i32,
  inW: i32,
  C: i32,
  inStride: i32,
  outPtr: usize,
  outH: i32,
  outW: i32,
  outStride: i32,
  oy0: i32,
  oy1: i32,
): void {
  const inPix = <usize>inStride << 2;
  const inRow = <usize>inW * inPix;
  for (let oy = oy0; oy < oy1; oy++) {
    const h0 = binStart(oy, inH, outH);
    const kh = binEnd(oy, inH, outH) - h0;
    const outRow = outPtr + ((<usize>oy * <usize>outW * <usize>outStride) << 2);
    for (let ox = 0; ox < outW; ox++) {
      const w0 = binStart(ox, inW, outW);
      const kw = binEnd(ox, inW, outW) - w0;
      const src = inPtr + <usize>h0 * inRow + <usize>w0 * inPix;
      const o = outRow + ((<usize>ox * <usize>outStride) << 2);
      if (C >= 4) areaVec(src, inRow, inPix, kh, kw, o, C);
      else areaScalar(src, inRow, inPix, kh, kw, o, C);
    }
  }
}

/** Mean of a kh x kw bin, 4 channels at a time; the last vector overlaps. */
// @ts-ignore: decorator
@inline
function areaVec(src: usize, inRow: usize, inPix: usize, kh: i32, kw: i32, o: usize, C: i32): void {
  const vh = f32x4.splat(<f32>kh), vw = f32x4.splat(<f32>kw);
  const last = <usize>(C - 4) << 2;
  for (let c: usize = 0;; c += 16) {
    if (c > last) c = last;
    let sum = f32x4.splat(0);
    let row = src + c;
    for (let i = 0; i < kh; i++, row += inRow) {
      let p = row;
      for (let j = 0; j < kw; j++, p += inPix) sum = f32x4.add(sum, v128.load(p));
    }
    v128.store(o + c, f32x4.div(f32x4.div(sum, vh), vw));
    if (c == last) break;
  }
}

/** Mean of a kh x kw bin for fewer than 4 channels. */
// @ts-ignore: decorator
@inline
function areaScalar(
  src: usize,
  inRow: usize,
  inPix: usize,
  kh: i32,
  kw: i32,
  o: usize,
  C: i32,
): void {
  for (let c: usize = 0; c < (<usize>C << 2); c += 4) {
    let sum: f32 = 0;
    let row = src + c;
    for (let i = 0; i < kh; i++, row += inRow) {
      let p = row;
      for (let j = 0; j < kw; j++, p += inPix) sum += load<f32>(p);
    }
    store<f32>(o + c, sum / <f32>kh / <f32>kw);
  }
}
