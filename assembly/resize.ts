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

import { madd } from "./simd";

// --------------------------------------------------------------------------
// bilinear

// PyTorch's convention (torch 1.13 CPU, checked bit for bit against it):
//   scale  = in / out                            (float32 division)
//   src    = max(scale * (dst + 0.5) - 0.5, 0)   (in float64, scale widened)
//   i0     = min(floor(src), in - 1)
//   i1     = i0 + (i0 < in - 1 ? 1 : 0)   (i0 when in == out: a copy)
//   lambda = float32(clamp(src - i0, 0, 1));  weights (1 - lambda, lambda) in float32
// The weights are then applied width first: top = fma(x00, w0, x01 * w1),
// likewise bottom, out = fma(top, h0, bottom * h1), which is what PyTorch's
// contiguous (NCHW) kernel computes on an FMA CPU; the relaxed build
// reproduces it bit for bit there, the plain build rounds the products
// (1-2 ulp). PyTorch's channels-last kernel (taken for 1-channel tensors too)
// sums four products with combined weights instead: also within 2 ulp.

/** Source position of output index `dst`, clamped below at 0 (float64, as PyTorch). */
// @ts-ignore: decorator
@inline
function srcPos(scale: f32, dst: i32): f64 {
  const s = <f64>scale * (<f64>dst + 0.5) - 0.5;
  return s < 0 ? 0 : s;
}

/** Lower source index of output index `dst`. */
// @ts-ignore: decorator
@inline
function srcIndex(scale: f32, dst: i32, inSize: i32): i32 {
  const i = <i32>srcPos(scale, dst); // src >= 0: truncation is floor
  return i < inSize - 1 ? i : inSize - 1;
}

/** Weight of the upper neighbour (lambda) for output index `dst`. */
// @ts-ignore: decorator
@inline
function srcLambda(scale: f32, dst: i32, i0: i32): f32 {
  const l = srcPos(scale, dst) - <f64>i0;
  return <f32>(l < 0 ? 0 : (l > 1 ? 1 : l));
}

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

/** One output pixel, 4 channels at a time; the last vector overlaps (same values). */
// @ts-ignore: decorator
@inline
function bilinearVec(
  p00: usize,
  p01: usize,
  p10: usize,
  p11: usize,
  o: usize,
  C: i32,
  w0: f32,
  w1: f32,
  h0: f32,
  h1: f32,
): void {
  const vw0 = f32x4.splat(w0), vw1 = f32x4.splat(w1);
  const vh0 = f32x4.splat(h0), vh1 = f32x4.splat(h1);
  const last = <usize>(C - 4) << 2;
  for (let c: usize = 0;; c += 16) {
    if (c > last) c = last;
    const top = madd(v128.load(p00 + c), vw0, f32x4.mul(v128.load(p01 + c), vw1));
    const bot = madd(v128.load(p10 + c), vw0, f32x4.mul(v128.load(p11 + c), vw1));
    v128.store(o + c, madd(top, vh0, f32x4.mul(bot, vh1)));
    if (c == last) break;
  }
}

/** a*b + c with one rounding (to within float64's double rounding): a scalar fma. */
// @ts-ignore: decorator
@inline
function fma32(a: f32, b: f32, c: f32): f32 {
  return <f32>(<f64>a * <f64>b + <f64>c);
}

/** One output pixel with fewer than 4 channels (same formula, fma done in float64). */
// @ts-ignore: decorator
@inline
function bilinearScalar(
  p00: usize,
  p01: usize,
  p10: usize,
  p11: usize,
  o: usize,
  C: i32,
  w0: f32,
  w1: f32,
  h0: f32,
  h1: f32,
): void {
  for (let c: usize = 0; c < (<usize>C << 2); c += 4) {
    const top = fma32(load<f32>(p00 + c), w0, load<f32>(p01 + c) * w1);
    const bot = fma32(load<f32>(p10 + c), w0, load<f32>(p11 + c) * w1);
    store<f32>(o + c, fma32(top, h0, bot * h1));
  }
}

// --------------------------------------------------------------------------
// area (adaptive average pooling)

// PyTorch's adaptive_avg_pool2d: output i averages input [floor(i*in/out),
// ceil((i+1)*in/out)), in integers; the sum runs row by row, then is divided
// by the bin height and then by the bin width (the contiguous-tensor kernel).

/** First input index of the bin of output `i`. */
// @ts-ignore: decorator
@inline
function binStart(i: i32, inSize: i32, outSize: i32): i32 {
  return <i32>((<i64>i * <i64>inSize) / <i64>outSize);
}

/** One past the last input index of the bin of output `i`. */
// @ts-ignore: decorator
@inline
function binEnd(i: i32, inSize: i32, outSize: i32): i32 {
  return <i32>((<i64>(i + 1) * <i64>inSize + <i64>outSize - 1) / <i64>outSize);
}

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
