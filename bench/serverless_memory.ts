/**
 * The serverless handler (examples/serverless.ts) under `deno serve`:
 * cold start (process start to the first refined response, on the bundled
 * example; median of fresh starts) and the peak resident memory (VmHWM of
 * the `deno serve` process, workers included: they are its threads) while
 * it refines a 6000x4000 JPEG under a memory budget.
 *
 *     deno run -A bench/serverless_memory.ts [--starts 3] [--budget-mb 512]
 *
 * The 6K photo is ../shared/data/demo/aeroplane.jpg (3492x2328) upscaled
 * in memory, its coarse mask aeroplane_coarse.png resized to 1500x1000;
 * nothing is written.
 *
 * @module
 */

import { parseArgs } from "node:util";
import encodeJpeg from "@jsquash/jpeg/encode.js";
import { decodeImage, decodeMask, encodeMaskPng } from "../src/io/image_file.ts";
import { decodePng } from "../src/io/png.ts";
import type { Mask, RgbImage } from "../src/types.ts";
import { startServerless } from "../examples/serverless_process.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    starts: { type: "string", default: "3" },
    "budget-mb": { type: "string", default: "512" },
  },
});
const STARTS = Number(args.values.starts);
const BUDGET_MB = Number(args.values["budget-mb"]);
const ROOT = new URL("../", import.meta.url);
const DATA = new URL("../shared/data/demo/", ROOT);
const NAME = "aeroplane";

function procStatus(pid: number, field: string): number {
  const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(
    new RegExp(`${field}:\\s+(\\d+) kB`),
  );
  return m ? Number(m[1]) * 1024 : NaN;
}

function form(image: Uint8Array, mask: Uint8Array): FormData {
  const f = new FormData();
  f.append("image", new Blob([image as BlobPart]), "image");
  f.append("mask", new Blob([mask as BlobPart]), "mask");
  return f;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const MiB = 2 ** 20;

// --- cold start -------------------------------------------------------------------------------
const coffee = await Deno.readFile(new URL("examples/coffee.png", ROOT));
const coffeeMask = await Deno.readFile(new URL("examples/coffee_coarse.png", ROOT));
const firstMs: number[] = [], listenMs: number[] = [];
for (let i = 0; i < STARTS; i++) {
  const t0 = performance.now();
  const server = await startServerless({});
  const t1 = performance.now();
  const res = await fetch(server.url, { method: "POST", body: form(coffee, coffeeMask) });
  await res.arrayBuffer();
  const t2 = performance.now();
  if (res.status !== 200) throw new Error(`cold start request: HTTP ${res.status}`);
  firstMs.push(t2 - t0);
  listenMs.push(t2 - t1);
  await server.stop();
}
console.log(
  `cold start (${STARTS} fresh starts, 600x400 example): process start to response ` +
    `${median(firstMs).toFixed(0)} ms median [${firstMs.map((x) => x.toFixed(0)).join(", ")}]; ` +
    `listening to response ${median(listenMs).toFixed(0)} ms`,
);

// --- a 6000x4000 request under the budget ------------------------------------------------------
function resizeBilinear(
  src: Uint8Array | Uint8ClampedArray,
  w: number,
  h: number,
  ch: number,
  W: number,
  H: number,
) {
  const out = new Uint8Array(W * H * ch);
  for (let y = 0; y < H; y++) {
    const fy = Math.min(Math.max((y + 0.5) * h / H - 0.5, 0), h - 1);
    const y0 = Math.floor(fy), y1 = Math.min(y0 + 1, h - 1), ty = fy - y0;
    for (let x = 0; x < W; x++) {
      const fx = Math.min(Math.max((x + 0.5) * w / W - 0.5, 0), w - 1);
      const x0 = Math.floor(fx), x1 = Math.min(x0 + 1, w - 1), tx = fx - x0;
      for (let c = 0; c < ch; c++) {
        const a = src[(y0 * w + x0) * ch + c] * (1 - tx) + src[(y0 * w + x1) * ch + c] * tx;
        const b = src[(y1 * w + x0) * ch + c] * (1 - tx) + src[(y1 * w + x1) * ch + c] * tx;
        out[(y * W + x) * ch + c] = Math.round(a * (1 - ty) + b * ty);
      }
    }
  }
  return out;
}

const photo: RgbImage = (await decodeImage(
  await Deno.readFile(new URL(`${NAME}.jpg`, DATA)),
  NAME,
)).image;
const [W, H] = [6000, 4000];
const big = resizeBilinear(photo.data, photo.width, photo.height, photo.channels, W, H);
const rgba = new Uint8ClampedArray(W * H * 4);
for (let i = 0; i < W * H; i++) {
  for (let c = 0; c < 3; c++) rgba[4 * i + c] = big[photo.channels * i + c];
  rgba[4 * i + 3] = 255;
}
const jpeg = new Uint8Array(
  await encodeJpeg({ width: W, height: H, data: rgba } as ImageData, { quality: 90 }),
);
const given: Mask = (await decodeMask(
  await Deno.readFile(new URL(`${NAME}_coarse.png`, DATA)),
  NAME,
)).mask;
const coarse = encodeMaskPng({
  width: 1500,
  height: 1000,
  data: resizeBilinear(given.data, given.width, given.height, 1, 1500, 1000),
});
console.log(`6K input: JPEG ${(jpeg.length / MiB).toFixed(1)} MiB, coarse mask 1500x1000`);

const server = await startServerless({
  CRISPMASK_MEMORY_MB: String(BUDGET_MB),
  CRISPMASK_MAX_PIXELS: "25000000",
});
try {
  const idle = procStatus(server.pid, "VmRSS");
  const t0 = performance.now();
  const samples: string[] = [];
  const sampler = setInterval(() => {
    samples.push(
      `${((performance.now() - t0) / 1000).toFixed(1)}s:${
        (procStatus(server.pid, "VmRSS") / MiB).toFixed(0)
      }`,
    );
  }, 250);
  const res = await fetch(server.url, { method: "POST", body: form(jpeg, coarse) });
  const body = new Uint8Array(await res.arrayBuffer());
  const ms = performance.now() - t0;
  clearInterval(sampler);
  if (Deno.env.get("TRACE")) console.log(samples.join(" "));
  if (res.status !== 200) {
    throw new Error(`6K request: HTTP ${res.status} ${new TextDecoder().decode(body)}`);
  }
  const out = decodePng(body);
  const hwm = procStatus(server.pid, "VmHWM");
  console.log(
    `6K request (budget ${BUDGET_MB} MiB): ${out.width}x${out.height} mask in ${
      (ms / 1000).toFixed(1)
    } s ` +
      `(first request: includes starting the refiner); idle RSS ${(idle / MiB).toFixed(0)} MiB, ` +
      `peak RSS (VmHWM) ${(hwm / MiB).toFixed(0)} MiB: ${
        hwm <= BUDGET_MB * MiB ? "within" : "OVER"
      } the budget`,
  );
} finally {
  await server.stop();
}
