/**
 * The guided filter (He, Sun and Tang, ECCV 2010 / TPAMI 2013): the classical
 * baseline crispmask is compared with.
 *
 * In every (2r+1)^2 window the filter fits a linear model q = a · I + b of the
 * mask p on the guide image I, then averages the models of all windows that
 * cover a pixel. Edges of the output follow edges of the image; `eps` sets how
 * strong an image edge must be to be followed.
 *
 * This is train/guided_filter.py in TypeScript, with the same conventions:
 *
 * - box means over the (2r+1)^2 window with OpenCV's default border
 *   (reflect-101), so every window holds (2r+1)^2 samples;
 * - the radius is given at a reference scale of (w + h) / 2 = 500 px and scaled
 *   with the image, r_px = max(1, round(radius * (w + h) / 1000)) (round half to
 *   even, as Python's round), as mBA's own radii scale with w + h;
 * - defaults radius 4, eps 1e-3, colour guide: tuned on GrabCut over the four
 *   evaluation coarse kinds (see train/guided_filter.py `tune`).
 *
 * Box sums accumulate in double precision (as OpenCV's float box filter does);
 * planes are stored as float32, as in the reference.
 *
 * @module
 */

import type { Mask, RgbImage } from "../types.ts";

/** Tuned radius at the 500 px reference scale (3 px on GrabCut, 13 px on Carvana). */
export const DEFAULT_RADIUS = 4;
/** Tuned regulariser (guide values in [0, 1]). */
export const DEFAULT_EPS = 1e-3;
/** Tuned guide: the colour image. */
export const DEFAULT_GUIDE: GuideKind = "color";

/** "color": the 3-channel guide (a 3-vector a per window); "gray": luma only. */
export type GuideKind = "color" | "gray";

/** Options of {@link guidedRefine}. */
export interface GuidedOptions {
  /** window radius at the 500 px reference scale (default {@link DEFAULT_RADIUS}) */
  radius?: number;
  /** regulariser; larger smooths across weaker edges (default {@link DEFAULT_EPS}) */
  eps?: number;
  /** guide kind (default {@link DEFAULT_GUIDE}) */
  guide?: GuideKind;
}

/** A float plane, row-major, `data.length === width * height`. */
export interface Plane {
  /** width in pixels */
  width: number;
  /** height in pixels */
  height: number;
  /** samples */
  data: Float32Array;
}

/** Round half to even, as Python 3's round(). */
function roundHalfEven(x: number): number {
  const f = Math.floor(x), d = x - f;
  if (d !== 0.5) return Math.round(x);
  return f % 2 === 0 ? f : f + 1;
}

/** The window radius in pixels for a `width` x `height` image (see the module doc). */
export function pixelRadius(radius: number, width: number, height: number): number {
  return Math.max(1, roundHalfEven((radius * (width + height)) / 1000));
}

/** OpenCV's BORDER_REFLECT_101 index (…2 1 | 0 1 2 … n-1 | n-2 …), for any overshoot. */
export function reflect101(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let j = i % period;
  if (j < 0) j += period;
  return j < n ? j : period - j;
}

/**
 * Mean over the (2r+1)^2 window around every pixel, borders reflected
 * (reflect-101). O(1) per pixel: a running column sum slides down the image
 * and a running row sum slides along each row; only O(width) scratch.
 */
export function boxMean(src: Plane, r: number, out?: Float32Array): Float32Array {
  const { width: w, height: h, data } = src;
  const dst = out ?? new Float32Array(w * h);
  const col = new Float64Array(w); // vertical window sums of the current row
  const norm = 1 / ((2 * r + 1) * (2 * r + 1));
  const xs = reflectTable(w, r);
  for (let dy = -r; dy <= r; dy++) addRow(col, data, reflect101(dy, h) * w, w, 1);
  for (let y = 0; y < h; y++) {
    if (y > 0) {
      addRow(col, data, reflect101(y + r, h) * w, w, 1);
      addRow(col, data, reflect101(y - r - 1, h) * w, w, -1);
    }
    slideRow(col, xs, r, w, norm, dst, y * w);
  }
  return dst;
}

/** Column indices -r..w-1+r mapped into the row (reflect-101). */
function reflectTable(w: number, r: number): Int32Array {
  const t = new Int32Array(w + 2 * r);
  for (let i = 0; i < t.length; i++) t[i] = reflect101(i - r, w);
  return t;
}

function addRow(
  col: Float64Array,
  data: Float32Array,
  base: number,
  w: number,
  sign: number,
): void {
  for (let x = 0; x < w; x++) col[x] += sign * data[base + x];
}

function slideRow(
  col: Float64Array,
  xs: Int32Array,
  r: number,
  w: number,
  norm: number,
  dst: Float32Array,
  base: number,
): void {
  let s = 0;
  for (let i = 0; i < 2 * r + 1; i++) s += col[xs[i]];
  dst[base] = s * norm;
  for (let x = 1; x < w; x++) {
    s += col[xs[x + 2 * r]] - col[xs[x - 1]];
    dst[base + x] = s * norm;
  }
}

/** Element-wise product of two planes' samples. */
function mul(a: Float32Array, b: Float32Array): Float32Array {
  const o = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) o[i] = a[i] * b[i];
  return o;
}

/** Window means of a one-channel guide that do not depend on the input: E[I], E[I²]. */
export interface GrayGuideStats {
  mI: Float32Array;
  eII: Float32Array;
}

/** {@link GrayGuideStats} of guide `I` at radius `r`. */
export function grayGuideStats(I: Plane, r: number): GrayGuideStats {
  return { mI: boxMean(I, r), eII: boxMean({ ...I, data: mul(I.data, I.data) }, r) };
}

/**
 * Window means of a colour guide that do not depend on the input: E[I_c] per
 * channel and E[I_i I_j] for the 6 distinct entries of the symmetric
 * second moments (00, 01, 02, 11, 12, 22).
 */
export interface ColorGuideStats {
  mI: Float32Array[];
  e: Float32Array[];
}

/** {@link ColorGuideStats} of guide `I` at radius `r`. */
export function colorGuideStats(I: [Plane, Plane, Plane], r: number): ColorGuideStats {
  const box = (x: Float32Array) => boxMean({ ...I[0], data: x }, r);
  const [c0, c1, c2] = I.map((c) => c.data);
  return {
    mI: [boxMean(I[0], r), boxMean(I[1], r), boxMean(I[2], r)],
    e: [mul(c0, c0), mul(c0, c1), mul(c0, c2), mul(c1, c1), mul(c1, c2), mul(c2, c2)].map(box),
  };
}

/**
 * The guided filter with a one-channel guide `I` (values in [0, 1]) on the
 * input `p`, window radius `r` px. Returns the unclipped output plane.
 */
export function guidedFilterGray(
  I: Plane,
  p: Plane,
  r: number,
  eps: number,
  stats: GrayGuideStats = grayGuideStats(I, r),
): Float32Array {
  checkSame(I, p);
  const plane = (data: Float32Array): Plane => ({ width: I.width, height: I.height, data });
  const { mI, eII } = stats, mP = boxMean(p, r);
  const a = new Float32Array(p.data.length);
  const b = boxMean(plane(mul(I.data, p.data)), r); // E[Ip], then b
  for (let i = 0; i < a.length; i++) {
    const varI = eII[i] - mI[i] * mI[i], cov = b[i] - mI[i] * mP[i];
    a[i] = cov / (varI + eps);
    b[i] = mP[i] - a[i] * mI[i];
  }
  const mA = boxMean(plane(a), r), mB = boxMean(plane(b), r, mP);
  const q = new Float32Array(a.length);
  for (let i = 0; i < q.length; i++) q[i] = mA[i] * I.data[i] + mB[i];
  return q;
}

/**
 * The guided filter with a colour guide: channels `I` (three planes, values in
 * [0, 1]); per window a = (Σ + eps·U)⁻¹ cov(I, p), b = mean(p) - a · mean(I).
 * Returns the unclipped output plane.
 */
export function guidedFilterColor(
  I: [Plane, Plane, Plane],
  p: Plane,
  r: number,
  eps: number,
  stats: ColorGuideStats = colorGuideStats(I, r),
): Float32Array {
  for (const c of I) checkSame(c, p);
  const plane = (data: Float32Array): Plane => ({ width: p.width, height: p.height, data });
  const box = (x: Float32Array) => boxMean(plane(x), r);
  const [c0, c1, c2] = I.map((c) => c.data);
  const { mI, e } = stats;
  const mP = boxMean(p, r);
  const eIp = [box(mul(c0, p.data)), box(mul(c1, p.data)), box(mul(c2, p.data))];
  const b = new Float32Array(p.data.length);
  solveWindows(mI, mP, eIp, e, eps, b); // eIp now holds a0, a1, a2
  const mA = eIp.map(box), mB = box(b);
  const q = new Float32Array(b.length);
  for (let i = 0; i < q.length; i++) {
    q[i] = mA[0][i] * c0[i] + mA[1][i] * c1[i] + mA[2][i] * c2[i] + mB[i];
  }
  return q;
}

/**
 * Per window: a = (Σ + eps·U)⁻¹ cov(I, p) by cofactors (Σ + eps·U is symmetric
 * positive definite), written over `eIp` (`mI` and `e` are only read: they
 * may serve several inputs); b = mean(p) - a · mean(I) into `b`.
 */
function solveWindows(
  mI: Float32Array[],
  mP: Float32Array,
  eIp: Float32Array[],
  e: Float32Array[],
  eps: number,
  b: Float32Array,
): void {
  for (let i = 0; i < b.length; i++) {
    const m0 = mI[0][i], m1 = mI[1][i], m2 = mI[2][i], mp = mP[i];
    const v0 = eIp[0][i] - m0 * mp, v1 = eIp[1][i] - m1 * mp, v2 = eIp[2][i] - m2 * mp;
    const s00 = e[0][i] - m0 * m0 + eps, s01 = e[1][i] - m0 * m1, s02 = e[2][i] - m0 * m2;
    const s11 = e[3][i] - m1 * m1 + eps, s12 = e[4][i] - m1 * m2, s22 = e[5][i] - m2 * m2 + eps;
    const k00 = s11 * s22 - s12 * s12, k01 = s02 * s12 - s01 * s22, k02 = s01 * s12 - s02 * s11;
    const k11 = s00 * s22 - s02 * s02, k12 = s01 * s02 - s00 * s12, k22 = s00 * s11 - s01 * s01;
    const det = s00 * k00 + s01 * k01 + s02 * k02;
    const a0 = (k00 * v0 + k01 * v1 + k02 * v2) / det;
    const a1 = (k01 * v0 + k11 * v1 + k12 * v2) / det;
    const a2 = (k02 * v0 + k12 * v1 + k22 * v2) / det;
    eIp[0][i] = a0;
    eIp[1][i] = a1;
    eIp[2][i] = a2;
    b[i] = mp - a0 * m0 - a1 * m1 - a2 * m2;
  }
}

function checkSame(a: Plane, b: Plane): void {
  if (a.width !== b.width || a.height !== b.height || a.data.length !== b.data.length) {
    throw new RangeError(
      `guide ${a.width}x${a.height} and input ${b.width}x${b.height} differ in size`,
    );
  }
}

/** One channel of an RGB(A) image as a plane in [0, 1]. */
export function channelPlane(image: RgbImage, c: number): Plane {
  const n = image.width * image.height, k = image.channels;
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = image.data[i * k + c] / 255;
  return { width: image.width, height: image.height, data: d };
}

/** Luma in [0, 1] with OpenCV's RGB2GRAY weights (0.299, 0.587, 0.114). */
export function grayPlane(image: RgbImage): Plane {
  const n = image.width * image.height, k = image.channels, s = image.data;
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    d[i] = (0.299 * s[i * k] + 0.587 * s[i * k + 1] + 0.114 * s[i * k + 2]) / 255;
  }
  return { width: image.width, height: image.height, data: d };
}

/** A mask as a plane in [0, 1]. */
export function maskPlane(mask: Mask): Plane {
  const d = new Float32Array(mask.data.length);
  for (let i = 0; i < d.length; i++) d[i] = mask.data[i] / 255;
  return { width: mask.width, height: mask.height, data: d };
}

/**
 * The guided filter of one image at fixed settings, for refining several
 * coarse masks of it: the guide's window statistics (9 of the 14 box means
 * of a colour guide) are computed once, in the constructor, and every
 * {@link GuidedFilter.refine} call gives exactly what {@link guidedRefine}
 * gives.
 */
export class GuidedFilter {
  readonly width: number;
  readonly height: number;
  readonly #r: number;
  readonly #eps: number;
  readonly #run: (p: Plane) => Float32Array;

  constructor(image: RgbImage, options: GuidedOptions = {}) {
    const { width: w, height: h } = image;
    const eps = options.eps ?? DEFAULT_EPS, guide = options.guide ?? DEFAULT_GUIDE;
    const r = pixelRadius(options.radius ?? DEFAULT_RADIUS, w, h);
    if (guide === "gray") {
      const I = grayPlane(image), stats = grayGuideStats(I, r);
      this.#run = (p) => guidedFilterGray(I, p, r, eps, stats);
    } else if (guide === "color") {
      const I = [0, 1, 2].map((c) => channelPlane(image, c)) as [Plane, Plane, Plane];
      const stats = colorGuideStats(I, r);
      this.#run = (p) => guidedFilterColor(I, p, r, eps, stats);
    } else throw new RangeError(`guide must be "color" or "gray", got ${JSON.stringify(guide)}`);
    this.width = w;
    this.height = h;
    this.#r = r;
    this.#eps = eps;
  }

  /** Window radius in pixels at this image's size. */
  get radius(): number {
    return this.#r;
  }

  /** The regulariser in use. */
  get eps(): number {
    return this.#eps;
  }

  /**
   * Refines a coarse mask (soft or binary 8-bit, at the image's size); returns
   * a soft 8-bit mask, round(255 · clip(q, 0, 1)), which is foreground
   * (>= 128) exactly where q >= 0.5, so metrics on it equal metrics on the
   * float output.
   */
  refine(coarse: Mask): Mask {
    const { width: w, height: h } = this;
    if (coarse.width !== w || coarse.height !== h) {
      throw new RangeError(
        `image ${w}x${h} and coarse mask ${coarse.width}x${coarse.height} differ in size`,
      );
    }
    return { width: w, height: h, data: toBytes(this.#run(maskPlane(coarse))) };
  }
}

/**
 * Refines a coarse mask (soft or binary 8-bit, at the image's size) with the
 * guided filter at the tuned defaults (see {@link GuidedFilter.refine}).
 * To refine several masks of one image, make one {@link GuidedFilter}.
 */
export function guidedRefine(image: RgbImage, coarse: Mask, options: GuidedOptions = {}): Mask {
  return new GuidedFilter(image, options).refine(coarse);
}

/** round(255 · clip(q, 0, 1)) per sample. */
function toBytes(q: Float32Array): Uint8Array {
  const out = new Uint8Array(q.length);
  for (let i = 0; i < q.length; i++) {
    const v = q[i] <= 0 ? 0 : q[i] >= 1 ? 1 : q[i];
    out[i] = Math.round(v * 255);
  }
  return out;
}
