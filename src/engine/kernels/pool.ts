/**
 * Typed wrapper of the 3x3 stride-2 max-pool (assembly/pool.ts), padding 1,
 * NHWC with contiguous channels.
 *
 * @module
 */

import type { KernelInstance } from "../wasm.ts";
import { checkInt, checkSpan, spanOf } from "./check.ts";
import type { TensorView } from "./conv.ts";

/** Output size of the 3x3/2 pool with padding 1 along one axis: floor((n - 1) / 2) + 1. */
export function maxPoolOutSize(n: number): number {
  return Math.floor((n - 1) / 2) + 1;
}

/** Arguments of `maxPool3x3s2`. */
export interface MaxPoolArgs {
  /** input tensor (channels contiguous: stride = c) */
  input: TensorView;
  /** output tensor: `maxPoolOutSize` of the input, same channels, contiguous */
  output: TensorView;
  /** output rows [first, end) to compute (default: all) */
  rows?: [number, number];
}

function checkDense(k: KernelInstance, name: string, t: TensorView): void {
  checkInt(`${name}.h`, t.h);
  checkInt(`${name}.w`, t.w);
  checkInt(`${name}.c`, t.c);
  if (t.stride !== undefined && t.stride !== t.c) {
    throw new RangeError(
      `${name}: the max-pool needs contiguous channels (stride ${t.stride} != c ${t.c})`,
    );
  }
  checkSpan(k.memory, name, t.ptr, spanOf(t.h, t.w, t.c, t.c));
}

/** 3x3 max-pool, stride 2, padding 1 (padding never wins). Returns the output size. */
export function maxPool3x3s2(k: KernelInstance, a: MaxPoolArgs): { h: number; w: number } {
  checkDense(k, "input", a.input);
  checkDense(k, "output", a.output);
  const h = maxPoolOutSize(a.input.h), w = maxPoolOutSize(a.input.w);
  if (a.output.h !== h || a.output.w !== w || a.output.c !== a.input.c) {
    throw new RangeError(
      `output is ${a.output.h}x${a.output.w}x${a.output.c}, the pool gives ${h}x${w}x${a.input.c}`,
    );
  }
  const inEnd = a.input.ptr + 4 * spanOf(a.input.h, a.input.w, a.input.c, a.input.c);
  const outEnd = a.output.ptr + 4 * spanOf(h, w, a.input.c, a.input.c);
  if (a.input.ptr < outEnd && a.output.ptr < inEnd) throw new RangeError("output overlaps input");
  const [oy0, oy1] = a.rows ?? [0, h];
  checkInt("rows[0]", oy0, 0, h);
  checkInt("rows[1]", oy1, oy0, h);
  k.exports.maxpool3x3s2(
    a.input.ptr,
    a.input.h,
    a.input.w,
    a.input.c,
    a.output.ptr,
    h,
    w,
    oy0,
    oy1,
  );
  return { h, w };
}
