import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  chooseBuild,
  compileKernels,
  instantiateKernels,
  supportsRelaxedSimd,
  supportsSimd,
} from "../src/engine/wasm.ts";
import { Arena } from "../src/engine/arena.ts";

Deno.test("feature probes validate as real modules", () => {
  assert(supportsSimd(), "this runtime (Deno/V8) supports SIMD");
  // V8 ships relaxed SIMD: the relaxed build must be the one chosen here
  assertEquals(supportsRelaxedSimd(), true);
  assertEquals(chooseBuild(), "relaxed-simd");
  assertEquals(chooseBuild("simd"), "simd");
});

Deno.test("both builds load and run a kernel with identical results", async () => {
  const x = new Float32Array([-3.5, -0.25, 0.75, 2, 9.5]);
  const results = [];
  for (const build of ["relaxed-simd", "simd"] as const) {
    const k = instantiateKernels(await compileKernels(build));
    assertEquals(k.build, build);
    const arena = new Arena(k.memory, k.exports.heapBase());
    const a = arena.upload(x);
    const b = arena.f32(x.length);
    k.exports.sigmoid(a.ptr, b.ptr, x.length);
    results.push(Array.from(arena.view(b)));
  }
  assertEquals(results[0], results[1]);
  results[0].forEach((p, i) => assert(Math.abs(p - 1 / (1 + Math.exp(-x[i]))) < 1e-6));
});

Deno.test("arena aligns, grows memory and releases in stack order", async () => {
  const k = instantiateKernels(await compileKernels());
  const arena = new Arena(k.memory, k.exports.heapBase());
  const mark = arena.mark();
  const a = arena.f32(3);
  const big = arena.f32(5_000_000); // forces memory.grow
  assertEquals(a.ptr % 16, 0);
  assertEquals(big.ptr % 16, 0);
  assert(k.memory.buffer.byteLength >= big.ptr + 4 * big.length);
  arena.release(mark);
  assertEquals(arena.f32(1).ptr, a.ptr);
});
