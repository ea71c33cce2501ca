// Resizing kernels against the scalar reference (tests/reference/resize.ts)
// and PyTorch's outputs (tests/fixtures/resize_small.json, from
// train/make_resize_fixture.py), on both builds.
import { ok as assert, throws } from "node:assert/strict";
import { BUILDS, randomFloats, setupKernels } from "../helpers/kernels.ts";
import type { Arena, KernelInstance } from "../helpers/kernels.ts";
import { resizeAreaRef, resizeBilinearRef } from "../reference/resize.ts";
import {
  type ImageRef,
  resize,
  resizeArea,
  resizeBilinear,
  resizeModeFor,
} from "../../src/engine/kernels/resize.ts";

type Mode = "area" | "bilinear";
const REF = { area: resizeAreaRef, bilinear: resizeBilinearRef };
const KERNEL = { area: resizeArea, bilinear: resizeBilinear };

/** Largest |a - e| / (|e| + 1): relative for large values, absolute near zero. */
function maxErr(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert(actual.length === expected.length, `length ${actual.length} vs ${expected.length}`);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.abs(actual[i] - expected[i]) / (Math.abs(expected[i]) + 1);
    worst = Number.isNaN(e) ? Infinity : Math.max(worst, e);
  }
  return worst;
}

/** Runs the kernel on a dense image; returns the dense output. */
function run(
  k: KernelInstance,
  arena: Arena,
  mode: Mode,
  x: Float32Array,
  inH: number,
  inW: number,
  C: number,
  outH: number,
  outW: number,
): Float32Array {
  const mark = arena.mark();
  const src = arena.upload(x);
  const dst = arena.f32(outH * outW * C);
  KERNEL[mode](k, { ptr: src.ptr, h: inH, w: inW, channels: C }, {
    ptr: dst.ptr,
    h: outH,
    w: outW,
    channels: C,
  });
  const out = arena.view(dst).slice();
  arena.release(mark);
  return out;
}

interface Fixture {
  cases: {
    in: [number, number, number];
    out: [number, number];
    mode: Mode;
    x: number[];
    y: number[];
  }[];
}
const fixture: Fixture = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/resize_small.json", import.meta.url)),
);

/** Count of values that differ from PyTorch's float32 output. */
function mismatches(actual: ArrayLike<number>, expected: number[]): number {
  let n = 0;
  for (let i = 0; i < expected.length; i++) if (actual[i] !== Math.fround(expected[i])) n++;
  return n;
}

/**
 * PyTorch runs 1-channel tensors through its channels-last kernel, whose
 * bilinear rounding differs from the contiguous kernel's by an ulp or two.
 */
const exactCase = (c: Fixture["cases"][number]) => c.mode === "area" || c.in[2] > 1;

Deno.test("resize reference matches PyTorch (model.py resize)", () => {
  for (const c of fixture.cases) {
    const [ih, iw, C] = c.in, [oh, ow] = c.out;
    assert(resizeModeFor(ih, iw, oh, ow) === c.mode);
    const got = REF[c.mode](new Float32Array(c.x), ih, iw, C, oh, ow);
    const err = maxErr(got, c.y);
    assert(err < 1e-6, `${c.mode} ${c.in} -> ${c.out}: err ${err}`);
    if (exactCase(c)) assert(mismatches(got, c.y) === 0, `${c.mode} ${c.in} -> ${c.out} not exact`);
  }
});

for (const build of BUILDS) {
  Deno.test(`resize kernels match PyTorch (${build})`, async () => {
    const { k, arena } = await setupKernels(build);
    for (const c of fixture.cases) {
      const [ih, iw, C] = c.in, [oh, ow] = c.out;
      const src = arena.upload(new Float32Array(c.x));
      const dst = arena.f32(oh * ow * C);
      resize(k, { ptr: src.ptr, h: ih, w: iw, channels: C }, {
        ptr: dst.ptr,
        h: oh,
        w: ow,
        channels: C,
      });
      const err = maxErr(arena.view(dst), c.y);
      assert(err < 1e-5, `${c.mode} ${c.in} -> ${c.out}: err ${err}`);
      // with fused multiply-add (relaxed build, or fewer than 4 channels), bit for bit
      if (exactCase(c) && (build === "relaxed-simd" || C < 4)) {
        assert(mismatches(arena.view(dst), c.y) === 0, `${c.mode} ${c.in} -> ${c.out} not exact`);
      }
    }
  });

  Deno.test(`resize kernels match the reference on odd sizes (${build})`, async () => {
    const { k, arena } = await setupKernels(build);
    const sizes: [number, number, number, number][] = [
      [7, 9, 16, 21], // up 2.29x / 2.33x
      [10, 6, 20, 12], // up 2x
      [5, 11, 23, 13], // up 4.6x / 1.18x
      [19, 23, 8, 10], // down 2.375x / 2.3x
      [24, 18, 6, 9], // down 4x / 2x
      [13, 9, 13, 4], // same height, down in x
      [9, 14, 4, 30], // down in y, up in x
      [1, 1, 3, 5], // from a single pixel
      [8, 8, 1, 1], // to a single pixel
    ];
    let seed = 1;
    for (const C of [1, 3, 4, 17, 63]) {
      for (const [ih, iw, oh, ow] of sizes) {
        const x = randomFloats(ih * iw * C, seed++, -3, 3);
        for (const mode of ["area", "bilinear"] as const) {
          const got = run(k, arena, mode, x, ih, iw, C, oh, ow);
          const err = maxErr(got, REF[mode](x, ih, iw, C, oh, ow));
          assert(err < 1e-5, `${mode} C=${C} ${ih}x${iw} -> ${oh}x${ow}: err ${err}`);
        }
      }
    }
  });

  Deno.test(`bilinear at equal sizes is an exact copy (${build})`, async () => {
    const { k, arena } = await setupKernels(build);
    for (const C of [1, 6]) {
      const x = randomFloats(5 * 4 * C, 90 + C, -2, 2);
      const got = run(k, arena, "bilinear", x, 5, 4, C, 5, 4);
      assert(got.every((v, i) => Object.is(v, x[i])), `C=${C}: not a copy`);
    }
  });

  Deno.test(`resize row splits are bit-identical; strides address channel slices (${build})`, async () => {
    const { k, arena } = await setupKernels(build);
    const [ih, iw, C, oh, ow] = [11, 13, 17, 25, 29];
    for (const mode of ["area", "bilinear"] as const) {
      const [H, W] = mode === "area" ? [5, 6] : [oh, ow];
      const x = randomFloats(ih * iw * C, 40, -2, 2);
      const whole = run(k, arena, mode, x, ih, iw, C, H, W);
      // the source is a slice of a 20-channel image, the output a slice of a 24-channel one
      const wide = new Float32Array(ih * iw * 20).fill(NaN);
      for (let p = 0; p < ih * iw; p++) wide.set(x.subarray(p * C, p * C + C), p * 20 + 2);
      const src = arena.upload(wide);
      const dst = arena.upload(new Float32Array(H * W * 24).fill(-7));
      const s: ImageRef = { ptr: src.ptr + 8, h: ih, w: iw, channels: C, stride: 20 };
      const d: ImageRef = { ptr: dst.ptr + 12, h: H, w: W, channels: C, stride: 24 };
      // rows in three calls, in a scrambled order
      const cut1 = Math.floor(H / 3), cut2 = Math.floor((2 * H) / 3);
      KERNEL[mode](k, s, d, [cut2, H]);
      KERNEL[mode](k, s, d, [0, cut1]);
      KERNEL[mode](k, s, d, [cut1, cut1]);
      KERNEL[mode](k, s, d, [cut1, cut2]);
      const out = arena.view(dst);
      for (let p = 0; p < H * W; p++) {
        for (let c = 0; c < 24; c++) {
          const v = out[p * 24 + c];
          if (c >= 3 && c < 3 + C) {
            assert(Object.is(v, whole[p * C + c - 3]), `${mode} pixel ${p} channel ${c - 3}`);
          } else assert(v === -7, `${mode}: channel ${c} outside the slice was written`);
        }
      }
    }
  });

  Deno.test(`resize checks its arguments (${build})`, async () => {
    const { k, arena } = await setupKernels(build);
    const a = arena.f32(6 * 6 * 3), b = arena.f32(4 * 4 * 3);
    const src: ImageRef = { ptr: a.ptr, h: 6, w: 6, channels: 3 };
    const dst: ImageRef = { ptr: b.ptr, h: 4, w: 4, channels: 3 };
    throws(() => resizeArea(k, src, { ...dst, channels: 2 }), RangeError);
    throws(() => resizeArea(k, { ...src, h: 0 }, dst), RangeError);
    throws(() => resizeArea(k, src, { ...dst, w: 2.5 }), RangeError);
    throws(() => resizeArea(k, { ...src, stride: 2 }, dst), RangeError);
    throws(() => resizeArea(k, src, dst, [3, 2]), RangeError);
    throws(() => resizeArea(k, src, dst, [0, 5]), RangeError);
    throws(() => resizeBilinear(k, src, { ...dst, ptr: 0 }), RangeError);
    throws(() => resizeBilinear(k, src, { ...dst, ptr: b.ptr + 2 }), RangeError);
    const end = k.memory.buffer.byteLength;
    throws(() => resizeBilinear(k, { ...src, ptr: end - 16 }, dst), RangeError);
    throws(() => resizeArea(k, src, { ...dst, ptr: end - 16 }), RangeError);
    resizeArea(k, src, dst); // the valid call passes
  });
}
