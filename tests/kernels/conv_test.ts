// conv2d (assembly/conv.ts via src/engine/kernels/conv.ts) against the scalar
// reference, on both builds, with odd sizes, padding, dilation, residuals,
// channel slices and row splits; plus the wrapper's argument checks.

import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import { BUILDS, type KernelBuild, randomFloats, setupKernels } from "../helpers/kernels.ts";
import type { Arena, F32Buffer } from "../../src/engine/arena.ts";
import type { KernelInstance } from "../../src/engine/wasm.ts";
import {
  conv2d,
  type Conv2dArgs,
  convOutSize,
  convScratchFloats,
  packConvWeights,
  packedConvFloats,
  type Padding,
} from "../../src/engine/kernels/conv.ts";
import { conv2dRef } from "../reference/conv.ts";

/** One convolution to test. */
interface Case {
  name: string;
  h: number;
  w: number;
  cin: number;
  cout: number;
  k: number;
  stride?: number;
  dilation?: number;
  pad?: Padding;
  relu?: boolean;
  residual?: boolean;
  /** input / output pixel strides and channel offsets (channel slices of wider buffers) */
  inStride?: number;
  inOffset?: number;
  outStride?: number;
  outOffset?: number;
}

const CASES: Case[] = [
  { name: "1x1 1->3", h: 5, w: 13, cin: 1, cout: 3, k: 1 },
  { name: "1x1 63->17 relu", h: 13, w: 5, cin: 63, cout: 17, k: 1, relu: true },
  { name: "1x1 stride 2 32->64 (down)", h: 13, w: 31, cin: 32, cout: 64, k: 1, stride: 2 },
  { name: "3x3 3->17", h: 13, w: 31, cin: 3, cout: 17, k: 3 },
  { name: "3x3 17->63 relu", h: 5, w: 13, cin: 17, cout: 63, k: 3, relu: true },
  { name: "3x3 stride 2 63->17", h: 13, w: 31, cin: 63, cout: 17, k: 3, stride: 2 },
  {
    name: "3x3 stride 2 32->64 relu",
    h: 31,
    w: 13,
    cin: 32,
    cout: 64,
    k: 3,
    stride: 2,
    relu: true,
  },
  {
    name: "3x3 dilation 2 64->128",
    h: 13,
    w: 13,
    cin: 64,
    cout: 128,
    k: 3,
    dilation: 2,
    relu: true,
  },
  { name: "3x3 dilation 4 17->9", h: 13, w: 31, cin: 17, cout: 9, k: 3, dilation: 4 },
  {
    name: "3x3 dilation 4, image smaller than the reach",
    h: 5,
    w: 3,
    cin: 3,
    cout: 5,
    k: 3,
    dilation: 4,
  },
  {
    name: "7x7 stride 2 4->32 (stem)",
    h: 31,
    w: 13,
    cin: 4,
    cout: 32,
    k: 7,
    stride: 2,
    relu: true,
  },
  { name: "7x7 stride 2 3->17, 1 px wide", h: 13, w: 1, cin: 3, cout: 17, k: 7, stride: 2 },
  { name: "3x3 on a 1x1 image", h: 1, w: 1, cin: 17, cout: 3, k: 3 },
  {
    name: "3x3 residual + relu 32->32",
    h: 13,
    w: 31,
    cin: 32,
    cout: 32,
    k: 3,
    relu: true,
    residual: true,
  },
  {
    name: "3x3 dilation 2 residual + relu 128->128",
    h: 13,
    w: 5,
    cin: 128,
    cout: 128,
    k: 3,
    dilation: 2,
    relu: true,
    residual: true,
  },
  { name: "residual without relu 17->63", h: 5, w: 13, cin: 17, cout: 63, k: 3, residual: true },
  {
    name: "channel slices in and out (fuse into a concatenation)",
    h: 13,
    w: 5,
    cin: 17,
    cout: 9,
    k: 3,
    relu: true,
    inStride: 40,
    inOffset: 5,
    outStride: 50,
    outOffset: 7,
  },
  {
    name: "1x1 into a channel slice",
    h: 5,
    w: 31,
    cin: 32,
    cout: 16,
    k: 1,
    relu: true,
    outStride: 64,
    outOffset: 16,
  },
  {
    name: "slice with residual",
    h: 5,
    w: 13,
    cin: 8,
    cout: 12,
    k: 3,
    residual: true,
    relu: true,
    outStride: 20,
    outOffset: 3,
  },
  {
    name: "asymmetric padding (strip with a halo above)",
    h: 13,
    w: 31,
    cin: 17,
    cout: 17,
    k: 3,
    pad: { top: 0, bottom: 1, left: 1, right: 1 },
  },
  {
    name: "no padding",
    h: 13,
    w: 31,
    cin: 3,
    cout: 8,
    k: 3,
    pad: { top: 0, bottom: 0, left: 0, right: 0 },
  },
];

const instances = new Map<KernelBuild, { k: KernelInstance; arena: Arena }>();
for (const build of BUILDS) instances.set(build, await setupKernels(build));

function padOf(c: Case): Padding {
  if (c.pad) return c.pad;
  const p = ((c.dilation ?? 1) * (c.k - 1)) >> 1;
  return { top: p, bottom: p, left: p, right: p };
}

/** Prepared buffers of one case: inputs uploaded, output filled with a sentinel. */
function prepare(k: KernelInstance, arena: Arena, c: Case, seed: number) {
  const pad = padOf(c);
  const stride = c.stride ?? 1, dilation = c.dilation ?? 1;
  const oh = convOutSize(c.h, c.k, stride, dilation, pad.top, pad.bottom);
  const ow = convOutSize(c.w, c.k, stride, dilation, pad.left, pad.right);
  const input = randomFloats(c.h * c.w * c.cin, seed);
  const weight = randomFloats(c.cout * c.cin * c.k * c.k, seed + 1);
  const bias = randomFloats(c.cout, seed + 2);
  const residual = c.residual ? randomFloats(oh * ow * c.cout, seed + 3) : undefined;
  const inStride = c.inStride ?? c.cin, inOffset = c.inOffset ?? 0;
  const outStride = c.outStride ?? c.cout, outOffset = c.outOffset ?? 0;
  // the wide input buffer: other channels hold random junk the conv must ignore
  const wideIn = randomFloats(c.h * c.w * inStride, seed + 4, -100, 100);
  for (let p = 0; p < c.h * c.w; p++) {
    for (let ch = 0; ch < c.cin; ch++) wideIn[p * inStride + inOffset + ch] = input[p * c.cin + ch];
  }
  const inBuf = arena.upload(wideIn);
  const packed = packConvWeights(
    k,
    arena,
    weight,
    { cout: c.cout, cin: c.cin, kh: c.k, kw: c.k },
    bias,
  );
  const sentinel = randomFloats(oh * ow * outStride, seed + 5, 1000, 2000);
  const outBuf = arena.upload(sentinel);
  let resBuf: F32Buffer | undefined;
  if (residual) {
    const wide = randomFloats(oh * ow * outStride, seed + 6, -100, 100);
    for (let p = 0; p < oh * ow; p++) {
      for (let ch = 0; ch < c.cout; ch++) {
        wide[p * outStride + outOffset + ch] = residual[p * c.cout + ch];
      }
    }
    resBuf = arena.upload(wide);
  }
  const scratch = arena.f32(convScratchFloats(c.cin, c.k, c.k));
  const args: Conv2dArgs = {
    input: { ptr: inBuf.ptr + 4 * inOffset, h: c.h, w: c.w, c: c.cin, stride: inStride },
    output: { ptr: outBuf.ptr + 4 * outOffset, h: oh, w: ow, c: c.cout, stride: outStride },
    weights: packed,
    stride,
    dilation,
    padding: pad,
    relu: c.relu ?? false,
    residual: resBuf
      ? { ptr: resBuf.ptr + 4 * outOffset, h: oh, w: ow, c: c.cout, stride: outStride }
      : undefined,
    scratch,
  };
  const ref = conv2dRef({
    input,
    h: c.h,
    w: c.w,
    cin: c.cin,
    weight,
    bias,
    cout: c.cout,
    kh: c.k,
    kw: c.k,
    stride,
    dilation,
    pad,
    relu: c.relu ?? false,
    residual,
  });
  return { args, ref, oh, ow, outBuf, sentinel, outStride, outOffset };
}

/** Compares the slice to the reference (relative to each value's magnitude) and the rest to the sentinel. */
function check(c: Case, got: Float32Array, p: ReturnType<typeof prepare>, label: string): void {
  const { ref, outStride, outOffset, sentinel } = p;
  let worst = 0;
  for (let q = 0; q < p.oh * p.ow; q++) {
    for (let ch = 0; ch < outStride; ch++) {
      const g = got[q * outStride + ch];
      const o = ch - outOffset;
      if (o < 0 || o >= c.cout) {
        if (g !== sentinel[q * outStride + ch]) {
          throw new Error(`${label}: wrote outside its slice at pixel ${q}, channel ${ch}`);
        }
        continue;
      }
      const i = q * c.cout + o;
      const err = Math.abs(g - ref.out[i]) / (ref.magnitude[i] + 1e-30);
      worst = Math.max(worst, err);
      if (!(err <= 1e-5)) {
        throw new Error(
          `${label}: pixel ${q} channel ${o}: got ${g}, expected ${ref.out[i]} (rel err ${err})`,
        );
      }
    }
  }
  assert(worst <= 1e-5);
}

for (const build of BUILDS) {
  Deno.test(`conv2d matches the scalar reference (${build})`, async (t) => {
    const { k, arena } = instances.get(build)!;
    let seed = 100;
    for (const c of CASES) {
      await t.step(c.name, () => {
        const mark = arena.mark();
        const p = prepare(k, arena, c, seed += 10);
        const size = conv2d(k, p.args);
        assertEquals(size, { h: p.ref.h, w: p.ref.w });
        check(c, arena.view(p.outBuf).slice(), p, `${build} ${c.name}`);
        arena.release(mark);
      });
    }
  });

  Deno.test(`conv2d row splits are bit-identical to one call (${build})`, () => {
    const { k, arena } = instances.get(build)!;
    let seed = 500;
    for (const c of CASES) {
      const mark = arena.mark();
      const p = prepare(k, arena, c, seed += 10);
      conv2d(k, p.args);
      const whole = arena.view(p.outBuf).slice();
      const splits = [[0, 1], [Math.floor(p.oh / 2)], [1, 2, p.oh - 1], [
        Math.floor(p.oh / 3),
        Math.floor((2 * p.oh) / 3),
      ]];
      for (const cuts of splits) {
        arena.view(p.outBuf).set(p.sentinel);
        const bounds = [0, ...cuts.filter((x) => x > 0 && x < p.oh), p.oh];
        // compute the pieces in reverse order: order must not matter either
        for (let i = bounds.length - 2; i >= 0; i--) {
          conv2d(k, { ...p.args, rows: [bounds[i], bounds[i + 1]] });
        }
        const pieces = arena.view(p.outBuf);
        for (let i = 0; i < whole.length; i++) {
          if (!Object.is(pieces[i], whole[i])) {
            throw new Error(`${c.name}: split ${bounds} differs at ${i}`);
          }
        }
      }
      arena.release(mark);
    }
  });
}

Deno.test("relaxed and plain builds agree within rounding", () => {
  const outs: Float32Array[] = [];
  const c = CASES.find((x) => x.name.startsWith("3x3 dilation 2 64"))!;
  for (const build of BUILDS) {
    const { k, arena } = instances.get(build)!;
    const mark = arena.mark();
    const p = prepare(k, arena, c, 77);
    conv2d(k, p.args);
    outs.push(arena.view(p.outBuf).slice());
    arena.release(mark);
  }
  for (let i = 0; i < outs[0].length; i++) {
    assert(Math.abs(outs[0][i] - outs[1][i]) <= 1e-4 * Math.max(1, Math.abs(outs[1][i])));
  }
});

Deno.test("packed layout: sizes agree with the module, panels zero-padded", () => {
  const { k, arena } = instances.get("relaxed-simd")!;
  for (const [cout, cin, kh, kw] of [[1, 1, 1, 1], [17, 3, 3, 3], [32, 4, 7, 7], [63, 17, 1, 1]]) {
    const s = { cout, cin, kh, kw };
    assertEquals(packedConvFloats(s), k.exports.packedConvFloats(cout, cin, kh, kw));
    assertEquals(convScratchFloats(cin, kh, kw), k.exports.convScratchFloats(cin, kh, kw));
  }
  const mark = arena.mark();
  const w = randomFloats(3 * 2 * 2 * 2, 9);
  const packed = arena.view(
    packConvWeights(k, arena, w, { cout: 3, cin: 2, kh: 2, kw: 2 }).weights,
  );
  assertEquals(packed.length, 8 * 8);
  for (let ky = 0; ky < 2; ky++) {
    for (let kx = 0; kx < 2; kx++) {
      for (let c = 0; c < 2; c++) {
        for (let o = 0; o < 8; o++) {
          const want = o < 3 ? w[((o * 2 + c) * 2 + ky) * 2 + kx] : 0;
          assertEquals(packed[((ky * 2 + kx) * 2 + c) * 8 + o], want);
        }
      }
    }
  }
  arena.release(mark);
});

Deno.test("conv2d rejects bad arguments with a RangeError", () => {
  const { k, arena } = instances.get("relaxed-simd")!;
  const mark = arena.mark();
  const c: Case = { name: "base", h: 13, w: 5, cin: 17, cout: 9, k: 3, residual: true, relu: true };
  const p = prepare(k, arena, c, 3);
  const a = p.args;
  conv2d(k, a); // the base call is fine
  const bytes = k.memory.buffer.byteLength;
  const bad: [string, Conv2dArgs, RegExp][] = [
    ["negative height", { ...a, input: { ...a.input, h: -13 } }, /input\.h/],
    ["fractional width", { ...a, input: { ...a.input, w: 4.5 } }, /input\.w/],
    ["mismatched input channels", { ...a, input: { ...a.input, c: 16 } }, /channels/],
    ["mismatched output channels", { ...a, output: { ...a.output, c: 8 } }, /channels/],
    ["wrong output size", { ...a, output: { ...a.output, h: 12 } }, /output is 12x5/],
    ["stride below channels", { ...a, input: { ...a.input, stride: 16 } }, /input\.stride/],
    ["input overruns memory", { ...a, input: { ...a.input, ptr: bytes - 64 } }, /overrun/],
    ["output overruns memory", { ...a, output: { ...a.output, ptr: bytes - 64 } }, /overrun/],
    ["null output", { ...a, output: { ...a.output, ptr: 0 } }, /bad pointer/],
    [
      "residual overruns memory",
      { ...a, residual: { ...a.residual!, ptr: bytes - 64 } },
      /overrun/,
    ],
    ["residual of another size", { ...a, residual: { ...a.residual!, w: 4 } }, /residual/],
    ["packed weights overrun memory", {
      ...a,
      weights: { ...a.weights, weights: { ptr: bytes - 64, length: 1e6 } },
    }, /packed weights/],
    ["packed weights too short", {
      ...a,
      weights: { ...a.weights, weights: { ...a.weights.weights, length: 10 } },
    }, /packed weights/],
    ["bias overruns memory", {
      ...a,
      weights: { ...a.weights, bias: { ptr: bytes - 8, length: 9 } },
    }, /bias/],
    ["scratch too small", { ...a, scratch: { ptr: a.scratch.ptr, length: 5 } }, /scratch/],
    ["rows past the end", { ...a, rows: [0, p.oh + 1] }, /rows/],
    ["rows reversed", { ...a, rows: [5, 2] }, /rows/],
    ["stride 0", { ...a, stride: 0 }, /stride/],
    ["negative padding", { ...a, padding: -1 }, /padding/],
    [
      "kernel larger than the padded input",
      { ...a, input: { ...a.input, h: 1 }, padding: 0 },
      /too small/,
    ],
    ["output over input", { ...a, output: { ...a.output, ptr: a.input.ptr } }, /overlaps/],
  ];
  for (const [what, args, msg] of bad) {
    assertThrows(
      () => conv2d(k, args),
      (e: Error) => e instanceof RangeError && msg.test(e.message),
      what,
    );
  }
  assertThrows(
    () => packConvWeights(k, arena, new Float32Array(10), { cout: 2, cin: 2, kh: 3, kw: 3 }),
    RangeError,
  );
  assertThrows(
    () => packConvWeights(k, arena, new Float32Array(0), { cout: 0, cin: 2, kh: 3, kw: 3 }),
    RangeError,
  );
  assertThrows(
    () =>
      packConvWeights(
        k,
        arena,
        new Float32Array(18),
        { cout: 1, cin: 2, kh: 3, kw: 3 },
        new Float32Array(2),
      ),
    RangeError,
  );
  arena.release(mark);
});
