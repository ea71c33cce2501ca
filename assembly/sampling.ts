// Shared sampling arithmetic of the resize kernels: the whole-grid kernels
// (resize.ts) and the window kernels (window.ts) must compute every value
// with the same operations in the same order, so both take them from here.
// Nothing here is exported from the module (index.ts does not re-export it).

import { madd } from "./simd";

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
export function srcPos(scale: f32, dst: i32): f64 {
  const s = <f64>scale * (<f64>dst + 0.5) - 0.5;
  return s < 0 ? 0 : s;
}

/** Lower source index of output index `dst`. */
// @ts-ignore: decorator
@inline
export function srcIndex(scale: f32, dst: i32, inSize: i32): i32 {
  const i = <i32>srcPos(scale, dst); // src >= 0: truncation is floor
  return i < inSize - 1 ? i : inSize - 1;
}

/** Weight of the upper neighbour (lambda) for output index `dst`. */
// @ts-ignore: decorator
@inline
export function srcLambda(scale: f32, dst: i32, i0: i32): f32 {
  const l = srcPos(scale, dst) - <f64>i0;
  return <f32>(l < 0 ? 0 : (l > 1 ? 1 : l));
}

/** One output pixel, 4 channels at a time; the last vector overlaps (same values). */
// @ts-ignore: decorator
@inline
export function bilinearVec(
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
export function fma32(a: f32, b: f32, c: f32): f32 {
  return <f32>(<f64>a * <f64>b + <f64>c);
}

/** One output pixel with fewer than 4 channels (same formula, fma done in float64). */
// @ts-ignore: decorator
@inline
export function bilinearScalar(
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

/** First input index of the bin of output `i`. */
// @ts-ignore: decorator
@inline
export function binStart(i: i32, inSize: i32, outSize: i32): i32 {
  return <i32>((<i64>i * <i64>inSize) / <i64>outSize);
}

/** One past the last input index of the bin of output `i`. */
// @ts-ignore: decorator
@inline
export function binEnd(i: i32, inSize: i32, outSize: i32): i32 {
  return <i32>((<i64>(i + 1) * <i64>inSize + <i64>outSize - 1) / <i64>outSize);
}

