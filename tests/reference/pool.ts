/**
 * Plain scalar 3x3 stride-2 max-pool with padding 1 (padding never wins, as
 * PyTorch's -inf padding), NHWC contiguous: the oracle for assembly/pool.ts.
 *
 * @module
 */

/** Returns the pooled h x w x c tensor and its size. */
export function maxPoolRef(
  input: Float32Array,
  h: number,
  w: number,
  c: number,
): { out: Float32Array; h: number; w: number } {
  const oh = Math.floor((h + 2 - 3) / 2) + 1;
  const ow = Math.floor((w + 2 - 3) / 2) + 1;
  const out = new Float32Array(oh * ow * c);
  for (let oy = 0; oy < oh; oy++) {
    for (let ox = 0; ox < ow; ox++) {
      for (let ch = 0; ch < c; ch++) {
        let m = -Infinity;
        for (let ky = 0; ky < 3; ky++) {
          const iy = oy * 2 - 1 + ky;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < 3; kx++) {
            const ix = ox * 2 - 1 + kx;
            if (ix < 0 || ix >= w) continue;
            m = Math.max(m, input[(iy * w + ix) * c + ch]);
          }
        }
        out[(oy * ow + ox) * c + ch] = m;
      }
    }
  }
  return { out, h: oh, w: ow };
}
