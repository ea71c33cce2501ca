/**
 * Speed benchmark of the scheduler: refines the demo photo (aeroplane.jpg
 * with ISNet's coarse mask, aeroplane_isnet.png) scaled in memory to 1K, 2K,
 * 4K and 6K, with 1 and 2 workers, dense and sparse; beside it, in the same
 * run, the PyTorch reference's dense `refine` (train/bench_reference.py,
 * 2 threads) on the same pixels; and the end-to-end 6000x4000 case (JPEG
 * bytes decoded, refined, PNG written) with the default settings.
 *
 * Each measurement runs in its own process, so that peak memory (VmHWM of
 * /proc/self/status, the whole process: main thread and workers) belongs to
 * that configuration alone. Configurations are interleaved round by round,
 * so a burst of load from other jobs spreads over all of them; the tables
 * give medians. The machine's load average is printed with the results.
 *
 * Usage:
 *   deno run -A bench/speed.ts [DATA_DIR] [--sizes 1024,2048,4096,6000]
 *     [--workers 1,2] [--modes dense,sparse] [--runs 3] [--torch-runs 1]
 *     [--torch-sizes 1024,2048,4096,6000] [--e2e-runs 3] [--no-torch] [--no-e2e]
 *     [--weights weights/crm-lite.safetensors] [--json results.json]
 * DATA_DIR defaults to ../shared/data (beside the repository). Inputs are
 * written to a temporary directory, never into the repository.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { decodeImage, decodeMask, encodeMaskPng } from "../src/io/image_file.ts";
import { createRefinerWith } from "../src/refiner.ts";
import type { StageStats } from "../src/pipeline/refine.ts";
import type { Mask, RgbImage } from "../src/types.ts";
import { checkAspect, resizeNearest } from "../src/mask_ops.ts";

const ROOT = new URL("../", import.meta.url);

// --------------------------------------------------------------------------
// child processes: one measured refinement each

interface RefineReport {
  wallMs: number;
  cpuMs: number;
  startupMs: number;
  stages: StageStats[];
  hwmKb: number;
  sampledRssKb: number;
}

interface E2eReport extends RefineReport {
  decodeMs: number;
  refineMs: number;
  encodeMs: number;
  pngBytes: number;
}

function procStatus(field: string): number {
  const m = Deno.readTextFileSync("/proc/self/status").match(new RegExp(`${field}:\\s+(\\d+)`));
  return m ? Number(m[1]) : NaN;
}

/** User + system CPU time of the whole process (all threads), ms. */
function cpuMs(): number {
  const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) * (1000 / 100); // clock ticks at USER_HZ = 100
}

/** Samples the process's resident memory while `f` runs. */
async function sampled<T>(f: () => Promise<T>): Promise<{ value: T; maxRssKb: number }> {
  let max = Deno.memoryUsage().rss;
  const timer = setInterval(() => (max = Math.max(max, Deno.memoryUsage().rss)), 20);
  try {
    const value = await f();
    max = Math.max(max, Deno.memoryUsage().rss);
    return { value, maxRssKb: Math.round(max / 1024) };
  } finally {
    clearInterval(timer);
  }
}

async function readRaw(path: string, w: number, h: number, channels: 1 | 3) {
  const data = await Deno.readFile(path);
  if (data.length !== w * h * channels) {
    throw new Error(`${path}: ${data.length} bytes, expected ${w}x${h}x${channels}`);
  }
  return data;
}

async function childRefine(a: Record<string, string>): Promise<RefineReport> {
  const [w, h] = a.size.split("x").map(Number), [cw, ch] = a.coarseSize.split("x").map(Number);
  const image: RgbImage = { width: w, height: h, channels: 3, data: await readRaw(a.rgb, w, h, 3) };
  const coarse: Mask = { width: cw, height: ch, data: await readRaw(a.coarse, cw, ch, 1) };
  const stats: StageStats[] = [];
  const t0 = performance.now();
  const refiner = await createRefinerWith({ workers: Number(a.workers), weights: a.weights }, {
    schedule: { stats },
  });
  const startupMs = performance.now() - t0;
  const dense = a.mode === "dense";
  const small = downscale(image, 512);
  await refiner.refine(small, resizeNearest(coarse, small.width, small.height), { dense }); // warm-up: tier-up of the kernels
  stats.length = 0;
  const c0 = cpuMs(), w0 = performance.now();
  const { maxRssKb } = await sampled(() => refiner.refine(image, coarse, { dense }));
  const wallMs = performance.now() - w0, cpu = cpuMs() - c0;
  refiner.dispose();
  return {
    wallMs,
    cpuMs: cpu,
    startupMs,
    stages: stats,
    hwmKb: procStatus("VmHWM"),
    sampledRssKb: maxRssKb,
  };
}

async function childE2e(a: Record<string, string>): Promise<E2eReport> {
  const stats: StageStats[] = [];
  const t0 = performance.now();
  const refiner = await createRefinerWith({ workers: Number(a.workers), weights: a.weights }, {
    schedule: { stats },
  });
  const startupMs = performance.now() - t0;
  const c0 = cpuMs(), w0 = performance.now();
  let decodeMs = 0, refineMs = 0, encodeMs = 0, pngBytes = 0;
  const { maxRssKb } = await sampled(async () => {
    let t = performance.now();
    const { image } = await decodeImage(await Deno.readFile(a.jpeg), a.jpeg);
    const { mask: coarse } = await decodeMask(await Deno.readFile(a.coarsePng), a.coarsePng);
    decodeMs = performance.now() - t;
    t = performance.now();
    const mask = await refiner.refine(image, coarse, { dense: a.mode === "dense" });
    refineMs = performance.now() - t;
    t = performance.now();
    const png = encodeMaskPng(mask);
    await Deno.writeFile(a.out, png);
    pngBytes = png.length;
    encodeMs = performance.now() - t;
  });
  const wallMs = performance.now() - w0, cpu = cpuMs() - c0;
  refiner.dispose();
  return {
    wallMs,
    cpuMs: cpu,
    startupMs,
    stages: stats,
    hwmKb: procStatus("VmHWM"),
    sampledRssKb: maxRssKb,
    decodeMs,
    refineMs,
    encodeMs,
    pngBytes,
  };
}

// --------------------------------------------------------------------------
// inputs

/** Area (shrinking) or bilinear (growing) resample of an 8-bit image to width `w`, RGB out. */
function resample(
  src: RgbImage,
  w: number,
  h = Math.round((w * src.height) / src.width),
): RgbImage {
  const out = new Uint8Array(w * h * 3), c = src.channels;
  if (w <= src.width) {
    for (let y = 0; y < h; y++) {
      const y0 = Math.floor((y * src.height) / h),
        y1 = Math.max(y0 + 1, Math.floor(((y + 1) * src.height) / h));
      for (let x = 0; x < w; x++) {
        const x0 = Math.floor((x * src.width) / w),
          x1 = Math.max(x0 + 1, Math.floor(((x + 1) * src.width) / w));
        for (let k = 0; k < 3; k++) {
          let s = 0;
          for (let yy = y0; yy < y1; yy++) {
            for (let xx = x0; xx < x1; xx++) s += src.data[(yy * src.width + xx) * c + k];
          }
          out[(y * w + x) * 3 + k] = Math.round(s / ((y1 - y0) * (x1 - x0)));
        }
      }
    }
    return { width: w, height: h, channels: 3, data: out };
  }
  for (let y = 0; y < h; y++) {
    const sy = Math.min(Math.max((y + 0.5) * (src.height / h) - 0.5, 0), src.height - 1);
    const ya = Math.floor(sy), yb = Math.min(ya + 1, src.height - 1), fy = sy - ya;
    for (let x = 0; x < w; x++) {
      const sx = Math.min(Math.max((x + 0.5) * (src.width / w) - 0.5, 0), src.width - 1);
      const xa = Math.floor(sx), xb = Math.min(xa + 1, src.width - 1), fx = sx - xa;
      for (let k = 0; k < 3; k++) {
        const p = (yy: number, xx: number) => src.data[(yy * src.width + xx) * c + k];
        const top = p(ya, xa) * (1 - fx) + p(ya, xb) * fx,
          bottom = p(yb, xa) * (1 - fx) + p(yb, xb) * fx;
        out[(y * w + x) * 3 + k] = Math.round(top * (1 - fy) + bottom * fy);
      }
    }
  }
  return { width: w, height: h, channels: 3, data: out };
}

/**
 * The size nearest width `w` that passes the refiner's aspect check against
 * a `cw` x `ch` mask (1 px of rounding at the mask's scale: a 1024-wide
 * image has no height that passes against a 3492x2328 mask, 1023x682 does).
 */
function fitAspect(w: number, cw: number, ch: number): [number, number] {
  for (let d = 0; d < 16; d++) {
    for (const ww of [w - d, w + d]) {
      const h = Math.round((ww * ch) / cw);
      try {
        checkAspect(ww, h, cw, ch);
        return [ww, h];
      } catch { /* try the next width */ }
    }
  }
  throw new Error(`no size near width ${w} matches the mask's aspect ${cw}x${ch}`);
}

function downscale(image: RgbImage, long: number): RgbImage {
  return image.width >= image.height
    ? resample(image, long)
    : resample(image, Math.round((long * image.width) / image.height), long);
}

/** Encodes RGB as a JPEG (quality 92) with the MozJPEG encoder of @jsquash/jpeg. */
async function encodeJpeg(image: RgbImage): Promise<Uint8Array> {
  const { default: encode, init } = await import("@jsquash/jpeg/encode.js");
  const wasm = new URL("node_modules/@jsquash/jpeg/codec/enc/mozjpeg_enc.wasm", ROOT);
  // deno-lint-ignore no-explicit-any
  await (init as any)(await WebAssembly.compile(await Deno.readFile(wasm)));
  const rgba = new Uint8ClampedArray(image.width * image.height * 4);
  for (let i = 0, j = 0; i < image.width * image.height; i++, j += 3) {
    rgba[4 * i] = image.data[j];
    rgba[4 * i + 1] = image.data[j + 1];
    rgba[4 * i + 2] = image.data[j + 2];
    rgba[4 * i + 3] = 255;
  }
  // the encoder's types want a DOM ImageData; it reads only these three fields
  const encodeRgba = encode as unknown as (
    img: { data: Uint8ClampedArray; width: number; height: number },
    opts: { quality: number },
  ) => Promise<ArrayBuffer>;
  return new Uint8Array(
    await encodeRgba({ data: rgba, width: image.width, height: image.height }, { quality: 92 }),
  );
}

// --------------------------------------------------------------------------
// orchestration

interface Input {
  label: string;
  w: number;
  h: number;
  rgb: string;
}

async function runChild(args: string[]): Promise<unknown> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--child", ...args],
    stdout: "piped",
    stderr: "inherit",
  });
  const out = await cmd.output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  if (!out.success) throw new Error(`child failed (${args.join(" ")}): ${text}`);
  return JSON.parse(text);
}

async function runTorch(
  input: Input,
  coarse: { path: string; w: number; h: number },
  weights: string,
) {
  const cmd = new Deno.Command("/usr/bin/python3", {
    args: [
      new URL("train/bench_reference.py", ROOT).pathname,
      "--rgb",
      input.rgb,
      "--size",
      String(input.w),
      String(input.h),
      "--coarse",
      coarse.path,
      "--coarse-size",
      String(coarse.w),
      String(coarse.h),
      "--weights",
      weights,
      "--runs",
      "1",
      "--threads",
      "2",
    ],
    stdout: "piped",
    stderr: "inherit",
  });
  const out = await cmd.output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  if (!out.success) return { error: `exit ${out.code}` };
  return JSON.parse(text) as { runs_s: number[]; maxrss_kb: number; threads: number };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "–");
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "–");
const mb = (kb: number) => (Number.isFinite(kb) ? String(Math.round(kb / 1024)) : "–");

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      sizes: { type: "string", default: "1024,2048,4096,6000" },
      workers: { type: "string", default: "1,2" },
      modes: { type: "string", default: "dense,sparse" },
      runs: { type: "string", default: "3" },
      "torch-runs": { type: "string", default: "1" },
      "torch-sizes": { type: "string", default: "1024,2048,4096,6000" },
      "e2e-runs": { type: "string", default: "3" },
      "no-torch": { type: "boolean", default: false },
      "no-e2e": { type: "boolean", default: false },
      weights: { type: "string", default: new URL("weights/crm-lite.safetensors", ROOT).pathname },
      json: { type: "string" },
    },
  });
  const data = positionals[0] ?? new URL("../shared/data", ROOT).pathname;
  const sizes = values.sizes.split(",").map(Number);
  const workerCounts = values.workers.split(",").map(Number);
  const modes = values.modes.split(",");
  const runs = Number(values.runs),
    torchRuns = values["no-torch"] ? 0 : Number(values["torch-runs"]);
  const torchSizes = new Set(values["torch-sizes"].split(",").map(Number));
  const e2eRuns = values["no-e2e"] ? 0 : Number(values["e2e-runs"]);
  const weights = values.weights;

  const tmp = await Deno.makeTempDir({ prefix: "crispmask-bench-" });
  const load0 = Deno.loadavg();
  console.error(`preparing inputs in ${tmp} ...`);
  const photo =
    (await decodeImage(await Deno.readFile(`${data}/demo/aeroplane.jpg`), "aeroplane.jpg")).image;
  const coarsePng = `${data}/demo/aeroplane_isnet.png`;
  const coarseMask = (await decodeMask(await Deno.readFile(coarsePng), "aeroplane_isnet.png")).mask;
  const coarse = { path: `${tmp}/coarse.u8`, w: coarseMask.width, h: coarseMask.height };
  await Deno.writeFile(coarse.path, coarseMask.data);
  const inputs: Input[] = [];
  for (const long of sizes) {
    const img = resample(photo, ...fitAspect(long, coarse.w, coarse.h));
    const rgb = `${tmp}/image_${img.width}x${img.height}.rgb`;
    await Deno.writeFile(rgb, img.data as Uint8Array);
    inputs.push({ label: `${img.width}x${img.height}`, w: img.width, h: img.height, rgb });
  }
  let jpeg = "";
  if (e2eRuns > 0) {
    jpeg = `${tmp}/photo_6000x4000.jpg`;
    await Deno.writeFile(
      jpeg,
      await encodeJpeg(resample(photo, ...fitAspect(6000, coarse.w, coarse.h))),
    );
  }

  const ours = new Map<string, RefineReport[]>();
  const torch = new Map<string, number[]>();
  const torchRss = new Map<string, number>();
  const e2e: E2eReport[] = [];
  for (let round = 0; round < Math.max(runs, torchRuns, e2eRuns); round++) {
    for (const input of inputs) {
      for (const mode of modes) {
        for (const workers of workerCounts) {
          if (round >= runs) continue;
          const key = `${input.label} ${mode} ${workers}`;
          console.error(`round ${round + 1}: ${key}`);
          const r = await runChild([
            "refine",
            "--rgb",
            input.rgb,
            "--size",
            input.label,
            "--coarse",
            coarse.path,
            "--coarseSize",
            `${coarse.w}x${coarse.h}`,
            "--workers",
            String(workers),
            "--mode",
            mode,
            "--weights",
            weights,
          ]) as RefineReport;
          ours.set(key, [...(ours.get(key) ?? []), r]);
        }
      }
      if (round < torchRuns && [...torchSizes].some((s) => Math.abs(s - input.w) < 16)) {
        console.error(`round ${round + 1}: ${input.label} PyTorch`);
        const t = await runTorch(input, coarse, weights);
        if ("error" in t) console.error(`  PyTorch failed: ${t.error}`);
        else {
          torch.set(input.label, [...(torch.get(input.label) ?? []), ...t.runs_s]);
          torchRss.set(input.label, Math.max(torchRss.get(input.label) ?? 0, t.maxrss_kb));
        }
      }
    }
    if (round < e2eRuns) {
      console.error(`round ${round + 1}: end to end 6000x4000`);
      e2e.push(
        await runChild([
          "e2e",
          "--jpeg",
          jpeg,
          "--coarsePng",
          coarsePng,
          "--out",
          `${tmp}/mask.png`,
          "--workers",
          "2",
          "--mode",
          "sparse",
          "--weights",
          weights,
        ]) as E2eReport,
      );
    }
  }
  const load1 = Deno.loadavg();
  await Deno.remove(tmp, { recursive: true });
  report({ inputs, modes, workerCounts, ours, torch, torchRss, e2e, load: [load0, load1], runs });
  if (values.json) {
    await Deno.writeTextFile(
      values.json,
      JSON.stringify(
        { ours: Object.fromEntries(ours), torch: Object.fromEntries(torch), e2e },
        null,
        1,
      ),
    );
  }
}

function report(r: {
  inputs: Input[];
  modes: string[];
  workerCounts: number[];
  ours: Map<string, RefineReport[]>;
  torch: Map<string, number[]>;
  torchRss: Map<string, number>;
  e2e: E2eReport[];
  load: number[][];
  runs: number;
}): void {
  const lines: string[] = [];
  const say = (s = "") => lines.push(s);
  say(
    `Load average before/after: ${
      r.load.map((l) => l.map((x) => x.toFixed(1)).join(" ")).join(" / ")
    }`,
  );
  say();
  say(
    "| image | mode | workers | wall s | MP/s | per stage s | CPU s | VmHWM MB | sampled RSS MB | units |",
  );
  say("|---|---|---:|---:|---:|---|---:|---:|---:|---|");
  for (const input of r.inputs) {
    for (const mode of r.modes) {
      for (const workers of r.workerCounts) {
        const reps = r.ours.get(`${input.label} ${mode} ${workers}`) ?? [];
        if (reps.length === 0) continue;
        const wall = median(reps.map((x) => x.wallMs)) / 1000;
        const stages = reps[0].stages.map((_, i) =>
          f2(median(reps.map((x) => x.stages[i]?.ms ?? NaN)) / 1000)
        );
        const units = reps[0].stages.map((s) => s.units).join("/");
        say(
          `| ${input.label} | ${mode} | ${workers} | ${f2(wall)} | ${
            f2((input.w * input.h) / 1e6 / wall)
          } | ${stages.join(" + ")} | ` +
            `${f1(median(reps.map((x) => x.cpuMs)) / 1000)} | ${
              mb(median(reps.map((x) => x.hwmKb)))
            } | ` +
            `${mb(median(reps.map((x) => x.sampledRssKb)))} | ${units} |`,
        );
      }
    }
  }
  say();
  say(
    `Medians of ${r.runs} runs (ours), PyTorch runs as listed. Ratios: PyTorch wall / ours wall.`,
  );
  say();
  say(
    "| image | PyTorch dense s (runs) | PyTorch peak MB | ours 2w sparse s | x | ours 2w dense s | x | 2w/1w dense | 2w/1w sparse | active tiles (last stage) |",
  );
  say("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const input of r.inputs) {
    const med = (mode: string, w: number) =>
      median((r.ours.get(`${input.label} ${mode} ${w}`) ?? []).map((x) => x.wallMs)) / 1000;
    const t = r.torch.get(input.label) ?? [];
    const tm = median(t);
    const sparse = r.ours.get(`${input.label} sparse 2`)?.[0];
    const active = sparse?.stages.at(-1)?.activeTiles;
    say(
      `| ${input.label} | ${f1(tm)} (${t.length}) | ${mb(r.torchRss.get(input.label) ?? NaN)} | ${
        f2(med("sparse", 2))
      } | ${f1(tm / med("sparse", 2))} | ` +
        `${f2(med("dense", 2))} | ${f1(tm / med("dense", 2))} | ${
          f2(med("dense", 1) / med("dense", 2))
        } | ` +
        `${f2(med("sparse", 1) / med("sparse", 2))} | ${
          active === undefined ? "–" : (100 * active).toFixed(1) + "%"
        } |`,
    );
  }
  if (r.e2e.length) {
    const m = (f: (x: E2eReport) => number) => median(r.e2e.map(f));
    say();
    say(`End to end, 6000x4000 JPEG -> PNG, 2 workers, sparse (median of ${r.e2e.length}):`);
    say();
    say(
      "| wall s | decode s | refine s | PNG encode+write s | CPU s | VmHWM MB | sampled RSS MB | startup s (not in wall) |",
    );
    say("|---:|---:|---:|---:|---:|---:|---:|---:|");
    say(
      `| ${f2(m((x) => x.wallMs) / 1000)} | ${f2(m((x) => x.decodeMs) / 1000)} | ${
        f2(m((x) => x.refineMs) / 1000)
      } | ` +
        `${f2(m((x) => x.encodeMs) / 1000)} | ${f1(m((x) => x.cpuMs) / 1000)} | ${
          mb(m((x) => x.hwmKb))
        } | ${mb(m((x) => x.sampledRssKb))} | ` +
        `${f2(m((x) => x.startupMs) / 1000)} |`,
    );
    const t6 = median(r.torch.get("6000x4000") ?? []);
    say();
    say(
      `Bars: 6K end to end < 10 s: ${m((x) => x.wallMs) < 10000 ? "met" : "NOT met"}; < 600 MB: ${
        m((x) => x.hwmKb) < 600 * 1024 ? "met" : "NOT met"
      }; ` +
        `>= 3x PyTorch dense: ${
          Number.isFinite(t6)
            ? (t6 / (m((x) => x.wallMs) / 1000) >= 3 ? "met" : "NOT met")
            : "not measured"
        }.`,
    );
  }
  console.log(lines.join("\n"));
}

if (Deno.args[0] === "--child") {
  const { values } = parseArgs({
    args: Deno.args.slice(2),
    options: Object.fromEntries(
      [
        "rgb",
        "size",
        "coarse",
        "coarseSize",
        "workers",
        "mode",
        "weights",
        "jpeg",
        "coarsePng",
        "out",
      ].map((k) => [k, { type: "string" }]),
    ),
  });
  const a = values as Record<string, string>;
  const result = Deno.args[1] === "e2e" ? await childE2e(a) : await childRefine(a);
  console.log(JSON.stringify(result));
} else {
  await main();
}
