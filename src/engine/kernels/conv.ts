/**
 * Typed wrapper of the convolution kernels (assembly/conv.ts): packs PyTorch
 * weights into the kernel's panel layout and runs a 2-D convolution on NHWC
 * tensors, after checking every size and every buffer (a bad call throws a
 * RangeError before the kernel can touch memory).
 *
 * @module
 */

import type { Arena, F32Buffer } from "../arena.ts";
import type { KernelInstance } from "../wasm.ts";
import { checkInt, checkSpan, spanOf } from "./check.ts";

/** An NHWC float32 tensor (or a channel slice of a wider one) in linear memory. */
export interface TensorView {
  /** byte offset of channel 0 of pixel (0, 0) */
  ptr: number;
  /** height (rows) */
  h: number;
  /** width (pixels per row) */
  w: number;
  /** channels used */
  c: number;
  /** floats between consecutive pixels (>= c); defaults to c */
  stride?: number;
}

/** Shape of a convolution's weights, PyTorch's OIHW order. */
export interface ConvShape {
  cout: number;
  cin: number;
  kh: number;
  kw: number;
}

/** Weights packed for the kernel (see `packConvWeights`). */
export interface PackedConv extends ConvShape {
  /** packed weights: `packedConvFloats(shape)` floats */
  weights: F32Buffer;
  /** bias: `cout` floats */
  bias: F32Buffer;
}

/** Zero padding on each side, in input pixels. */
export interface Padding {
  top: number;
  bottom: number;
  left: number;
  right: number;
}

/** Arguments of `conv2d`. */
export interface Conv2dArgs {
  /** input tensor; `input.c` must equal the weights' cin */
  input: TensorView;
  /** output tensor; its h, w must match the convolution's output size, `c` the weights' cout */
  output: TensorView;
  /** packed weights and bias */
  weights: PackedConv;
  /** stride (default 1) */
  stride?: number;
  /** dilation (default 1) */
  dilation?: number;
  /** symmetric padding, or per side (default: dilation * (k - 1) / 2, "same" for odd k at stride 1) */
  padding?: number | Padding;
  /** ReLU after bias and residual (default false) */
  relu?: boolean;
  /** tensor added before the ReLU; same h, w, c and stride as `output` */
  residual?: TensorView;
  /** output rows [first, end) to compute (default: all); any split gives identical results */
  rows?: [number, number];
  /**
   * `convScratchFloats(cin, kh, kw)` floats the kernel may overwrite (needs no
   * initialisation); one per worker when workers share a memory
   */
  scratch: F32Buffer;
}

const PANEL = 8;
const TILE = 6;
const MAX_KERNEL = 15;
const MAX_STEP = 16;

/** Floats of the packed weights: cout rounded up to 8, times kh * kw * cin. */
export function packedConvFloats(s: ConvShape): number {
  return Math.ceil(s.cout / PANEL) * PANEL * s.kh * s.kw * s.cin;
}

/** Floats of scratch `conv2d` needs: a zero row of cin floats (rounded to 4), 12 coordinates, 7 words per tap. */
export function convScratchFloats(cin: number, kh: number, kw: number): number {
  return Math.ceil(cin / 4) * 4 + 2 * TILE + (TILE + 1) * kh * kw;
}

/** PyTorch's output size along one axis: floor((n + before + after - d(k-1) - 1) / s) + 1. */
export function convOutSize(
  n: number,
  kernel: number,
  stride: number,
  dilation: number,
  padBefore: number,
  padAfter: number,
): number {
  return Math.floor((n + padBefore + padAfter - dilation * (kernel - 1) - 1) / stride) + 1;
}

function checkShape(s: ConvShape): void {
  checkInt("cout", s.cout);
  checkInt("cin", s.cin);
  checkInt("kh", s.kh, 1, MAX_KERNEL);
  checkInt("kw", s.kw, 1, MAX_KERNEL);
}

/**
 * Packs OIHW weights (and a bias, zeros when omitted) into a new arena buffer in
 * the kernel's panel layout. The OIHW copy is temporary and released.
 */
export function packConvWeights(
  k: KernelInstance,
  arena: Arena,
  weightOIHW: Float32Array,
  shape: ConvShape,
  bias?: Float32Array,
): PackedConv {
  checkShape(shape);
  const { cout, cin, kh, kw } = shape;
  if (weightOIHW.length !== cout * cin * kh * kw) {
    throw new RangeError(
      `weights: ${weightOIHW.length} floats, expected ${cout}x${cin}x${kh}x${kw} = ${
        cout * cin * kh * kw
      }`,
    );
  }
  if (bias && bias.length !== cout) {
    throw new RangeError(`bias: ${bias.length} floats, expected ${cout}`);
  }
  const weights = arena.f32(packedConvFloats(shape));
  const b = arena.f32(cout);
  arena.view(b).set(bias ?? new Float32Array(cout));
  const mark = arena.mark();
  const src = arena.upload(weightOIHW);
  k.exports.packConv(src.ptr, cout, cin, kh, kw, weights.ptr);
  arena.release(mark);
  return { cout, cin, kh, kw, weights, bias: b };
}

function checkTensor(k: KernelInstance, name: string, t: TensorView): number {
  checkInt(`${name}.h`, t.h);
  checkInt(`${name}.w`, t.w);
  checkInt(`${name}.c`, t.c);
  const stride = t.stride ?? t.c;
  checkInt(`${name}.stride`, stride, t.c);
  checkSpan(k.memory, name, t.ptr, spanOf(t.h, t.w, t.c, stride));
  return stride;
}

function padOf(p: number | Padding | undefined, dilation: number, kh: number, kw: number): Padding {
  if (p === undefined) {
    const y = (dilation * (kh - 1)) >> 1, x = (dilation * (kw - 1)) >> 1;
    return { top: y, bottom: y, left: x, right: x };
  }
  if (typeof p === "number") return { top: p, bottom: p, left: p, right: p };
  return p;
}

function byteRange(t: TensorView, stride: number): [number, number] {
  return [t.ptr, t.ptr + 4 * spanOf(t.h, t.w, t.c, stride)];
}

function overlaps(a: [number, number], b: [number, number]): boolean {
  return a[0] < b[1] && b[0] < a[1];
}

/**
 * 2-D convolution, NHWC: output = conv(input, weights) + bias (+ residual),
 * then ReLU when asked. Computes only `rows` of the output (for splitting one
 * convolution across workers). Returns the output size.
 */
export function conv2d(k: KernelInstance, a: Conv2dArgs): { h: number; w: number } {
  const wt = a.weights;
  checkShape(wt);
  const stride = a.stride ?? 1;
  const dilation = a.dilation ?? 1;
  checkInt("stride", stride, 1, MAX_STEP);
  checkInt("dilation", dilation, 1, MAX_STEP);
  const pad = padOf(a.padding, dilation, wt.kh, wt.kw);
  for (const side of ["top", "bottom", "left", "right"] as const) {
    checkInt(`padding.${side}`, pad[side], 0, dilation * (MAX_KERNEL - 1));
  }
  const inStride = checkTensor(k, "input", a.input);
  if (a.input.c !== wt.cin) {
    throw new RangeError(`input has ${a.input.c} channels, weights expect ${wt.cin}`);
  }
  const h = convOutSize(a.input.h, wt.kh, stride, dilation, pad.top, pad.bottom);
  const w = convOutSize(a.input.w, wt.kw, stride, dilation, pad.left, pad.right);
  if (h < 1 || w < 1) {
    throw new RangeError(
      `input ${a.input.h}x${a.input.w} is too small for a ${wt.kh}x${wt.kw} kernel`,
    );
  }
  if (a.output.h !== h || a.output.w !== w) {
    throw new RangeError(`output is ${a.output.h}x${a.output.w}, the convolution gives ${h}x${w}`);
  }
  if (a.output.c !== wt.cout) {
    throw new RangeError(`output has ${a.output.c} channels, weights give ${wt.cout}`);
  }
  const outStride = checkTensor(k, "output", a.output);
  if (overlaps(byteRange(a.input, inStride), byteRange(a.output, outStride))) {
    throw new RangeError("output overlaps input");
  }
  let resPtr = 0;
  if (a.residual) {
    const r = a.residual;
    const rStride = checkTensor(k, "residual", r);
    if (r.h !== h || r.w !== w || r.c !== wt.cout || rStride !== outStride) {
      throw new RangeError(
        `residual ${r.h}x${r.w}x${r.c} (stride ${rStride}) must match output ${h}x${w}x${wt.cout} (stride ${outStride})`,
      );
    }
    resPtr = r.ptr;
  }
  const [oy0, oy1] = a.rows ?? [0, h];
  checkInt("rows[0]", oy0, 0, h);
  checkInt("rows[1]", oy1, oy0, h);
  checkSpan(k.memory, "packed weights", wt.weights.ptr, packedConvFloats(wt));
  if (wt.weights.length < packedConvFloats(wt)) {
    throw new RangeError(
      `packed weights: ${wt.weights.length} floats, expected ${packedConvFloats(wt)}`,
    );
  }
  checkSpan(k.memory, "bias", wt.bias.ptr, wt.cout);
  const scratch = convScratchFloats(wt.cin, wt.kh, wt.kw);
  checkSpan(k.memory, "scratch", a.scratch.ptr, scratch);
  if (a.scratch.length < scratch) {
    throw new RangeError(`scratch: ${a.scratch.length} floats, conv2d needs ${scratch}`);
  }
  k.exports.conv2d(
    a.input.ptr,
    a.input.h,
    a.input.w,
    a.input.c,
    inStride,
    a.output.ptr,
    h,
    w,
    wt.cout,
    outStride,
    wt.weights.ptr,
    wt.bias.ptr,
    wt.kh,
    wt.kw,
    stride,
    dilation,
    pad.top,
    pad.left,
    a.relu ? 1 : 0,
    resPtr,
    oy0,
    oy1,
    a.scratch.ptr,
  );
  return { h, w };
}
