/**
 * Shared setup for kernel tests: compile + instantiate one build of the kernel
 * module, an Arena over its memory, and a seeded PRNG for test inputs.
 *
 * @module
 */
import {
  compileKernels,
  instantiateKernels,
  type KernelBuild,
  type KernelInstance,
} from "../../src/engine/wasm.ts";
import { Arena } from "../../src/engine/arena.ts";

export type { KernelBuild, KernelInstance };
export { Arena };

/** Both builds, for tests that run every kernel on each. */
export const BUILDS: readonly KernelBuild[] = ["relaxed-simd", "simd"];

/**
 * Compiles and instantiates `build` (the best one this runtime supports when
 * omitted) over a fresh memory, with an Arena starting at the module's heap base.
 */
export async function setupKernels(
  build?: KernelBuild,
): Promise<{ k: KernelInstance; arena: Arena }> {
  const k = instantiateKernels(await compileKernels(build));
  const arena = new Arena(k.memory, k.exports.heapBase());
  return { k, arena };
}

/** A mulberry32 generator: deterministic floats in [0, 1) from a 32-bit seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` seeded uniform floats in [lo, hi). */
export function randomFloats(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const rand = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rand();
  return out;
}
