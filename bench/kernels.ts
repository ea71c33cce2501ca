/**
 * Convolution kernel benchmark, single worker: the packed 6x8 micro-kernel's
 * peak on L1-resident data, then every encoder convolution of CRM-lite at the
 * sizes of a 960x720 first stage, as GFLOP/s and % of that peak, for both
 * builds. Prints a markdown table: per kernel, the median over interleaved
 * rounds of the fastest of a few back-to-back calls.
 *
 * Times are this process's CPU time (getrusage via `process.cpuUsage`), with
 * the wall-clock total alongside: the development machine is two cores shared
 * with other jobs, where wall-clock time mostly measures the other jobs.
 *
 * Usage: deno task bench [--runs N] [--filter TEXT]
 */

import {
  compileKernels,
  instantiateKernels,
  type KernelBuild,
  type KernelInstance,
} from "../src/engine/wasm.ts";
import { Arena } from "../src/engine/arena.ts";
import {
  conv2d,
  convOutSize,
  convScratchFloats,
  packConvWeights,
} from "../src/engine/kernels/conv.ts";
import { maxPool3x3s2, maxPoolOutSize } from "../src/engine/kernels/pool.ts";
import process from "node:process";

const args = Deno.args;
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const RUNS = Number(opt("--runs", "9"));
const FILTER = opt("--filter", "");

/** One convolution of the encoder: input size, channels, kernel, and how often it occurs. */
interface ConvBench {
  name: string;
  h: number;
  w: number;
  cin: number;
  cout: number;
  k: number;
  stride: number;
  dilation: number;
  count: number;
}

// CRM-lite (train/model.py DEFAULT_CONFIG) on a 960x720 encoder input.
const CONVS: ConvBench[] = [
  {
    name: "stem 7x7/2 4->32",
    h: 720,
    w: 960,
    cin: 4,
    cout: 32,
    k: 7,
    stride: 2,
    dilation: 1,
    count: 1,
  },
  {
    name: "layer1 3x3 32->32",
    h: 180,
    w: 240,
    cin: 32,
    cout: 32,
    k: 3,
    stride: 1,
    dilation: 1,
    count: 4,
  },
  {
    name: "layer2 3x3/2 32->64",
    h: 180,
    w: 240,
    cin: 32,
    cout: 64,
    k: 3,
    stride: 2,
    dilation: 1,
    count: 1,
  },
  {
    name: "layer2 1x1/2 32->64 (down)",
    h: 180,
    w: 240,
    cin: 32,
    cout: 64,
    k: 1,
    stride: 2,
    dilation: 1,
    count: 1,
  },
  {
    name: "layer2 3x3 64->64",
    h: 90,
    w: 120,
    cin: 64,
    cout: 64,
    k: 3,
    stride: 1,
    dilation: 1,
    count: 3,
  },
  {
    name: "layer3 3x3 d2 64->128",
    h: 90,
    w: 120,
    cin: 64,
    cout: 128,
    k: 3,
    stride: 1,
    dilation: 2,
    count: 1,
  },
  {
    name: "layer3 1x1 64->128 (down)",
    h: 90,
    w: 120,
    cin: 64,
    cout: 128,
    k: 1,
    stride: 1,
    dilation: 1,
    count: 1,
  },
  {
    name: "layer3 3x3 d2 128->128",
    h: 90,
    w: 120,
    cin: 128,
    cout: 128,
    k: 3,
    stride: 1,
    dilation: 2,
    count: 3,
  },
  {
    name: "proj2 1x1 32->16",
    h: 360,
    w: 480,
    cin: 32,
    cout: 16,
    k: 1,
    stride: 1,
    dilation: 1,
    count: 1,
  },
  {
    name: "proj4 1x1 32->16",
    h: 180,
    w: 240,
    cin: 32,
    cout: 16,
    k: 1,
    stride: 1,
    dilation: 1,
    count: 1,
  },
  {
    name: "proj8 1x1 128->32",
    h: 90,
    w: 120,
    cin: 128,
    cout: 32,
    k: 1,
    stride: 1,
    dilation: 1,
    count: 1,
  },
  {
    name: "fuse 3x3 64->64",
    h: 360,
    w: 480,
    cin: 64,
    cout: 64,
    k: 3,
    stride: 1,
    dilation: 1,
    count: 1,
  },
  {
    name: "mlp.feat 1x1 64->32",
    h: 360,
    w: 480,
    cin: 64,
    cout: 32,
    k: 1,
    stride: 1,
    dilation: 1,
    count: 1,
  },
  // the design brief's wider projections (32/32/64) would make the fuse conv 128->64
  {
    name: "(fuse 3x3 128->64, brief's width)",
    h: 360,
    w: 480,
    cin: 128,
    cout: 64,
    k: 3,
    stride: 1,
    dilation: 1,
    count: 0,
  },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function random(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** A prepared measurement: run() returns milliseconds of one call. */
interface Probe {
  run: () => Sample;
  flops: number;
}

/** Micro-kernel peak: the 6x8 kernel on L1-resident data (256 channels, one panel). */
function peakProbe(k: KernelInstance, arena: Arena): Probe {
  const cin = 256, reps = 20000;
  const inp = arena.upload(random(6 * cin, 1));
  const w = arena.upload(random(8 * cin, 2));
  const b = arena.upload(random(8, 3));
  const out = arena.f32(48), scratch = arena.f32(8);
  const call = () => k.exports.gemmPeak(inp.ptr, cin, w.ptr, b.ptr, out.ptr, scratch.ptr, reps);
  return { run: timed(call, 3), flops: reps * 6 * 8 * cin * 2 };
}

/** One encoder convolution, buffers allocated once. */
function convProbe(k: KernelInstance, arena: Arena, c: ConvBench): Probe {
  const pad = (c.dilation * (c.k - 1)) >> 1;
  const oh = convOutSize(c.h, c.k, c.stride, c.dilation, pad, pad);
  const ow = convOutSize(c.w, c.k, c.stride, c.dilation, pad, pad);
  const input = arena.upload(random(c.h * c.w * c.cin, 5));
  const shape = { cout: c.cout, cin: c.cin, kh: c.k, kw: c.k };
  const weights = packConvWeights(
    k,
    arena,
    random(c.cout * c.cin * c.k * c.k, 6),
    shape,
    random(c.cout, 7),
  );
  const output = arena.f32(oh * ow * c.cout);
  const scratch = arena.f32(convScratchFloats(c.cin, c.k, c.k));
  const call = () =>
    conv2d(k, {
      input: { ptr: input.ptr, h: c.h, w: c.w, c: c.cin },
      output: { ptr: output.ptr, h: oh, w: ow, c: c.cout },
      weights,
      stride: c.stride,
      dilation: c.dilation,
      relu: true,
      scratch,
    });
  return { run: timed(call, 1), flops: 2 * oh * ow * c.cout * c.cin * c.k * c.k };
}

/** The max-pool after the stem (FLOPs: comparisons, not reported). */
function poolProbe(k: KernelInstance, arena: Arena): Probe {
  const h = 360, w = 480, c = 32;
  const input = arena.upload(random(h * w * c, 8));
  const oh = maxPoolOutSize(h), ow = maxPoolOutSize(w);
  const output = arena.f32(oh * ow * c);
  const call = () =>
    maxPool3x3s2(k, {
      input: { ptr: input.ptr, h, w, c },
      output: { ptr: output.ptr, h: oh, w: ow, c },
    });
  return { run: timed(call, 1), flops: NaN };
}

/**
 * A sampler: each sample is the fastest of a few back-to-back calls (enough for
 * about 20 ms, at least `minTries`), after one warm-up call, in milliseconds of
 * this process's CPU time (see the module doc) and of wall-clock time.
 */
function timed(call: () => unknown, minTries: number): () => Sample {
  const t0 = performance.now();
  call(); // tier-up, first touch of the pages
  const tries = Math.max(minTries, Math.min(10, Math.ceil(20 / (performance.now() - t0))));
  return () => {
    let best: Sample = { cpu: Infinity, wall: Infinity };
    for (let i = 0; i < tries; i++) {
      const c = process.cpuUsage();
      const t = performance.now();
      call();
      const wall = performance.now() - t;
      const used = process.cpuUsage(c);
      const cpu = (used.user + used.system) / 1000;
      if (cpu < best.cpu) best = { cpu, wall };
    }
    return best;
  };
}

/** Milliseconds of one call. */
interface Sample {
  cpu: number;
  wall: number;
}

// Rounds interleave builds and kernels, so a burst of load from other processes
// on this shared machine spreads over all columns instead of spoiling one.
const builds = ["relaxed-simd", "simd"] as const;
const probes = new Map<KernelBuild, { peak: Probe; convs: (Probe | null)[]; pool: Probe }>();
for (const build of builds) {
  const k = instantiateKernels(await compileKernels(build));
  const arena = new Arena(k.memory, k.exports.heapBase());
  probes.set(build, {
    peak: peakProbe(k, arena),
    convs: CONVS.map((c) => (FILTER && !c.name.includes(FILTER) ? null : convProbe(k, arena, c))),
    pool: poolProbe(k, arena),
  });
}
const samples = new Map<string, Sample[]>();
const sample = (key: string, ms: Sample) => samples.set(key, [...(samples.get(key) ?? []), ms]);
for (let r = 0; r < RUNS; r++) {
  for (const build of builds) {
    const p = probes.get(build)!;
    sample(`${build}/peak`, p.peak.run());
    p.convs.forEach((c, i) => c && sample(`${build}/${i}`, c.run()));
    sample(`${build}/pool`, p.pool.run());
  }
}
const cpuOf = (
  key: string,
) => (samples.has(key) ? median(samples.get(key)!.map((x) => x.cpu)) : NaN);
const wallOf = (
  key: string,
) => (samples.has(key) ? median(samples.get(key)!.map((x) => x.wall)) : NaN);

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "-");
const pct = (x: number) => (Number.isFinite(x) ? `${Math.round(x * 100)}%` : "-");
const load = Deno.loadavg().map((x) => x.toFixed(1)).join(" / ");
const gflops = (flops: number, ms: number) => flops / (ms * 1e6);
const peakOf = (b: KernelBuild) => gflops(probes.get(b)!.peak.flops, cpuOf(`${b}/peak`));

/** One table row per build: CPU ms, GFLOP/s, % of that build's peak. */
function cells(b: KernelBuild, flops: number, ms: number): string {
  const g = gflops(flops, ms);
  return `${f1(ms)} | ${f1(g)} | ${pct(g / peakOf(b))}`;
}

const lines = [
  `Single worker; per kernel the median over ${RUNS} interleaved rounds of the fastest of a few calls, ` +
  `in CPU time of this process. Deno ${Deno.version.deno} (V8 ${Deno.version.v8}), ` +
  `load average ${load} at the end.`,
  "",
  "| kernel | output (WxHxC) | GFLOP | relaxed ms | GFLOP/s | % of peak | simd ms | GFLOP/s | % of peak |",
  "|---|---|---:|---:|---:|---:|---:|---:|---:|",
  `| micro-kernel 6x8, L1-resident (peak) | | | | ${f1(peakOf("relaxed-simd"))} | 100% | | ${
    f1(peakOf("simd"))
  } | 100% |`,
];
const total = { flops: 0, "relaxed-simd": 0, simd: 0, wall: { "relaxed-simd": 0, simd: 0 } };
CONVS.forEach((c, i) => {
  const probe = probes.get("relaxed-simd")!.convs[i];
  if (!probe) return;
  const pad = (c.dilation * (c.k - 1)) >> 1;
  const oh = convOutSize(c.h, c.k, c.stride, c.dilation, pad, pad);
  const ow = convOutSize(c.w, c.k, c.stride, c.dilation, pad, pad);
  const times = c.count > 1 ? ` (x${c.count})` : "";
  const row = builds.map((b) => cells(b, probe.flops, cpuOf(`${b}/${i}`))).join(" | ");
  lines.push(`| ${c.name}${times} | ${ow}x${oh}x${c.cout} | ${f1(probe.flops / 1e9)} | ${row} |`);
  total.flops += c.count * probe.flops;
  for (const b of builds) {
    total[b] += c.count * cpuOf(`${b}/${i}`);
    total.wall[b] += c.count * wallOf(`${b}/${i}`);
  }
});
lines.push(
  `| maxpool 3x3/2, 32 ch | 240x180x32 | | ${f1(cpuOf("relaxed-simd/pool"))} | | | ${
    f1(cpuOf("simd/pool"))
  } | | |`,
);
lines.push(
  `| **encoder convolutions, total** | | ${f1(total.flops / 1e9)} | ${
    builds.map((b) => cells(b, total.flops, total[b])).join(" | ")
  } |`,
);
lines.push(
  "",
  `Wall-clock total of the encoder convolutions: relaxed ${f1(total.wall["relaxed-simd"])} ms, ` +
    `simd ${f1(total.wall.simd)} ms (CPU time above: ${f1(total["relaxed-simd"])} / ${
      f1(total.simd)
    } ms).`,
);
console.log(lines.join("\n"));
