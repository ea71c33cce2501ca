/**
 * The quality benchmark end to end on a tiny synthetic dataset written to a
 * temporary directory: the real engine, every method and coarse kind, the
 * table's rows, the skipped files (a set without images, an image without
 * ground truth, a ground truth of the wrong size, a missing coarse mask), the
 * ignore value, panels and JSON. Needs no ../shared/data.
 */
import {
  deepStrictEqual as assertEquals,
  notDeepStrictEqual as assertNotEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import { join } from "node:path";
import encodeJpegRaw from "@jsquash/jpeg/encode.js";
import { decodePng } from "../src/io/png.ts";
import { encodeImagePng, encodeMaskPng } from "../src/io/image_file.ts";
import type { Mask, RgbImage } from "../src/types.ts";
import { formatFooter, main, parseCommandLine, runQuality, UsageError } from "../bench/quality.ts";
import { formatTable } from "../bench/quality_report.ts";
import { renderPanel, worstWindow } from "../bench/panels.ts";

const W = 64, H = 48;

/** A photo of a bright ellipse (centre cx) on a dark textured background, and its mask. */
function scene(cx: number, w = W, h = H): { image: RgbImage; gt: Mask } {
  const data = new Uint8Array(w * h * 3), gt = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const inside = ((x - cx) / (w * 0.25)) ** 2 + ((y - h / 2) / (h * 0.3)) ** 2 <= 1;
      const tex = (x * 7 + y * 13) % 23;
      data.set(inside ? [200 + tex, 180, 60] : [30 + tex, 50, 90], 3 * (y * w + x));
      gt[y * w + x] = inside ? 255 : 0;
    }
  }
  return {
    image: { width: w, height: h, channels: 3, data },
    gt: { width: w, height: h, data: gt },
  };
}

/** The mask shifted right by `dx` px and softened: a plausible network mask. */
function coarseOf(gt: Mask, dx: number): Mask {
  const { width: w, height: h } = gt, out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let k = -1; k <= 1; k++) s += gt.data[y * w + Math.min(w - 1, Math.max(0, x - dx + k))];
      out[y * w + x] = Math.round(s / 3);
    }
  }
  return { width: w, height: h, data: out };
}

async function jpeg(image: RgbImage): Promise<Uint8Array> {
  const rgba = new Uint8ClampedArray(image.width * image.height * 4);
  for (let i = 0; i < image.width * image.height; i++) {
    rgba.set(image.data.subarray(3 * i, 3 * i + 3), 4 * i);
    rgba[4 * i + 3] = 255;
  }
  const buf = await encodeJpegRaw(
    { width: image.width, height: image.height, data: rgba } as ImageData,
    { quality: 95 },
  );
  return new Uint8Array(buf);
}

async function put(path: string, bytes: Uint8Array): Promise<void> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await Deno.writeFile(path, bytes);
}

/**
 * The dataset:
 * - `alpha`: 3 images with coarse-isnet, one of whose coarse masks is missing;
 * - `beta`: no coarse folder; one good image, one without ground truth, one
 *   whose ground truth has another size, and a ground truth without image;
 * - `grabcut`: one image whose ground truth has a 128 band (ignored by default);
 * - `empty`: an images/ folder with nothing in it.
 */
async function writeDataset(dir: string): Promise<void> {
  for (const [i, cx] of [[0, 28], [1, 32], [2, 36]]) {
    const { image, gt } = scene(cx);
    await put(join(dir, "alpha/images", `a${i}.jpg`), await jpeg(image));
    await put(join(dir, "alpha/gt", `a${i}.png`), encodeMaskPng(gt));
    if (i !== 2) {
      await put(join(dir, "alpha/coarse-isnet", `a${i}.png`), encodeMaskPng(coarseOf(gt, 3)));
    }
  }
  const good = scene(30);
  await put(join(dir, "beta/images/b_good.jpg"), await jpeg(good.image));
  await put(join(dir, "beta/gt/b_good.png"), encodeMaskPng(good.gt));
  await put(join(dir, "beta/images/b_nogt.jpg"), await jpeg(good.image));
  await put(join(dir, "beta/images/b_size.png"), encodeImagePng(good.image));
  await put(join(dir, "beta/gt/b_size.png"), encodeMaskPng(scene(30, W / 2, H / 2).gt));
  await put(join(dir, "beta/gt/b_orphan.png"), encodeMaskPng(good.gt));
  const band = scene(32);
  const g = band.gt.data.map((v, i) => (v !== coarseOf(band.gt, 1).data[i] ? 128 : v));
  await put(join(dir, "grabcut/images/g0.jpg"), await jpeg(band.image));
  await put(join(dir, "grabcut/gt/g0.png"), encodeMaskPng({ width: W, height: H, data: g }));
  await Deno.mkdir(join(dir, "empty/images"), { recursive: true });
  await Deno.mkdir(join(dir, "empty/gt"), { recursive: true });
}

Deno.test({
  name:
    "quality benchmark: rows, skipped files, ignore values, panels and JSON on a synthetic dataset",
  sanitizeResources: false, // the refiner's workers (when present) outlive a step's bookkeeping
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "crispmask_quality_" });
    try {
      await writeDataset(dir);
      const panels = join(dir, "panels"), json = join(dir, "out.json");
      const logs: string[] = [];
      const { options } = parseCommandLine([
        "--data",
        dir,
        "--workers",
        "1",
        "--methods",
        "coarse,guided,sparse,dense",
        "--panels",
        panels,
        "--json",
        json,
      ]);
      const report = await runQuality({ ...options, log: (m) => logs.push(m) });

      // sets found by layout, sorted; kinds x methods rows
      assertEquals(report.sets, ["alpha", "beta", "empty", "grabcut"]);
      const keys = report.results.map((r) => `${r.set}/${r.kind}/${r.method}/${r.images}`);
      const rows = (set: string, kinds: string[], n: number) =>
        kinds.flatMap((k) =>
          ["coarse", "guided", "sparse", "dense"].map((m) => `${set}/${k}/${m}/${n}`)
        );
      assertEquals(
        keys.filter((k) => k.startsWith("alpha/")).slice(0, 4),
        rows("alpha", ["isnet"], 2),
      );
      assertEquals(
        keys.filter((k) => k.startsWith("alpha/")).slice(4),
        rows("alpha", ["lowres8", "lowres32", "perturbed"], 3),
      );
      assertEquals(
        keys.filter((k) => k.startsWith("beta/")),
        rows("beta", ["lowres8", "lowres32", "perturbed"], 1),
      );
      assertEquals(
        keys.filter((k) => k.startsWith("grabcut/")),
        rows("grabcut", ["lowres8", "lowres32", "perturbed"], 1),
      );
      assertEquals(report.ignore, { alpha: null, beta: null, empty: null, grabcut: 128 });

      // every skipped file is named with its reason
      const skipped = report.skipped.map((s) =>
        `${s.set} ${s.file.slice(dir.length + 1)} ${s.kind ?? ""} ${s.reason}`
      );
      const expect = [
        /^alpha alpha\/coarse-isnet\/a2.png isnet no such file/,
        /^beta beta\/images\/b_nogt.jpg {2}no ground truth gt\/b_nogt.png/,
        /^beta beta\/gt\/b_orphan.png {2}ground truth without an image/,
        /^beta beta\/coarse-isnet isnet no such folder/,
        /^beta beta\/gt\/b_size.png {2}ground truth is 32x24 but the image .*b_size.png is 64x48/,
        /^empty empty\/images {2}the set has no images/,
        /^grabcut grabcut\/coarse-isnet isnet no such folder/,
      ];
      assertEquals(skipped.length, expect.length, skipped.join("\n"));
      for (const re of expect) {
        assert(skipped.some((s) => re.test(s)), `no skip like ${re}:\n${skipped.join("\n")}`);
      }
      const footer = formatFooter(report);
      assert(footer.includes("Skipped (7):") && footer.includes("b_size.png"), footer);
      assert(footer.includes("grabcut 128"), footer);

      // figures: the coarse rows are the reference; IoU and mBA are percentages in [0, 1]
      for (const r of report.results) {
        assert(
          r.dataset_iou >= 0 && r.dataset_iou <= 1 && r.mba >= 0 && r.mba <= 1,
          JSON.stringify(r),
        );
        assertEquals(r.per_image.length, r.images);
        // the IoU lost splits into missed and extra foreground, image by image and on average
        for (const p of r.per_image) {
          assert(Math.abs(p.iou + p.missed + p.extra - 1) < 1e-12, JSON.stringify(p));
        }
        assert(Math.abs(r.mean_iou + r.missed + r.extra - 1) < 1e-12, JSON.stringify(r));
        if (r.method === "coarse") {
          assert(r.seconds_per_image === null && !r.boundary_error_removed);
        } else assert(r.seconds_per_image !== null && r.seconds_per_image >= 0);
      }
      const isnet = report.results.find((r) =>
        r.set === "alpha" && r.kind === "isnet" && r.method === "coarse"
      )!;
      assert(isnet.mba < 1 && isnet.dataset_iou < 1, "a shifted coarse mask is imperfect");
      // shifted: it misses foreground on one side and adds some on the other
      assert(isnet.missed > 0 && isnet.extra > 0, JSON.stringify(isnet));

      // the table: header, separator, one line per row
      const table = formatTable(report.results).split("\n");
      assertEquals(table.length, 2 + report.results.length);
      assert(
        table[0].startsWith("| set | kind | method | images | IoU (dataset) | mean IoU | mBA |"),
      );
      assert(table.some((l) => l.startsWith("| alpha | isnet | guided | 2 |")));
      assert(table.some((l) => l.startsWith("| beta | perturbed* | dense | 1 |")));

      // panels: one per image and kind, photo height 320
      for (
        const p of [
          "alpha/isnet/a0.png",
          "alpha/perturbed/a2.png",
          "beta/lowres8/b_good.png",
          "grabcut/lowres32/g0.png",
        ]
      ) {
        const png = decodePng(await Deno.readFile(join(panels, p)));
        assertEquals(png.height, 320 + 8, p);
      }
      let panelCount = 0;
      for await (const set of Deno.readDir(panels)) {
        for await (const kind of Deno.readDir(join(panels, set.name))) {
          for await (const _ of Deno.readDir(join(panels, set.name, kind.name))) panelCount++;
        }
      }
      assertEquals(panelCount, 2 + 3 * 3 + 3 + 3);

      // the command line writes the same results as JSON
      const code = await main([
        "--data",
        dir,
        "--sets",
        "alpha",
        "--kinds",
        "isnet",
        "--methods",
        "coarse,guided",
        "--json",
        json,
      ]);
      assertEquals(code, 0);
      const written = JSON.parse(await Deno.readTextFile(json));
      assertEquals(written.results.map((r: { method: string }) => r.method), ["coarse", "guided"]);
      assertEquals(written.weights, null); // no engine was needed
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("quality benchmark: --ignore and --limit; bad command lines are usage errors", async () => {
  const dir = await Deno.makeTempDir({ prefix: "crispmask_quality_" });
  try {
    await writeDataset(dir);
    const base = ["--data", dir, "--sets", "grabcut", "--kinds", "lowres8", "--methods", "coarse"];
    const ignored = await runQuality({ ...parseCommandLine(base).options, log: () => {} });
    const counted = await runQuality({
      ...parseCommandLine([...base, "--ignore", "grabcut=none"]).options,
      log: () => {},
    });
    // the 128 band counts as foreground unless ignored
    assert(ignored.results[0].per_image[0].iou !== counted.results[0].per_image[0].iou);
    assertEquals(counted.ignore, { grabcut: null });
    const limited = await runQuality({
      ...parseCommandLine([
        "--data",
        dir,
        "--sets",
        "alpha",
        "--kinds",
        "lowres8",
        "--methods",
        "coarse",
        "--limit",
        "1",
      ]).options,
      log: () => {},
    });
    assertEquals(limited.results[0].per_image.map((r) => r.name), ["a0"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assertThrows(() => parseCommandLine(["--methods", "coarse,crm"]), UsageError);
  // dense inference is opt-in: the default run stays within 10 minutes on the eval sets
  assertEquals(parseCommandLine([]).options.methods, ["coarse", "guided", "sparse"]);
  assertThrows(() => parseCommandLine(["--limit", "0"]), UsageError);
  assertThrows(() => parseCommandLine(["--ignore", "grabcut"]), UsageError);
  assertThrows(() => parseCommandLine(["--bogus"]), UsageError);
  assertThrows(() => parseCommandLine(["--first-stage", "0"]), UsageError);
  assertThrows(() => parseCommandLine(["--first-stage", "9.5"]), UsageError);
  assertEquals(parseCommandLine(["--first-stage", "480"]).options.firstStage, 480);
  assertEquals(parseCommandLine(["--coarse-trust", "0"]).options.coarseTrust, 0);
  assertEquals(parseCommandLine(["--coarse-trust", "0.75"]).options.coarseTrust, 0.75);
  assertEquals(parseCommandLine([]).options.coarseTrust, undefined);
  assertThrows(() => parseCommandLine(["--coarse-trust=-1"]), UsageError);
  assertThrows(() => parseCommandLine(["--coarse-trust", "much"]), UsageError);
  assertEquals(parseCommandLine(["--ignore", "davis=0"]).options.ignore, { davis: 0 });
});

Deno.test({
  name: "quality benchmark: --first-stage changes the stage schedule and is recorded",
  sanitizeResources: false, // the refiner's workers (when present) outlive a step's bookkeeping
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "crispmask_quality_" });
    try {
      // large enough that the object is refined, not passed through as tiny
      const { image, gt } = scene(80, 160, 120);
      await put(join(dir, "big/images/c0.jpg"), await jpeg(image));
      await put(join(dir, "big/gt/c0.png"), encodeMaskPng(gt));
      const base = ["--data", dir, "--kinds", "lowres32", "--methods", "sparse"];
      const run = (args: string[]) =>
        runQuality({ ...parseCommandLine([...base, ...args]).options, workers: 0, log: () => {} });
      const own = await run([]);
      // the 160 px image runs one stage with the weights' schedule, two (80 then 160 px) with this one
      const twoStages = await run(["--first-stage", "80"]);
      assertEquals(own.first_stage, null);
      assertEquals(twoStages.first_stage, 80);
      const figures = (r: typeof own) => r.results[0].per_image.map((p) => [p.iou, p.mba]);
      assertNotEquals(figures(twoStages), figures(own));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("panels: the worst window is where prediction and ground truth disagree most", () => {
  const { image, gt } = scene(32, 96, 64);
  const pred = { ...gt, data: gt.data.slice() };
  for (let y = 40; y < 56; y++) for (let x = 70; x < 90; x++) pred.data[y * 96 + x] = 255; // a false blob
  const win = worstWindow(pred, gt, 16);
  assert(win.x >= 68 && win.x <= 76 && win.y >= 38 && win.y <= 48, JSON.stringify(win));
  // ignored pixels never count
  const ignoredGt = { ...gt, data: gt.data.map((v, i) => (pred.data[i] !== v ? 128 : v)) };
  assertEquals(worstWindow(pred, ignoredGt, 16, 128), { x: 40, y: 24, size: 16 }); // none left: the centre
  const panel = renderPanel({ image, coarse: gt, refined: pred, gt }, { tileHeight: 64 });
  assertEquals([panel.width, panel.height], [4 * 96 + 2 * 64 + 7 * 4, 64 + 8]);
});
