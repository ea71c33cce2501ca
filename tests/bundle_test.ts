/**
 * The one-file bundle (dist/crispmask.js, built by `deno task bundle`, which
 * `deno task test` runs first) in Deno and in Node, on the bundled example:
 * its masks equal the unbundled library's bit for bit, with each kernel
 * build. Also: the bundle exports what mod.ts exports, and the hand-written
 * declarations (types/crispmask.d.ts) agree with mod.ts's types both ways.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { fileURLToPath } from "node:url";
import type * as Declared from "../types/crispmask.d.ts";
import type * as Mod from "../mod.ts";
import { createRefiner, type KernelBuild, type Mask, type RgbImage } from "../mod.ts";
import { decodeImage, decodeMask } from "../src/io/image_file.ts";
import { differences } from "./helpers/scene.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const BUNDLE = new URL("../dist/crispmask.js", import.meta.url);
const WEIGHTS_MODULE = new URL("../dist/weights.js", import.meta.url);

try {
  await Deno.stat(BUNDLE);
} catch {
  throw new Error("dist/crispmask.js is missing: run `deno task bundle` (deno task test does)");
}

const image: RgbImage =
  (await decodeImage(await Deno.readFile(`${ROOT}examples/coffee.png`), "coffee.png")).image;
const coarse: Mask =
  (await decodeMask(await Deno.readFile(`${ROOT}examples/coffee_coarse.png`), "coarse")).mask;

/** The unbundled library's mask for the example, with `build`. */
async function sourceResult(build: KernelBuild): Promise<Mask> {
  const refiner = await createRefiner({ build, workers: 0 });
  try {
    return await refiner.refine(image, coarse);
  } finally {
    refiner.dispose();
  }
}
const expected: Record<KernelBuild, Mask> = {
  "relaxed-simd": await sourceResult("relaxed-simd"),
  "simd": await sourceResult("simd"),
};

type Bundle = typeof import("../mod.ts");

Deno.test("the bundle exports exactly what mod.ts exports, and the .d.ts declares them", async () => {
  const bundle = await import(BUNDLE.href);
  const mod = await import("../mod.ts");
  assertEquals(Object.keys(bundle).sort(), Object.keys(mod).sort());
  const dts = await Deno.readTextFile(`${ROOT}types/crispmask.d.ts`);
  const declared = [...dts.matchAll(/^export declare (?:const|function|class) (\w+)/gm)]
    .map((m) => m[1]);
  assertEquals(declared.sort(), Object.keys(mod).sort());
});

Deno.test("the bundle in Deno: Blob-URL workers, both builds, bit-exact with the source", async () => {
  const bundle: Bundle = await import(BUNDLE.href);
  const { weights } = await import(WEIGHTS_MODULE.href);
  for (const build of ["relaxed-simd", "simd"] as const) {
    // default weights (read from ../weights beside dist/) for one build, inlined bytes for the other
    const refiner = await bundle.createRefiner(
      build === "simd" ? { build, workers: 2, weights } : { build, workers: 2 },
    );
    try {
      assertEquals(refiner.workers, 2, "workers started from the embedded source");
      const out = await refiner.refine(image, coarse);
      assertEquals([out.width, out.height], [image.width, image.height]);
      assertEquals(differences(out.data, expected[build].data), [], build);
    } finally {
      refiner.dispose();
    }
  }
});

/** Runs tests/helpers/node_refine.mjs on the example in Node; returns its mask and report. */
async function inNode(
  nodeFlags: string[],
  input: { build?: KernelBuild; bytesWeights?: boolean },
): Promise<{ data: Uint8Array; info: { build: string; workers: number; node: string } }> {
  const dir = await Deno.makeTempDir({ prefix: "crispmask-node-" });
  try {
    await Deno.writeFile(`${dir}/image.bin`, new Uint8Array(image.data));
    await Deno.writeFile(`${dir}/mask.bin`, coarse.data);
    await Deno.writeTextFile(
      `${dir}/input.json`,
      JSON.stringify({
        width: image.width,
        height: image.height,
        channels: image.channels,
        maskWidth: coarse.width,
        maskHeight: coarse.height,
        ...input,
      }),
    );
    const run = await new Deno.Command("node", {
      args: [...nodeFlags, `${ROOT}tests/helpers/node_refine.mjs`, dir],
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).output();
    const stderr = new TextDecoder().decode(run.stderr);
    assertEquals(run.code, 0, `node failed: ${stderr}`);
    return {
      data: await Deno.readFile(`${dir}/out.bin`),
      info: JSON.parse(await Deno.readTextFile(`${dir}/info.json`)),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the bundle in Node: default build (plain SIMD on Node 20), bit-exact", async () => {
  const { data, info } = await inNode([], {});
  assert(Number(info.node.slice(1).split(".")[0]) >= 20, `Node ${info.node}`);
  const build = info.build as KernelBuild;
  assertEquals(differences(data, expected[build].data), [], `${build} on Node ${info.node}`);
});

Deno.test("the bundle in Node: relaxed SIMD and inlined weights, bit-exact", async () => {
  const { data, info } = await inNode(["--experimental-wasm-relaxed-simd"], {
    build: "relaxed-simd",
    bytesWeights: true,
  });
  assertEquals(info.build, "relaxed-simd");
  assertEquals(differences(data, expected["relaxed-simd"].data), []);
});

// Type level: each declaration in types/crispmask.d.ts and mod.ts's agree both ways
// (`deno test` type-checks this file, so a mismatch fails the run).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _typesAgree: [
  Same<Declared.RgbImage, Mod.RgbImage>,
  Same<Declared.Mask, Mod.Mask>,
  Same<Declared.KernelBuild, Mod.KernelBuild>,
  Same<Declared.WeightsSource, Mod.WeightsSource>,
  Same<Declared.Progress, Mod.Progress>,
  Same<Declared.RefinerOptions, Mod.RefinerOptions>,
  Same<Declared.RefineOptions, Mod.RefineOptions>,
  Same<Declared.StageReport, Mod.StageReport>,
  Same<Declared.StageStats, Mod.StageStats>,
  Same<typeof Declared.BoundaryRegions, typeof Mod.BoundaryRegions>,
  Same<Declared.BoundaryRegions, Mod.BoundaryRegions>,
  Same<Declared.Refiner, Mod.Refiner>,
  Same<Declared.ErrorCode, Mod.ErrorCode>,
  Same<Declared.MetricOptions, Mod.MetricOptions>,
  Same<Declared.IouResult, Mod.IouResult>,
  Same<Declared.BoundaryCount, Mod.BoundaryCount>,
  Same<Declared.MbaResult, Mod.MbaResult>,
  Same<Declared.ImageStats, Mod.ImageStats>,
  Same<typeof Declared.TINY_OBJECT, typeof Mod.TINY_OBJECT>,
  Same<typeof Declared.createRefiner, typeof Mod.createRefiner>,
  Same<typeof Declared.CrispmaskError, typeof Mod.CrispmaskError>,
  Same<Declared.CrispmaskError, Mod.CrispmaskError>,
  Same<typeof Declared.iou, typeof Mod.iou>,
  Same<typeof Declared.mba, typeof Mod.mba>,
  Same<typeof Declared.MaskStats, typeof Mod.MaskStats>,
  Same<Declared.MaskStats, Mod.MaskStats>,
] = [
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
];
