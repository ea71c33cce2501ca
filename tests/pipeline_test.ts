/**
 * The scheduled pipeline (src/pipeline/): row strips and tiles give the
 * whole-image values bit for bit, the halo never exceeds the receptive
 * radius (and that radius is train/model.py's), the pipeline keeps PyTorch
 * parity, and boundary-band sparsity does what it says.
 *
 * tests/fixtures/receptive_radius.json holds train/model.py's
 * `receptive_radius` for a few configs, written by:
 *   /usr/bin/python3 -c 'import json,sys; sys.path.insert(0,"train"); from model import *; ...'
 * (see the commit that added it; the shipped weights' provenance records
 * the same figure for the shipped config).
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { parseSafetensors } from "../src/weights/safetensors.ts";
import { loadModelWeights } from "../src/weights/model_weights.ts";
import { buildEncoderGraph } from "../src/model/graph.ts";
import { nchwToNhwc } from "../src/model/layout.ts";
import { resize } from "../src/engine/kernels/resize.ts";
import { refineDenseLogits } from "../src/pipeline/refine_dense.ts";
import {
  coarseToStage,
  refineScheduled,
  runStage,
  type StageStats,
} from "../src/pipeline/refine.ts";
import {
  planTiles,
  receptiveRadius,
  SPARSITY,
  type StageGeometry,
  stageSparsity,
  tileRuns,
} from "../src/pipeline/plan.ts";
import { DensePlane, type ProbPlane, RUN } from "../src/pipeline/planes.ts";
import { planUnit } from "../src/pipeline/unit.ts";
import { InlineRunner } from "../src/workers/pool.ts";
import type { ModelConfig } from "../src/weights/model_config.ts";
import { blobMask, differences, sceneImage, unitSetup, WEIGHTS } from "./helpers/scene.ts";

const ctx = await unitSetup("relaxed-simd");
const inline = new InlineRunner(ctx);
const config = loadModelWeights(WEIGHTS, "weights").config;

// 300 rows x 200 columns, first stage forced small: stages 75x50, 150x100, 300x200.
const BASE = 80;
const image = sceneImage(200, 300);
const coarseBig = blobMask(100, 150); // shrinks to the first stage: area
const coarseSmall = blobMask(40, 60); // grows to the first stage: bilinear
const wholeImage = refineDenseLogits(ctx.net, image, coarseBig, { baseLongSide: BASE });

function relativeL2(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

Deno.test("receptiveRadius equals train/model.py's receptive_radius", async () => {
  const fixture = JSON.parse(
    await Deno.readTextFile(new URL("./fixtures/receptive_radius.json", import.meta.url)),
  ) as { cases: { stages: ModelConfig["stages"]; receptive_radius: number }[] };
  assert(fixture.cases.length >= 3);
  for (const c of fixture.cases) {
    assertEquals(receptiveRadius({ stages: c.stages }), c.receptive_radius);
  }
  const provenance = loadModelWeights(WEIGHTS, "weights").provenance as {
    receptive_radius_px?: number;
  };
  assertEquals(receptiveRadius(config), provenance.receptive_radius_px);
});

Deno.test("encoder windows reach as far as the receptive radius, and no farther than one upsampling phase more", () => {
  // The planner derives each layer's halo exactly (that is what makes strips exact); the
  // receptive radius is the figure train/model.py states. They agree up to the phase of the
  // bilinear upsampling from stride 8: a stride-2 row reads stride-8 cells up to 1.25 cells
  // (10 px) away, where the formula counts one cell (8 px).
  const graph = buildEncoderGraph(config);
  const R = receptiveRadius(config);
  const [H, W] = [1000, 1500];
  let widest = 0;
  for (let t0 = 400; t0 < 416; t0++) {
    const geo: StageGeometry = { size: [H, W], target: [H, W], full: [H, W] };
    const rect = { y0: t0, x0: 600, h: 8, w: 64 };
    const input = planUnit(graph, geo, [rect]).plan.spans.get("input")!;
    widest = Math.max(widest, t0 - input.r0, input.r1 - (t0 + 8), 600 - input.c0, input.c1 - 664);
  }
  assert(widest >= R - 8 && widest <= R + 2, `widest reach ${widest}, radius ${R}`);
  const rect = { y0: 0, x0: 0, h: 8, w: 8 };
  const corner = planUnit(graph, { size: [H, W], target: [H, W], full: [H, W] }, [rect]).plan.spans
    .get("input")!;
  assertEquals([corner.r0, corner.c0], [0, 0]);
  assert(corner.r1 <= 8 + R + 2 && corner.c1 <= 8 + R + 2);
});

Deno.test("row strips give the whole-image logits bit for bit at several strip heights", async () => {
  for (const rows of [8, 24, 40, 104, 300]) {
    const stats: StageStats[] = [];
    const out = await refineScheduled(ctx, inline, image, coarseBig, "logits", {
      baseLongSide: BASE,
      dense: true,
      stripRows: rows,
      stats,
    });
    assertEquals(stats.map((s) => s.target[0]), [150, 300, 300]);
    assertEquals(stats[2].units, Math.ceil(300 / rows), "strips of the last stage");
    assertEquals(differences(out, wholeImage), [], `strips of ${rows} rows`);
  }
});

Deno.test("the default plan (streamed strips per worker) gives the whole-image logits bit for bit", async () => {
  for (const coarse of [coarseBig, coarseSmall, blobMask(50, 75), blobMask(160, 240)]) {
    const ref = coarse === coarseBig
      ? wholeImage
      : refineDenseLogits(ctx.net, image, coarse, { baseLongSide: BASE });
    const out = await refineScheduled(ctx, inline, image, coarse, "logits", {
      baseLongSide: BASE,
      dense: true,
    });
    assertEquals(differences(out, ref), [], `coarse ${coarse.width}x${coarse.height}`);
  }
});

Deno.test("the plain-SIMD build gives its own whole-image logits bit for bit in strips", async () => {
  const plain = await unitSetup("simd");
  const ref = refineDenseLogits(plain.net, image, coarseBig, { baseLongSide: BASE });
  const out = await refineScheduled(plain, new InlineRunner(plain), image, coarseBig, "logits", {
    baseLongSide: BASE,
    dense: true,
    stripRows: 40,
  });
  assertEquals(differences(out, ref), []);
});

Deno.test("an RGBA image refines exactly as its RGB pixels", async () => {
  const rgba = sceneImage(200, 300, 4);
  const out = await refineScheduled(ctx, inline, rgba, coarseBig, "logits", {
    baseLongSide: BASE,
    dense: true,
    stripRows: 64,
  });
  assertEquals(differences(out, wholeImage), []);
});

/** The last stage's input mask and geometry, from the dense pipeline's own previous stage. */
async function lastStageInput() {
  const stats: StageStats[] = [];
  const geo0: StageGeometry = { size: [75, 50], target: [150, 100], full: [300, 200] };
  const m0 = new DensePlane(75, 50, coarseToStage(ctx, coarseBig, geo0.size));
  const p1 = await runStage(ctx, inline, image, m0, geo0, "prob", {
    dense: true,
    stats,
  }) as ProbPlane;
  const geo1: StageGeometry = { size: [150, 100], target: [300, 200], full: [300, 200] };
  return { p1, geo1 };
}

/** A previous prediction with confident regions: a sigmoid-edged ellipse on the 150x100 grid. */
function confidentPrevious(): DensePlane {
  const prev = new Float32Array(150 * 100);
  for (let y = 0; y < 150; y++) {
    for (let x = 0; x < 100; x++) {
      const d = Math.hypot((x - 50) / 30, (y - 80) / 45);
      prev[y * 100 + x] = 1 / (1 + Math.exp(-12 * (1 - d)));
    }
  }
  return new DensePlane(150, 100, prev);
}

Deno.test("tile windows (cut in rows and columns) give the whole-stage values bit for bit", async () => {
  const { p1, geo1 } = await lastStageInput();
  const whole = await runStage(ctx, inline, image, p1, geo1, "logits", {
    dense: true,
    stripRows: 300,
  }) as Float32Array;
  // everything active, tiles of 16 px, tiny budget: many small 2-D units
  for (const [tile, unitBytes] of [[16, 1 << 18], [32, 1 << 19], [48, 1 << 30]]) {
    const stats: StageStats[] = [];
    const out = await runStage(ctx, inline, image, p1, geo1, "logits", {
      sparsity: { tile, low: -1, high: 2, denseAbove: Infinity },
      unitBytes,
      stats,
    }) as Float32Array;
    assertEquals(stats[0].activeTiles, 1);
    if (unitBytes < 1 << 20) assert(stats[0].units >= 4, `${stats[0].units} units`);
    assertEquals(differences(out, whole), [], `tiles of ${tile}, ${stats[0].units} units`);
  }
});

Deno.test("the scheduled pipeline keeps PyTorch parity on the golden pipeline fixture", async () => {
  const golden = parseSafetensors(
    await Deno.readFile(new URL("./fixtures/golden.safetensors", import.meta.url)),
    "golden fixture",
  );
  const meta = JSON.parse(golden.metadata.get("golden")!) as {
    pipeline: { base_long_side: number };
  };
  const img = golden.getTensor("pipeline.image");
  const [, , h, w] = img.shape;
  const c = golden.getTensor("pipeline.coarse");
  const [, , ch, cw] = c.shape;
  const px = {
    width: w,
    height: h,
    channels: 3 as const,
    data: Uint8Array.from(nchwToNhwc(img.data, 3, h, w)),
  };
  const coarse = { width: cw, height: ch, data: Uint8Array.from(c.data) };
  const ref = golden.getTensor("pipeline.logits").data;
  const whole = refineDenseLogits(ctx.net, px, coarse, {
    baseLongSide: meta.pipeline.base_long_side,
  });
  for (const stripRows of [undefined, 16]) {
    const out = await refineScheduled(ctx, inline, px, coarse, "logits", {
      baseLongSide: meta.pipeline.base_long_side,
      dense: true,
      stripRows,
    });
    const err = relativeL2(out, ref);
    assert(err < 1e-4, `relative L2 ${err.toExponential(2)}`);
    assertEquals(differences(out, whole), []);
  }
});

Deno.test("planTiles: confident tiles far from the band are skipped, the rest run", () => {
  // previous probability on a 64x64 grid, queried at 128x128 with 16 px tiles (8 px of the grid)
  const geo: StageGeometry = { size: [64, 64], target: [128, 128], full: [128, 128] };
  const prob = new Float32Array(64 * 64);
  for (let y = 0; y < 64; y++) {
    for (let x = 0; x < 64; x++) {
      prob[y * 64 + x] = x < 32 ? 0.001 : 0.999;
    }
  }
  prob[13 * 64 + 50] = 0.5; // one uncertain pixel inside the confident foreground
  const map = planTiles(new DensePlane(64, 64, prob), geo, {
    tile: 16,
    low: 0.02,
    high: 0.98,
    margin: 3,
  });
  assertEquals([map.rows, map.cols], [8, 8]);
  const active = (r: number, c: number) => map.state[r * 8 + c] === RUN;
  for (let r = 0; r < 8; r++) {
    // the contour between grid columns 31 and 32 (target 64): tiles 3 and 4 see both classes
    // within the margin; tiles 0-2 are confident background
    assert(active(r, 3) && active(r, 4), `row ${r}: contour tiles`);
    assert(!active(r, 0) && !active(r, 1) && !active(r, 2), `row ${r}: background`);
  }
  // grid pixel (13, 50) lies in tile (1, 6) (grid rows 8..15); the margin of 3 reaches tile (2, 6)
  assert(active(1, 6) && active(2, 6), "tiles around the uncertain pixel");
  assert(!active(0, 6) && !active(3, 6) && !active(7, 7), "foreground away from it");
  const skipped = tileRuns(map, geo, "skip").reduce((a, r) => a + r.h * r.w, 0);
  const run = tileRuns(map, geo, "run").reduce((a, r) => a + r.h * r.w, 0);
  assertEquals(skipped + run, 128 * 128);
});

Deno.test("sparse stage: active tiles equal the dense stage, skipped tiles keep the upsampled previous prediction", async () => {
  // a previous prediction with confident regions: the dense pipeline's own, sharpened
  const { geo1 } = await lastStageInput();
  const geo: StageGeometry = { size: [150, 100], target: [300, 200], full: [300, 200] };
  const prev = confidentPrevious();
  assertEquals(geo, { ...geo1, target: [300, 200] });
  const whole = { y0: 0, x0: 0, h: 300, w: 200 };
  const dense =
    (await runStage(ctx, inline, image, prev, geo, "prob", { dense: true }) as ProbPlane).read(
      whole,
    );
  const sparsity = { tile: 32, low: 0.02, high: 0.98, margin: 4, denseAbove: Infinity };
  const stats: StageStats[] = [];
  const sparse =
    (await runStage(ctx, inline, image, prev, geo, "prob", { sparsity, stats }) as ProbPlane).read(
      whole,
    );
  const map = planTiles(prev, geo, sparsity);
  assert(
    stats[0].activeTiles > 0.1 && stats[0].activeTiles < 0.9,
    `active ${stats[0].activeTiles}`,
  );
  // the upsampled previous prediction, whole image, by the whole-image kernel
  const k = ctx.net.kernels, arena = ctx.net.arena;
  const mark = arena.mark();
  const src = arena.upload(prev.data), dst = arena.f32(300 * 200);
  resize(k, { ptr: src.ptr, h: 150, w: 100, channels: 1 }, {
    ptr: dst.ptr,
    h: 300,
    w: 200,
    channels: 1,
  });
  const upsampled = arena.view(dst).slice();
  arena.release(mark);
  for (const [want, flag] of [[dense, "run"], [upsampled, "skip"]] as const) {
    for (const r of tileRuns(map, geo, flag)) {
      for (let y = r.y0; y < r.y0 + r.h; y++) {
        const row = y * 200;
        const got = sparse.subarray(row + r.x0, row + r.x0 + r.w),
          exp = want.subarray(row + r.x0, row + r.x0 + r.w);
        assertEquals(differences(got, exp), [], `${flag} row ${y}`);
      }
    }
  }
});

Deno.test("sparse results do not depend on how tiles are grouped into units", async () => {
  const { geo1 } = await lastStageInput();
  const sharp = confidentPrevious();
  const runs = [];
  const stats: StageStats[] = [];
  for (const [unitBytes, workers] of [[1 << 18, 1], [64 << 20, 3], [1 << 30, 8]]) {
    const runner = Object.assign(new InlineRunner(ctx), { concurrency: workers });
    runs.push(
      await runStage(ctx, runner, image, sharp, geo1, "logits", {
        sparsity: { tile: 16, denseAbove: Infinity },
        unitBytes,
        stats,
      }) as Float32Array,
    );
  }
  assert(stats[0].activeTiles < 0.9, `active ${stats[0].activeTiles}`);
  assert(new Set(stats.map((s) => s.units)).size >= 2, `units ${stats.map((s) => s.units)}`);
  assertEquals(differences(runs[0], runs[1]), []);
  assertEquals(differences(runs[0], runs[2]), []);
});

Deno.test("sparse with nothing confident is the dense pipeline (tiles, or strips when tiles do not pay)", async () => {
  for (const denseAbove of [Infinity, 0.9]) {
    const stats: StageStats[] = [];
    const out = await refineScheduled(ctx, inline, image, coarseBig, "logits", {
      baseLongSide: BASE,
      sparsity: { low: -1, high: 2, denseAbove },
      stats,
    });
    assertEquals(stats.map((s) => s.sparse), [
      denseAbove === Infinity,
      denseAbove === Infinity,
      denseAbove === Infinity,
    ]);
    assertEquals(differences(out, wholeImage), []);
  }
});

Deno.test("the first stage runs near the coarse mask's contour only: far from it the coarse mask passes through", async () => {
  // one stage (the image is no larger than the first stage); a hard coarse blob
  const coarse = blobMask(200, 300);
  const stats: StageStats[] = [];
  const sparse = await refineScheduled(ctx, inline, image, coarse, "u8", {
    baseLongSide: 300,
    sparsity: { tile: 16, denseAbove: Infinity },
    stats,
  });
  const dense = await refineScheduled(ctx, inline, image, coarse, "u8", {
    baseLongSide: 300,
    dense: true,
  });
  assertEquals(stats.length, 1);
  assert(
    stats[0].sparse && stats[0].activeTiles > 0.05 && stats[0].activeTiles < 0.8,
    `active ${stats[0].activeTiles}`,
  );
  // the tiles that ran hold the dense values; every other pixel holds the coarse mask's
  const geo: StageGeometry = { size: [300, 200], target: [300, 200], full: [300, 200] };
  const prev = new DensePlane(300, 200, coarseToStage(ctx, coarse, [300, 200]));
  const map = planTiles(prev, geo, stageSparsity({ tile: 16 }, 0));
  let ran = 0, kept = 0;
  for (const [want, from] of [["run", dense], ["skip", coarse.data]] as const) {
    for (const r of tileRuns(map, geo, want)) {
      for (let y = r.y0; y < r.y0 + r.h; y++) {
        const row = y * 200;
        assertEquals(
          sparse.subarray(row + r.x0, row + r.x0 + r.w),
          from.subarray(row + r.x0, row + r.x0 + r.w),
        );
        if (want === "run") ran += r.w;
        else kept += r.w;
      }
    }
  }
  assertEquals(ran + kept, 300 * 200);
  // every pixel of the coarse mask's uncertain band, or within the first-stage margin of it, ran
  const margin = SPARSITY.firstMargin;
  const state = (y: number, x: number) => {
    const v = coarse.data[Math.min(299, Math.max(0, y)) * 200 + Math.min(199, Math.max(0, x))];
    return v <= 255 * SPARSITY.low ? 0 : v >= 255 * SPARSITY.high ? 2 : 1;
  };
  let near = 0;
  for (let y = 0; y < 300; y++) {
    for (let x = 0; x < 200; x++) {
      const s = state(y, x);
      const inBand = s === 1 ||
        [[0, margin], [0, -margin], [margin, 0], [-margin, 0]].some(([dy, dx]) =>
          state(y + dy, x + dx) !== s
        );
      if (!inBand) continue;
      near++;
      assertEquals(sparse[y * 200 + x], dense[y * 200 + x], `pixel ${x},${y}`);
    }
  }
  assert(near > 1000 && kept > 1000, `near ${near}, kept ${kept}`);
});

Deno.test("sparse planes read through to the previous stages exactly as materialised planes", async () => {
  // a "low" threshold at a percentile of the model's own output, the lowest of those tried at
  // which tiles are skipped at both later stages (so whatever the weights), so that the last
  // stage reads through two sparse planes
  const probs = Float32Array.from(wholeImage, (x) => 1 / (1 + Math.exp(-x))).sort();
  const sparsityAt = (q: number) => ({
    tile: 16,
    low: probs[Math.floor(q * probs.length)],
    high: 2,
    margin: 2,
    denseAbove: Infinity,
  });
  let sparsity = sparsityAt(0.6);
  let stats: StageStats[] = [];
  let lazy: Float32Array = new Float32Array(0);
  for (const q of [0.6, 0.7, 0.8, 0.9]) {
    sparsity = sparsityAt(q);
    stats = [];
    lazy = await refineScheduled(ctx, inline, image, coarseBig, "logits", {
      baseLongSide: BASE,
      sparsity,
      stats,
    }) as Float32Array;
    if (stats[1].activeTiles < 0.95 && stats[2].activeTiles < 0.95) break;
  }
  assert(
    stats[1].activeTiles < 0.95 && stats[2].activeTiles < 0.95,
    `active ${stats.map((s) => s.activeTiles)}`,
  );
  // the same stages with every plane materialised as a dense array between stages
  let mask: ProbPlane = new DensePlane(75, 50, coarseToStage(ctx, coarseBig, [75, 50]));
  const geos: StageGeometry[] = [
    { size: [75, 50], target: [150, 100], full: [300, 200] },
    { size: [150, 100], target: [300, 200], full: [300, 200] },
    { size: [300, 200], target: [300, 200], full: [300, 200] },
  ];
  for (let s = 0; s < 2; s++) {
    const plane = await runStage(ctx, inline, image, mask, geos[s], "prob", {
      sparsity: stageSparsity(sparsity, s),
    }) as ProbPlane;
    mask = new DensePlane(plane.h, plane.w, plane.read({ y0: 0, x0: 0, h: plane.h, w: plane.w }));
  }
  const eager = await runStage(ctx, inline, image, mask, geos[2], "logits", {
    sparsity,
  }) as Float32Array;
  assertEquals(differences(lazy, eager), []);
});
