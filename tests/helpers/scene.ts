/**
 * Fixtures for the scheduler tests: a small synthetic photo with structure
 * at several scales, soft blob-shaped coarse masks, and a network on a fresh
 * kernel instance.
 *
 * @module
 */

import { compileKernels, instantiateKernels, type KernelBuild } from "../../src/engine/wasm.ts";
import { Arena } from "../../src/engine/arena.ts";
import { loadNetwork } from "../../src/model/network.ts";
import { loadModelWeights } from "../../src/weights/model_weights.ts";
import { type UnitContext, unitContext } from "../../src/pipeline/unit.ts";
import type { Mask, RgbImage } from "../../src/types.ts";
import { mulberry32 } from "./kernels.ts";

/** The shipped weights' bytes. */
export const WEIGHTS = await Deno.readFile(
  new URL("../../weights/crm-lite.safetensors", import.meta.url),
);

/** A network with the shipped weights on a fresh instance of `build`, ready to run units. */
export async function unitSetup(build: KernelBuild = "relaxed-simd"): Promise<UnitContext> {
  const k = instantiateKernels(await compileKernels(build));
  const net = loadNetwork(
    k,
    new Arena(k.memory, k.exports.heapBase()),
    loadModelWeights(WEIGHTS, "weights"),
  );
  return unitContext(net);
}

/** A `width` x `height` photo-like image: gradients, stripes and noise, a bright disc (the "object"). */
export function sceneImage(width: number, height: number, channels: 3 | 4 = 3, seed = 7): RgbImage {
  const rand = mulberry32(seed);
  const data = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const inside =
        Math.hypot((x - 0.5 * width) / (0.3 * width), (y - 0.55 * height) / (0.32 * height)) < 1;
      for (let c = 0; c < 3; c++) {
        const base = inside ? 190 - 40 * c : 60 + 50 * Math.sin(x / (9 + 4 * c)) + 0.2 * y;
        data[(y * width + x) * channels + c] = Math.max(
          0,
          Math.min(255, Math.round(base + 30 * (rand() - 0.5))),
        );
      }
      if (channels === 4) data[(y * width + x) * 4 + 3] = 255;
    }
  }
  return { width, height, channels, data };
}

/** A soft elliptical blob roughly over the scene's object, at any size. */
export function blobMask(width: number, height: number): Mask {
  const data = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const d = Math.hypot(((x + 0.5) / width - 0.52) / 0.28, ((y + 0.5) / height - 0.53) / 0.3);
      data[y * width + x] = Math.max(0, Math.min(255, Math.round(255 * (1.15 - d) * 4)));
    }
  }
  return { width, height, data };
}

/** Indices where two arrays differ (as bit patterns for floats), at most `max` of them. */
export function differences(a: ArrayLike<number>, b: ArrayLike<number>, max = 5): number[] {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  const out: number[] = [];
  for (let i = 0; i < a.length && out.length < max; i++) {
    if (!Object.is(a[i], b[i])) out.push(i);
  }
  return out;
}

/** `n` deterministic pseudo-random bytes (a linear congruential generator seeded with `seed`). */
export function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}
