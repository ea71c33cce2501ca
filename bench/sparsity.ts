/**
 * Boundary-band sparsity against dense inference on the evaluation sets:
 * the same refiner refines every image of each set with `dense: true` and
 * with the default (sparse), on the ISNet coarse masks; both are scored
 * against the ground truth with src/metrics (IoU and mBA, binarised at 128,
 * GrabCut's 128 ignored), and timed. Rerun it when the weights change.
 *
 * Usage:
 *   deno run -A bench/sparsity.ts [DATA_DIR] [--sets grabcut,p3m,davis,carvana]
 *     [--weights weights/crm-lite.safetensors] [--workers N] [--limit N] [--json out.json]
 *     [--scale F]
 * DATA_DIR defaults to ../shared/data (beside the repository). `--scale 2`
 * enlarges each photo (bilinear) and its ground truth (bilinear, thresholded
 * at 128; nearest for GrabCut's ignore band) by F before refining, to compare
 * the two modes on 2K-4K images where more stages run sparse; the coarse mask
 * stays at its size (the refiner resamples it).
 *
 * Every stage is sparse, the first one included (its previous prediction is
 * the coarse mask, with a wider margin): images no larger than the model's
 * first stage (long side <= 960) run one stage, sparse too. The table gives
 * the share of tiles that ran at the first and at the last stage (the same
 * stage on single-stage images).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { decodeImage, decodeMask } from "../src/io/image_file.ts";
import { MaskStats } from "../src/metrics/mod.ts";
import { createRefinerWith } from "../src/refiner.ts";
import type { StageStats } from "../src/pipeline/refine.ts";
import { resizeBilinear } from "../src/baselines/resample.ts";
import type { Mask, RgbImage } from "../src/types.ts";

const ROOT = new URL("../", import.meta.url);

interface SetResult {
  set: string;
  images: number;
  multiStage: number;
  coarse: MaskStats;
  dense: MaskStats;
  sparse: MaskStats;
  denseMs: number;
  sparseMs: number;
  /** fraction of first-stage tiles that ran, per image */
  firstActive: number[];
  /** fraction of last-stage tiles that ran, per multi-stage image */
  activeTiles: number[];
  identical: number;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      sets: { type: "string", default: "grabcut,p3m,davis,carvana" },
      weights: { type: "string", default: new URL("weights/crm-lite.safetensors", ROOT).pathname },
      workers: { type: "string" },
      limit: { type: "string" },
      json: { type: "string" },
      scale: { type: "string", default: "1" },
    },
  });
  const data = positionals[0] ?? new URL("../shared/data", ROOT).pathname;
  const stats: StageStats[] = [];
  const refiner = await createRefinerWith(
    {
      weights: values.weights,
      workers: values.workers === undefined ? undefined : Number(values.workers),
    },
    { schedule: { stats } },
  );
  const results: SetResult[] = [];
  try {
    for (const set of values.sets.split(",")) {
      results.push(
        await runSet(
          refiner,
          stats,
          `${data}/eval/${set}`,
          set,
          values.limit,
          Number(values.scale),
        ),
      );
    }
  } finally {
    refiner.dispose();
  }
  if (values.scale !== "1") console.log(`images and ground truth enlarged x${values.scale}`);
  console.log(`weights: ${values.weights}; provenance ${JSON.stringify(refiner.provenance)}`);
  console.log(
    `workers: ${refiner.workers}; load average ${
      Deno.loadavg().map((x) => x.toFixed(1)).join(" ")
    }`,
  );
  console.log();
  console.log(
    "| set | images (multi-stage) | coarse IoU / mBA | dense IoU / mean IoU / mBA | sparse IoU / mean IoU / mBA | " +
      "Δ IoU / Δ mBA (points) | identical masks | first-stage tiles run | last-stage tiles run (multi-stage) | dense s | sparse s | speed-up |",
  );
  console.log("|---|---:|---|---|---|---|---:|---:|---:|---:|---:|---:|");
  const pts = (x: number) => (100 * x).toFixed(2);
  for (const r of results) {
    const share = (xs: number[]) => xs.length ? `${(100 * mean(xs)).toFixed(1)}%` : "–";
    const active = `${share(r.firstActive)} | ${share(r.activeTiles)}`;
    console.log(
      `| ${r.set} | ${r.images} (${r.multiStage}) | ${pts(r.coarse.datasetIou)} / ${
        pts(r.coarse.meanMba)
      } | ` +
        `${pts(r.dense.datasetIou)} / ${pts(r.dense.meanIou)} / ${pts(r.dense.meanMba)} | ` +
        `${pts(r.sparse.datasetIou)} / ${pts(r.sparse.meanIou)} / ${pts(r.sparse.meanMba)} | ` +
        `${(100 * (r.sparse.datasetIou - r.dense.datasetIou)).toFixed(3)} / ${
          (100 * (r.sparse.meanMba - r.dense.meanMba)).toFixed(3)
        } | ` +
        `${r.identical}/${r.images} | ${active} | ${(r.denseMs / 1000).toFixed(1)} | ${
          (r.sparseMs / 1000).toFixed(1)
        } | ` +
        `${(r.denseMs / r.sparseMs).toFixed(2)} |`,
    );
  }
  if (values.json) {
    await Deno.writeTextFile(
      values.json,
      JSON.stringify(
        results.map((r) => ({
          set: r.set,
          images: r.images,
          multiStage: r.multiStage,
          identical: r.identical,
          denseMs: r.denseMs,
          sparseMs: r.sparseMs,
          firstActiveTiles: r.firstActive,
          activeTiles: r.activeTiles,
          coarse: { iou: r.coarse.datasetIou, mba: r.coarse.meanMba },
          dense: { iou: r.dense.datasetIou, meanIou: r.dense.meanIou, mba: r.dense.meanMba },
          sparse: { iou: r.sparse.datasetIou, meanIou: r.sparse.meanIou, mba: r.sparse.meanMba },
        })),
        null,
        1,
      ),
    );
  }
}

async function runSet(
  refiner: Awaited<ReturnType<typeof createRefinerWith>>,
  stats: StageStats[],
  dir: string,
  set: string,
  limit?: string,
  scale = 1,
): Promise<SetResult> {
  const names = [...Deno.readDirSync(`${dir}/images`)].map((e) => e.name).filter((n) =>
    /\.(jpe?g|png)$/i.test(n)
  ).sort();
  const take = limit ? names.slice(0, Number(limit)) : names;
  const opts = set === "grabcut" ? { ignoreValue: 128 } : {};
  const r: SetResult = {
    set,
    images: 0,
    multiStage: 0,
    coarse: new MaskStats(),
    dense: new MaskStats(),
    sparse: new MaskStats(),
    denseMs: 0,
    sparseMs: 0,
    firstActive: [],
    activeTiles: [],
    identical: 0,
  };
  for (const [i, name] of take.entries()) {
    const stem = name.replace(/\.[^.]+$/, "");
    const { image: photo } = await decodeImage(await Deno.readFile(`${dir}/images/${name}`), name);
    const { mask: gt0 } = await decodeMask(
      await Deno.readFile(`${dir}/gt/${stem}.png`),
      `${stem}.png`,
    );
    const image = scale === 1 ? photo : enlargeImage(photo, scale);
    const gt = scale === 1 ? gt0 : enlargeMask(gt0, image.width, image.height, opts.ignoreValue);
    const { mask: coarse } = await decodeMask(
      await Deno.readFile(`${dir}/coarse-isnet/${stem}.png`),
      `${stem}.png`,
    );
    const runs: Record<string, { mask: Uint8Array; ms: number; stages: StageStats[] }> = {};
    // alternate the order so that load from other jobs falls on both alike
    for (const mode of i % 2 ? ["sparse", "dense"] : ["dense", "sparse"]) {
      stats.length = 0;
      const t0 = performance.now();
      const out = await refiner.refine(image, coarse, { dense: mode === "dense" });
      runs[mode] = { mask: out.data, ms: performance.now() - t0, stages: [...stats] };
    }
    r.images++;
    r.coarse.add(
      coarse.width === gt.width ? coarse : { ...gt, data: resizeTo(coarse, gt.width, gt.height) },
      gt,
      opts,
      name,
    );
    r.dense.add({ width: gt.width, height: gt.height, data: runs.dense.mask }, gt, opts, name);
    r.sparse.add({ width: gt.width, height: gt.height, data: runs.sparse.mask }, gt, opts, name);
    r.denseMs += runs.dense.ms;
    r.sparseMs += runs.sparse.ms;
    r.firstActive.push(runs.sparse.stages[0].activeTiles);
    if (runs.sparse.stages.length > 1) {
      r.multiStage++;
      r.activeTiles.push(runs.sparse.stages.at(-1)!.activeTiles);
    }
    if (runs.dense.mask.every((v, k) => v === runs.sparse.mask[k])) r.identical++;
    console.error(
      `${set} ${i + 1}/${take.length} ${name}: dense ${runs.dense.ms.toFixed(0)} ms, sparse ${
        runs.sparse.ms.toFixed(0)
      } ms`,
    );
  }
  return r;
}

/** The photo enlarged `f` times, bilinear per channel. */
function enlargeImage(src: RgbImage, f: number): RgbImage {
  const w = Math.round(src.width * f), h = Math.round(src.height * f), c = src.channels;
  const out = new Uint8Array(w * h * 3);
  for (let k = 0; k < 3; k++) {
    const plane = new Float32Array(src.width * src.height);
    for (let i = 0; i < plane.length; i++) plane[i] = src.data[i * c + k];
    const big = resizeBilinear({ width: src.width, height: src.height, data: plane }, w, h).data;
    for (let i = 0; i < big.length; i++) out[i * 3 + k] = Math.round(big[i]);
  }
  return { width: w, height: h, channels: 3, data: out };
}

/** Ground truth at w x h: bilinear and thresholded at 128, or nearest where an ignore value exists. */
function enlargeMask(m: Mask, w: number, h: number, ignore?: number): Mask {
  if (ignore !== undefined) return { width: w, height: h, data: resizeTo(m, w, h) };
  const plane = Float32Array.from(m.data);
  const big = resizeBilinear({ width: m.width, height: m.height, data: plane }, w, h).data;
  return { width: w, height: h, data: Uint8Array.from(big, (v) => (v >= 128 ? 255 : 0)) };
}

/** Nearest-neighbour resize (coarse masks are given at full size; this only guards odd files). */
function resizeTo(
  m: { width: number; height: number; data: Uint8Array },
  w: number,
  h: number,
): Uint8Array {
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    const sy = Math.min(m.height - 1, Math.floor(((y + 0.5) * m.height) / h));
    for (let x = 0; x < w; x++) {
      out[y * w + x] =
        m.data[sy * m.width + Math.min(m.width - 1, Math.floor(((x + 0.5) * m.width) / w))];
    }
  }
  return out;
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

await main();
