// maxpool3x3s2 (assembly/pool.ts via src/engine/kernels/pool.ts) against the
// scalar reference on both builds: odd sizes and channel counts, all-negative
// inputs (zero padding would win there; -inf padding must not), row splits,
// and the wrapper's argument checks.

import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { BUILDS, randomFloats, setupKernels } from "../helpers/kernels.ts";
import { maxPool3x3s2, maxPoolOutSize } from "../../src/engine/kernels/pool.ts";
import { maxPoolRef } from "../reference/pool.ts";

const SIZES: [number, number][] = [[1, 1], [2, 2], [1, 5], [5, 13], [13, 31], [31, 13], [6, 8]];
const CHANNELS = [1, 3, 4, 17, 32, 63];

for (const build of BUILDS) {
  Deno.test(`maxpool3x3s2 equals the reference exactly (${build})`, async () => {
    const { k, arena } = await setupKernels(build);
    let seed = 1;
    for (const [h, w] of SIZES) {
      for (const c of CHANNELS) {
        // negative values: a zero-padded pool would return 0 at the borders
        const [lo, hi] = seed % 2 ? [-2, -1] : [-1, 1];
        const data = randomFloats(h * w * c, seed++, lo, hi);
        const ref = maxPoolRef(data, h, w, c);
        const mark = arena.mark();
        const input = arena.upload(data);
        const output = arena.f32(ref.out.length);
        const size = maxPool3x3s2(k, {
          input: { ptr: input.ptr, h, w, c },
          output: { ptr: output.ptr, h: ref.h, w: ref.w, c },
        });
        assertEquals(size, { h: ref.h, w: ref.w });
        assertEquals(arena.view(output), ref.out, `${h}x${w}x${c}`);
        // rows computed in pieces, in any order, give the same tensor
        arena.view(output).fill(7);
        const cut = Math.floor(ref.h / 2);
        maxPool3x3s2(k, {
          input: { ptr: input.ptr, h, w, c },
          output: { ptr: output.ptr, h: ref.h, w: ref.w, c },
          rows: [cut, ref.h],
        });
        maxPool3x3s2(k, {
          input: { ptr: input.ptr, h, w, c },
          output: { ptr: output.ptr, h: ref.h, w: ref.w, c },
          rows: [0, cut],
        });
        assertEquals(arena.view(output), ref.out, `split ${h}x${w}x${c}`);
        arena.release(mark);
      }
    }
  });
}

Deno.test("maxPoolOutSize follows PyTorch (k 3, s 2, p 1)", () => {
  for (const [n, want] of [[1, 1], [2, 1], [3, 2], [4, 2], [5, 3], [480, 240], [481, 241]]) {
    assertEquals(maxPoolOutSize(n), want);
  }
});

Deno.test("maxPool3x3s2 rejects bad arguments with a RangeError", async () => {
  const { k, arena } = await setupKernels();
  const input = arena.upload(randomFloats(5 * 7 * 3, 4));
  const output = arena.f32(3 * 4 * 3);
  const ok = {
    input: { ptr: input.ptr, h: 5, w: 7, c: 3 },
    output: { ptr: output.ptr, h: 3, w: 4, c: 3 },
  };
  maxPool3x3s2(k, ok);
  const bytes = k.memory.buffer.byteLength;
  const bad = [
    { ...ok, input: { ...ok.input, h: -5 } },
    { ...ok, input: { ...ok.input, c: 0 } },
    { ...ok, output: { ...ok.output, w: 3 } },
    { ...ok, output: { ...ok.output, c: 4 } },
    { ...ok, input: { ...ok.input, stride: 4 } },
    { ...ok, input: { ...ok.input, ptr: bytes - 16 } },
    { ...ok, output: { ...ok.output, ptr: bytes - 16 } },
    { ...ok, output: { ...ok.output, ptr: input.ptr + 4 } },
    { ...ok, rows: [0, 4] as [number, number] },
    { ...ok, rows: [-1, 2] as [number, number] },
  ];
  for (const args of bad) {
    assertThrows(() => maxPool3x3s2(k, args), RangeError, JSON.stringify(args));
  }
});
