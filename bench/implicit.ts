/**
 * Speed of the CAM + implicit-function kernel (assembly/cam.ts): pixels/s of
 * `implicitQuery` on one worker, for each build, and the effective GFLOP/s
 * (per pixel: 4 supports x (6*w0 positional + sum in*out of the hidden layers
 * + the output layer) multiply-adds, 2 flops each). Prints a markdown table
 * of the median wall time and the median CPU time of the process per run
 * (on a busy machine the CPU time is the steadier measure of the kernel).
 *
 * Usage: deno run -A bench/implicit.ts [--runs N] [--size T] [--widths 32,32,32]
 *   (default: a 1024x1024 target window from a 512x512 proj grid, widths
 *   32,32,32, median of 7 runs)
 *
 * @module
 */

import process from "node:process";
import { compileKernels, instantiateKernels, type KernelBuild } from "../src/engine/wasm.ts";
import { Arena } from "../src/engine/arena.ts";
import {
  implicitQuery,
  implicitScratchFloats,
  uploadImplicitParams,
} from "../src/engine/kernels/cam.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}

const RUNS = Number(arg("runs", "7"));
const SIZE = Number(arg("size", "1024"));
const WIDTHS = arg("widths", "32,32,32").split(",").map(Number);
const FEAT = SIZE / 2;

/** Seeded uniform floats in [lo, hi) (xorshift; the bench needs no test helpers). */
function floats(n: number, seed: number, lo: number, hi: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = lo + ((s >>> 0) / 4294967296) * (hi - lo);
  }
  return out;
}

/** Multiply-adds per target pixel, as the task counts them. */
function macsPerPixel(widths: number[]): number {
  let n = 6 * widths[0];
  for (let l = 1; l < widths.length; l++) n += widths[l - 1] * widths[l];
  return 4 * (n + widths[widths.length - 1]);
}

/** The decoder tensors under their safetensors names, random. */
function tensors(widths: number[]): (name: string) => Float32Array | undefined {
  const t: Record<string, Float32Array> = {
    "mlp.pos.weight": floats(widths[0] * 6, 1, -1, 1),
    "mlp.out.weight": floats(widths[widths.length - 1], 2, -0.3, 0.3),
    "mlp.out.bias": floats(1, 3, -0.1, 0.1),
  };
  for (let l = 1; l < widths.length; l++) {
    const s = 1 / Math.sqrt(widths[l - 1]);
    t[`mlp.hidden${l - 1}.weight`] = floats(widths[l] * widths[l - 1], 10 + l, -s, s);
    t[`mlp.hidden${l - 1}.bias`] = floats(widths[l], 20 + l, -s, s);
  }
  return (name) => t[name];
}

/** Wall and CPU seconds of each run. */
async function bench(build: KernelBuild): Promise<{ wall: number[]; cpu: number[] }> {
  const k = instantiateKernels(await compileKernels(build));
  const arena = new Arena(k.memory, k.exports.heapBase());
  const params = uploadImplicitParams(arena, WIDTHS, tensors(WIDTHS));
  const proj = arena.upload(floats(FEAT * FEAT * WIDTHS[0], 4, -1, 1));
  const out = arena.f32(SIZE * SIZE);
  const scratch = arena.f32(implicitScratchFloats(WIDTHS));
  const run = () =>
    implicitQuery(
      k,
      { ptr: proj.ptr, gridH: FEAT, gridW: FEAT, y0: 0, x0: 0, h: FEAT, w: FEAT },
      { gridH: SIZE, gridW: SIZE, y0: 0, x0: 0, h: SIZE, w: SIZE },
      params,
      { ptr: out.ptr },
      scratch.ptr,
    );
  run(); // warm-up (tier-up of the module)
  const wall: number[] = [], cpu: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = performance.now(), c0 = process.cpuUsage();
    run();
    const c = process.cpuUsage(c0);
    wall.push((performance.now() - t0) / 1000);
    cpu.push((c.user + c.system) / 1e6);
  }
  return { wall, cpu };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const pixels = SIZE * SIZE;
const flops = 2 * macsPerPixel(WIDTHS);
console.log(
  `implicitQuery, widths [${WIDTHS}], ${SIZE}x${SIZE} target from a ${FEAT}x${FEAT} proj grid, ` +
    `one worker, median of ${RUNS} (${flops} flops/pixel)\n`,
);
console.log("| build | wall s | Mpixel/s (wall) | CPU s | Mpixel/s (CPU) | GFLOP/s (CPU) |");
console.log("| --- | --- | --- | --- | --- | --- |");
for (const build of ["relaxed-simd", "simd"] as const) {
  const { wall, cpu } = await bench(build);
  const w = median(wall), c = median(cpu);
  console.log(
    `| ${build} | ${w.toFixed(3)} | ${(pixels / w / 1e6).toFixed(2)} | ${c.toFixed(3)} ` +
      `| ${(pixels / c / 1e6).toFixed(2)} | ${((pixels / c) * flops / 1e9).toFixed(1)} |`,
  );
}
