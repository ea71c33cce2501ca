/**
 * Typed wrappers of the CAM + implicit-function kernel (assembly/cam.ts) and
 * of the logit -> probability output stage, with the packer of the decoder's
 * parameters.
 *
 * The kernel mirrors train/model.py's `ImplicitDecoder.query`: for each
 * target pixel, the 4 support cells of the feature grid (integer formula of
 * `axis_support`), the positional inputs, the MLP (first layer factorised:
 * the per-cell term `proj` = feat_proj(latent) comes in precomputed), and the
 * opposite-area blend. It writes logits (no sigmoid).
 *
 * With 7 positional inputs the model also reads the *prior*: the stage's mask
 * upsampled to each target pixel (train/model.py's `prior_window`), passed
 * as a plane of probabilities beside the logits.
 *
 * Parameter block (float32, `packImplicitParams`), for widths w[0..n] and
 * P positional inputs (6 or 7):
 *
 *     pos    [P][w0]     mlp.pos.weight transposed: row i = weights of input i
 *                        (rel_y, rel_x, cell_y, cell_x, coord_y, coord_x, prior)
 *     per hidden layer l (K = w[l], N = w[l+1]):
 *       weight [K][N]    mlp.hidden{l}.weight transposed (input-major)
 *       bias   [N]       mlp.hidden{l}.bias
 *     outW   [w[n]]      mlp.out.weight
 *     outB   [4]         mlp.out.bias, then 3 zeros
 *
 * Every width is a multiple of 4, so every section is 16-byte aligned.
 *
 * @module
 */

import type { KernelInstance } from "../wasm.ts";
import type { Arena } from "../arena.ts";
import { checkInt, checkSpan, spanOf } from "./check.ts";
import { floorDiv } from "./resize.ts";

/**
 * Positional inputs of the first layer: 6 (rel_y, rel_x, cell_y, cell_x,
 * coord_y, coord_x), or 7 with the prior.
 */
export type PosDims = 6 | 7;

function checkPosDims(posDims: number): asserts posDims is PosDims {
  if (posDims !== 6 && posDims !== 7) {
    throw new RangeError(`positional inputs must be 6 or 7, got ${posDims}`);
  }
}

/** Throws unless `widths` (the MLP widths [w0, h1, ..., hn]) are positive multiples of 4. */
export function checkWidths(widths: readonly number[]): void {
  if (widths.length < 1) throw new RangeError("the MLP needs at least one width");
  for (const w of widths) {
    if (!Number.isInteger(w) || w <= 0 || w % 4 !== 0 || w > 4096) {
      throw new RangeError(`MLP widths must be multiples of 4 in [4, 4096], got [${widths}]`);
    }
  }
}

/** Floats of the packed parameter block for `widths` and `posDims` positional inputs. */
export function implicitParamsFloats(widths: readonly number[], posDims: PosDims = 6): number {
  checkWidths(widths);
  checkPosDims(posDims);
  let n = posDims * widths[0];
  for (let l = 1; l < widths.length; l++) n += widths[l - 1] * widths[l] + widths[l];
  return n + widths[widths.length - 1] + 4;
}

/**
 * Floats of scratch `implicitQuery` needs: 2*w0 (the two y-supports' row
 * terms) + 8 (a block's rel_x) + 24*max(widths) (two activation buffers of a
 * block of 3 pixels x 4 supports). Independent of the window size.
 */
export function implicitScratchFloats(widths: readonly number[]): number {
  checkWidths(widths);
  return 2 * widths[0] + 8 + 24 * Math.max(...widths);
}

/** Looks up a decoder tensor by its safetensors name (`mlp.pos.weight`, ...). */
export type TensorLookup = (name: string) => Float32Array | undefined;

/**
 * Packs the decoder's tensors (as train/model.py's `folded_tensors` names
 * them) into the kernel's parameter block; see the module doc for the layout.
 * `mlp.feat.*` is not needed here: it produces `proj`.
 */
export function packImplicitParams(
  widths: readonly number[],
  get: TensorLookup,
  posDims: PosDims = 6,
): Float32Array {
  const out = new Float32Array(implicitParamsFloats(widths, posDims));
  const need = (name: string, length: number): Float32Array => {
    const t = get(name);
    if (!t) throw new RangeError(`decoder tensor ${name} is missing`);
    if (t.length !== length) {
      throw new RangeError(`decoder tensor ${name} has ${t.length} values, expected ${length}`);
    }
    return t;
  };
  const w0 = widths[0];
  const pos = need("mlp.pos.weight", w0 * posDims); // [w0][posDims]
  for (let i = 0; i < posDims; i++) {
    for (let c = 0; c < w0; c++) out[i * w0 + c] = pos[c * posDims + i];
  }
  let at = posDims * w0;
  for (let l = 1; l < widths.length; l++) {
    const K = widths[l - 1], N = widths[l];
    const w = need(`mlp.hidden${l - 1}.weight`, N * K); // [N][K]
    for (let kk = 0; kk < K; kk++) {
      for (let o = 0; o < N; o++) out[at + kk * N + o] = w[o * K + kk];
    }
    at += K * N;
    out.set(need(`mlp.hidden${l - 1}.bias`, N), at);
    at += N;
  }
  const last = widths[widths.length - 1];
  out.set(need("mlp.out.weight", last), at);
  out[at + last] = need("mlp.out.bias", 1)[0];
  return out;
}

/** The packed parameters and the widths (i32) in linear memory. */
export interface ImplicitParamsRef {
  /** byte offset of the parameter block */
  ptr: number;
  /** byte offset of the widths as i32 */
  widthsPtr: number;
  widths: readonly number[];
  /** positional inputs: 7 when the model reads the prior */
  posDims: PosDims;
}

/** Packs the decoder's tensors and uploads them, with the widths, into `arena`. */
export function uploadImplicitParams(
  arena: Arena,
  widths: readonly number[],
  get: TensorLookup,
  posDims: PosDims = 6,
): ImplicitParamsRef {
  const block = arena.upload(packImplicitParams(widths, get, posDims));
  const wbuf = arena.f32(widths.length);
  new Int32Array(arena.view(wbuf).buffer, wbuf.ptr, widths.length).set(widths);
  return { ptr: block.ptr, widthsPtr: wbuf.ptr, widths: [...widths], posDims };
}

/**
 * The lower support cell of target index `j` before clamping:
 * floor(((2j+1)*nFeat - nTarget) / (2*nTarget)), as `axis_support`.
 */
export function supportLo(j: number, nFeat: number, nTarget: number): number {
  return floorDiv((2 * j + 1) * nFeat - nTarget, 2 * nTarget);
}

/**
 * The feature cells [first, end) that target indices [start, start+count)
 * of an nTarget grid read from an nFeat grid (both supports, clamped).
 */
export function supportCells(
  nTarget: number,
  nFeat: number,
  start: number,
  count: number,
): [number, number] {
  const clamp = (i: number) => Math.min(Math.max(i, 0), nFeat - 1);
  return [
    clamp(supportLo(start, nFeat, nTarget)),
    clamp(supportLo(start + count - 1, nFeat, nTarget) + 1) + 1,
  ];
}

/** A window of the per-cell first-layer grid (`proj`), NHWC float32. */
export interface ProjWindow {
  /** byte offset of cell (y0, x0); cell (y0 + r, x0 + c) at ptr + ((r * w + c) * stride) * 4 */
  ptr: number;
  /** floats from one cell to the next (default widths[0]) */
  stride?: number;
  /** the global grid's height and width (Hf, Wf) */
  gridH: number;
  gridW: number;
  /** the window: first row, first column, rows, columns */
  y0: number;
  x0: number;
  h: number;
  w: number;
}

/** A window of the target grid (Ht x Wt over the same extent as the feature grid). */
export interface TargetWindow {
  gridH: number;
  gridW: number;
  y0: number;
  x0: number;
  h: number;
  w: number;
}

/** Where logits go: pixel (y, x) of the window at ptr + (y * rowStride + x) * 4. */
export interface LogitPlane {
  ptr: number;
  /** floats from one row to the next (default: the window's width) */
  rowStride?: number;
}

/**
 * The prior of a target window (models with 7 positional inputs): the
 * stage's mask upsampled to the target grid, probability of pixel (y, x) of
 * the window at ptr + (y * rowStride + x) * 4.
 */
export interface PriorPlane {
  ptr: number;
  /** floats from one row to the next (default: the window's width) */
  rowStride?: number;
}

/**
 * Logits of the target window: CAM + implicit function, as
 * `ImplicitDecoder.query(proj, (Ht, Wt), (y0, x0, h, w), prior)`. `scratchPtr`
 * holds `implicitScratchFloats(widths)` floats. `prior` is required exactly
 * when the parameters have 7 positional inputs. Throws a RangeError when
 * `proj`'s window does not hold every support cell of the target window.
 */
export function implicitQuery(
  k: KernelInstance,
  proj: ProjWindow,
  target: TargetWindow,
  params: ImplicitParamsRef,
  out: LogitPlane,
  scratchPtr: number,
  prior?: PriorPlane,
): void {
  const widths = params.widths;
  checkWidths(widths);
  checkPosDims(params.posDims);
  if ((params.posDims === 7) !== (prior !== undefined)) {
    throw new RangeError(
      params.posDims === 7
        ? "implicitQuery: this model reads the prior, and none was given"
        : "implicitQuery: a prior was given to a model with 6 positional inputs",
    );
  }
  const C0 = widths[0];
  const stride = proj.stride ?? C0;
  checkInt("feature grid height", proj.gridH);
  checkInt("feature grid width", proj.gridW);
  checkWindow("feature", proj, proj.gridH, proj.gridW);
  checkInt("proj cell stride", stride, C0);
  checkInt("target grid height", target.gridH);
  checkInt("target grid width", target.gridW);
  checkWindow("target", target, target.gridH, target.gridW);
  const rowStride = out.rowStride ?? target.w;
  checkInt("logit row stride", rowStride, target.w);
  checkCover("rows", proj.y0, proj.h, supportCells(target.gridH, proj.gridH, target.y0, target.h));
  checkCover(
    "columns",
    proj.x0,
    proj.w,
    supportCells(target.gridW, proj.gridW, target.x0, target.w),
  );
  const mem = k.memory;
  checkSpan(mem, "implicitQuery proj", proj.ptr, spanOf(proj.h, proj.w, C0, stride));
  checkSpan(mem, "implicitQuery params", params.ptr, implicitParamsFloats(widths, params.posDims));
  checkSpan(mem, "implicitQuery widths", params.widthsPtr, widths.length);
  const stored = new Int32Array(mem.buffer, params.widthsPtr, widths.length);
  if (stored.some((w, i) => w !== widths[i])) {
    throw new RangeError(`implicitQuery: widths in memory [${stored}] differ from [${widths}]`);
  }
  checkSpan(mem, "implicitQuery logits", out.ptr, (target.h - 1) * rowStride + target.w);
  checkSpan(mem, "implicitQuery scratch", scratchPtr, implicitScratchFloats(widths));
  const priorStride = prior?.rowStride ?? target.w;
  if (prior) {
    checkInt("prior row stride", priorStride, target.w);
    checkSpan(mem, "implicitQuery prior", prior.ptr, (target.h - 1) * priorStride + target.w);
  }
  k.exports.implicitQuery(
    proj.ptr,
    stride,
    proj.y0,
    proj.x0,
    proj.h,
    proj.w,
    proj.gridH,
    proj.gridW,
    C0,
    target.gridH,
    target.gridW,
    target.y0,
    target.x0,
    target.h,
    target.w,
    params.ptr,
    params.posDims,
    widths.length - 1,
    params.widthsPtr,
    prior?.ptr ?? 0,
    priorStride,
    out.ptr,
    rowStride,
    scratchPtr,
  );
}

function checkWindow(
  what: string,
  win: { y0: number; x0: number; h: number; w: number },
  gridH: number,
  gridW: number,
): void {
  checkInt(`${what} window height`, win.h, 1, gridH);
  checkInt(`${what} window width`, win.w, 1, gridW);
  checkInt(`${what} window row`, win.y0, 0, gridH - win.h);
  checkInt(`${what} window column`, win.x0, 0, gridW - win.w);
}

function checkCover(
  axis: string,
  start: number,
  count: number,
  [first, end]: [number, number],
): void {
  if (first < start || end > start + count) {
    throw new RangeError(
      `the proj window's ${axis} [${start}, ${start + count}) do not cover the support cells ` +
        `[${first}, ${end}) of the target window`,
    );
  }
}

/** Probabilities: out[i] = sigmoid(logits[i]) for n floats (in place allowed). */
export function logitToProb(k: KernelInstance, inPtr: number, outPtr: number, n: number): void {
  checkInt("count", n, 0);
  checkSpan(k.memory, "logitToProb input", inPtr, n);
  checkSpan(k.memory, "logitToProb output", outPtr, n);
  k.exports.logitToProb(inPtr, outPtr, n);
}

/**
 * 8-bit probabilities: out[i] = round(255 * sigmoid(logits[i])) (halves round
 * up) for n floats; `outPtr` is a byte offset of n bytes.
 */
export function sigmoidToU8(k: KernelInstance, inPtr: number, outPtr: number, n: number): void {
  checkInt("count", n, 0);
  checkSpan(k.memory, "sigmoidToU8 input", inPtr, n);
  if (!Number.isInteger(outPtr) || outPtr <= 0 || outPtr + n > k.memory.buffer.byteLength) {
    throw new RangeError(`sigmoidToU8 output: ${n} bytes at ${outPtr} overrun linear memory`);
  }
  k.exports.sigmoidToU8(inPtr, outPtr, n);
}
