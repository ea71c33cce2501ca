/**
 * Scalar reference of the CAM + implicit function (train/model.py's
 * `axis_support` and `ImplicitDecoder.query`) for the kernel tests. It
 * follows model.py's float32 order of operations for the positional inputs,
 * the first layer and the blend; the hidden and output layers accumulate in
 * float64 and round each activation to float32.
 *
 * @module
 */

const f = Math.fround;

/** The decoder's tensors as PyTorch holds them (row-major). */
export interface DecoderTensors {
  /** MLP widths [w0, h1, ..., hn] */
  widths: number[];
  /** mlp.pos.weight [w0][posDims] */
  pos: Float32Array;
  /** positional inputs: 6, or 7 with the prior (default 6) */
  posDims?: 6 | 7;
  /** mlp.hidden{l}.weight [out][in] and bias [out] */
  hidden: { weight: Float32Array; bias: Float32Array }[];
  /** mlp.out.weight [hn] */
  outW: Float32Array;
  /** mlp.out.bias */
  outB: number;
}

/** Support indices and positional values along one axis, as `axis_support`. */
export function axisSupport(nTarget: number, nFeat: number, start: number, count: number) {
  const lo = new Int32Array(count), hi = new Int32Array(count);
  const relLo = new Float32Array(count), relHi = new Float32Array(count);
  const coord = new Float32Array(count);
  const clamp = (i: number) => Math.min(Math.max(i, 0), nFeat - 1);
  for (let t = 0; t < count; t++) {
    const j = start + t;
    const l = Math.floor(((2 * j + 1) * nFeat - nTarget) / (2 * nTarget)); // exact for small ints
    lo[t] = clamp(l);
    hi[t] = clamp(l + 1);
    const twoU = f(f((2 * j + 1) * nFeat) / f(nTarget));
    relLo[t] = f(twoU - (2 * lo[t] + 1));
    relHi[t] = f(twoU - (2 * hi[t] + 1));
    coord[t] = f(f(f(2 * j + 1) / nTarget) - 1);
  }
  return { lo, hi, relLo, relHi, coord };
}

/** Hidden layers (ReLU) and the output layer for one first-layer activation vector. */
function mlpRef(z0: Float32Array, t: DecoderTensors): number {
  let z = z0;
  t.hidden.forEach((layer, l) => {
    const K = t.widths[l], N = t.widths[l + 1];
    const next = new Float32Array(N);
    for (let o = 0; o < N; o++) {
      let s = layer.bias[o];
      for (let k = 0; k < K; k++) s += layer.weight[o * K + k] * z[k];
      next[o] = Math.max(s, 0);
    }
    z = next;
  });
  let s = t.outB;
  for (let k = 0; k < z.length; k++) s += t.outW[k] * z[k];
  return f(s);
}

/**
 * Logits [h][w] of window (y0, x0, h, w) of the Ht x Wt target grid, from
 * proj (NHWC, the per-cell first-layer term): the whole Hf x Wf grid, or only
 * the window `projWin` = (fy0, fx0, fh, fw) of it. `prior`: the window's
 * prior probabilities [h][w], for a decoder with 7 positional inputs.
 */
export function implicitQueryRef(
  proj: Float32Array,
  Hf: number,
  Wf: number,
  t: DecoderTensors,
  Ht: number,
  Wt: number,
  win: [number, number, number, number] = [0, 0, Ht, Wt],
  projWin: [number, number, number, number] = [0, 0, Hf, Wf],
  prior?: Float32Array,
): Float32Array {
  const P = t.posDims ?? 6;
  if ((P === 7) !== (prior !== undefined)) {
    throw new Error("the prior goes with 7 positional inputs");
  }
  const [y0, x0, h, w] = win;
  const [fy0, fx0, , fw] = projWin;
  const C = t.widths[0];
  const ys = axisSupport(Ht, Hf, y0, h), xs = axisSupport(Wt, Wf, x0, w);
  const cellY = f((2 * Hf) / Ht), cellX = f((2 * Wf) / Wt);
  const wp = (c: number, i: number) => t.pos[c * P + i];
  const out = new Float32Array(h * w);
  const z = new Float32Array(C);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const preds: number[] = [], areas: number[] = [];
      for (const [iy, ry] of [[ys.lo[y], ys.relLo[y]], [ys.hi[y], ys.relHi[y]]]) {
        for (const [ix, rx] of [[xs.lo[x], xs.relLo[x]], [xs.hi[x], xs.relHi[x]]]) {
          for (let c = 0; c < C; c++) {
            const g = proj[((iy - fy0) * fw + ix - fx0) * C + c];
            const pos = f(f(wp(c, 0) * ry) + f(wp(c, 1) * rx));
            const cnst = f(f(wp(c, 2) * cellY) + f(wp(c, 3) * cellX));
            const rowC = f(wp(c, 4) * ys.coord[y]);
            const colC = prior
              ? f(f(wp(c, 5) * xs.coord[x]) + f(wp(c, 6) * f(f(2 * prior[y * w + x]) - 1)))
              : f(wp(c, 5) * xs.coord[x]);
            z[c] = Math.max(f(f(f(f(g + pos) + cnst) + rowC) + colC), 0);
          }
          preds.push(mlpRef(z, t));
          areas.push(f(Math.abs(f(ry * rx)) + f(1e-9)));
        }
      }
      const total = f(f(f(areas[0] + areas[1]) + areas[2]) + areas[3]);
      const num = f(
        f(f(f(preds[0] * areas[3]) + f(preds[1] * areas[2])) + f(preds[2] * areas[1])) +
          f(preds[3] * areas[0]),
      );
      out[y * w + x] = f(num / total);
    }
  }
  return out;
}

/** sigmoid in float64, rounded to float32. */
export function sigmoidRef(x: number): number {
  return f(1 / (1 + Math.exp(-x)));
}
