/**
 * Scalar reference of image resizing (train/model.py's `resize()`), NHWC
 * float32, written from PyTorch's definitions, for the kernel tests:
 * bilinear = `F.interpolate(mode="bilinear", align_corners=False)` given a
 * size (index arithmetic as `bilinearTaps` says; weights applied width
 * first, then height, each as fma(x0, w0, x1 * w1): PyTorch's contiguous CPU
 * kernel on an FMA machine, bit for bit); area = `adaptive_avg_pool2d` (sum row by row,
 * divided by the bin height, then by the bin width).
 *
 * @module
 */

const f = Math.fround;
/** a*b + c rounded once to float32 (float64 products of float32s are exact). */
const fma = (a: number, b: number, c: number) => f(a * b + c);

/**
 * Source indices and weights of output index `dst` along one axis, as
 * PyTorch (1.13, CPU) computes them: scale = in/out in float32; the source
 * position scale*(dst+0.5)-0.5 and lambda in float64, lambda rounded to float32.
 */
export function bilinearTaps(inSize: number, outSize: number, dst: number) {
  const scale = f(inSize / outSize);
  const src = Math.max(scale * (dst + 0.5) - 0.5, 0);
  const i0 = Math.min(Math.floor(src), inSize - 1);
  const lambda = f(Math.min(Math.max(src - i0, 0), 1));
  const i1 = i0 < inSize - 1 && inSize !== outSize ? i0 + 1 : i0; // equal sizes copy
  return { i0, i1, w0: f(1 - lambda), w1: lambda };
}

/** Bilinear resize of a dense NHWC image [inH][inW][C] to [outH][outW][C]. */
export function resizeBilinearRef(
  x: Float32Array,
  inH: number,
  inW: number,
  C: number,
  outH: number,
  outW: number,
): Float32Array {
  const out = new Float32Array(outH * outW * C);
  for (let oy = 0; oy < outH; oy++) {
    const ty = bilinearTaps(inH, outH, oy);
    for (let ox = 0; ox < outW; ox++) {
      const tx = bilinearTaps(inW, outW, ox);
      for (let c = 0; c < C; c++) {
        const at = (y: number, xx: number) => x[(y * inW + xx) * C + c];
        const top = fma(at(ty.i0, tx.i0), tx.w0, f(at(ty.i0, tx.i1) * tx.w1));
        const bot = fma(at(ty.i1, tx.i0), tx.w0, f(at(ty.i1, tx.i1) * tx.w1));
        out[(oy * outW + ox) * C + c] = fma(top, ty.w0, f(bot * ty.w1));
      }
    }
  }
  return out;
}

/** Area resize (adaptive average pooling) of a dense NHWC image. */
export function resizeAreaRef(
  x: Float32Array,
  inH: number,
  inW: number,
  C: number,
  outH: number,
  outW: number,
): Float32Array {
  const out = new Float32Array(outH * outW * C);
  const start = (i: number, n: number, m: number) => Math.floor((i * n) / m);
  const end = (i: number, n: number, m: number) => Math.ceil(((i + 1) * n) / m);
  for (let oy = 0; oy < outH; oy++) {
    const h0 = start(oy, inH, outH), h1 = end(oy, inH, outH);
    for (let ox = 0; ox < outW; ox++) {
      const w0 = start(ox, inW, outW), w1 = end(ox, inW, outW);
      for (let c = 0; c < C; c++) {
        let sum = 0;
        for (let y = h0; y < h1; y++) {
          for (let xx = w0; xx < w1; xx++) sum = f(sum + x[(y * inW + xx) * C + c]);
        }
        out[(oy * outW + ox) * C + c] = f(f(sum / (h1 - h0)) / (w1 - w0));
      }
    }
  }
  return out;
}
