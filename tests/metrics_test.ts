import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import {
  boundaryCounts,
  BoundaryRegions,
  dilate,
  ellipseHalfWidths,
  ellipseKernel,
  erode,
  iou,
  type Mask,
  MaskStats,
  mba,
  mbaRadii,
} from "../src/metrics/mod.ts";

// ---------------------------------------------------------------------------
// helpers

/** Mask from rows of characters: '#' = 255, '.' = 0, '?' = 128. */
function mask(...rows: string[]): Mask {
  const height = rows.length, width = rows[0].length;
  const data = new Uint8Array(width * height);
  rows.forEach((row, y) => {
    assertEquals(row.length, width);
    for (let x = 0; x < width; x++) {
      data[y * width + x] = row[x] === "#" ? 255 : row[x] === "?" ? 128 : 0;
    }
  });
  return { width, height, data };
}

/** A w x h mask with the given pixels set to 255. */
function pixels(width: number, height: number, on: [number, number][]): Mask {
  const data = new Uint8Array(width * height);
  for (const [x, y] of on) data[y * width + x] = 255;
  return { width, height, data };
}

function close(a: number, b: number, tol = 1e-12): boolean {
  return Math.abs(a - b) <= tol;
}

/** Deterministic PRNG (mulberry32) so the randomised tests are reproducible. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random blobby mask: a few filled ellipses and rectangles plus speckle. */
function randomMask(w: number, h: number, rand: () => number, values = [0, 255]): Mask {
  const data = new Uint8Array(w * h).fill(values[0]);
  const shapes = 1 + Math.floor(rand() * 5);
  for (let s = 0; s < shapes; s++) {
    const cx = rand() * w, cy = rand() * h, rx = 1 + rand() * w / 3, ry = 1 + rand() * h / 3;
    const v = values[1 + Math.floor(rand() * (values.length - 1))];
    const ellipse = rand() < 0.5;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const dx = (x - cx) / rx, dy = (y - cy) / ry;
        if (ellipse ? dx * dx + dy * dy <= 1 : Math.abs(dx) <= 1 && Math.abs(dy) <= 1) {
          data[y * w + x] = v;
        }
      }
    }
  }
  for (let i = 0; i < w * h / 50; i++) {
    data[Math.floor(rand() * w * h)] = values[Math.floor(rand() * values.length)];
  }
  return { width: w, height: h, data };
}

/**
 * Textbook morphology with the kernel as given (checked against OpenCV below):
 * dilation = some kernel pixel on a "possibly foreground" pixel, erosion = all
 * in-image kernel pixels foreground (outside pixels are neutral, as in cv2).
 */
function naiveRegion(gt: Mask, r: number, ignore?: number): Uint8Array {
  const { width: w, height: h, data: g } = gt;
  const size = 2 * r + 1, k = ellipseKernel(size);
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (g[y * w + x] === ignore) continue;
      let dil = false, ero = true;
      for (let ky = 0; ky < size; ky++) {
        for (let kx = 0; kx < size; kx++) {
          if (!k[ky * size + kx]) continue;
          const yy = y + ky - r, xx = x + kx - r;
          if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
          const v = g[yy * w + xx];
          const fg = v !== ignore && v >= 128;
          if (fg || v === ignore) dil = true;
          if (!fg) ero = false;
        }
      }
      out[y * w + x] = dil && !ero ? 1 : 0;
    }
  }
  return out;
}

function naiveCounts(pred: Mask, gt: Mask, ignore?: number) {
  return mbaRadii(gt.width, gt.height).map((radius) => {
    const region = naiveRegion(gt, radius, ignore);
    let n = 0, correct = 0;
    for (let i = 0; i < region.length; i++) {
      if (!region[i]) continue;
      n++;
      if ((pred.data[i] >= 128) === (gt.data[i] >= 128)) correct++;
    }
    return { radius, region: n, correct };
  });
}

function naiveMorph(m: Mask, r: number, op: "dilate" | "erode"): Uint8Array {
  const { width: w, height: h, data } = m;
  const size = 2 * r + 1, k = ellipseKernel(size);
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let any = false, all = true;
      for (let ky = 0; ky < size; ky++) {
        for (let kx = 0; kx < size; kx++) {
          const yy = y + ky - r, xx = x + kx - r;
          if (!k[ky * size + kx] || yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
          if (data[yy * w + xx] >= 128) any = true;
          else all = false;
        }
      }
      out[y * w + x] = (op === "dilate" ? any : all) ? 255 : 0;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// hand-computed cases

Deno.test("radii follow CascadePSP's formula 1 + trunc((R-1)/5*i)", () => {
  assertEquals(mbaRadii(4, 4), [1, 1, 1, 1, 1]); // R < 1: all 1
  assertEquals(mbaRadii(481, 321), [1, 1, 1, 2, 2]); // R = 2.673: (1.673/5)*3 = 1.004
  assertEquals(mbaRadii(700, 1), [1, 1, 1, 1, 2]); // R = 2.337
  assertEquals(mbaRadii(1920, 1080), [1, 2, 4, 6, 8]); // R = 10: steps of 1.8
  assertEquals(mbaRadii(6000, 4000), [1, 7, 13, 20, 26]); // R = 33.3: max stays below R
});

Deno.test("IoU and mBA of a 2x2 square against a 2x3 prediction (hand-computed)", () => {
  const gt = mask(
    "....",
    ".##.",
    ".##.",
    "....",
  );
  const pred = mask(
    "....",
    ".###",
    ".###",
    "....",
  );
  // intersection 4, union 6: two predicted pixels (column 3) are extra, none missed
  assertEquals(iou(pred, gt), { intersection: 4, union: 6, missed: 0, extra: 2, iou: 4 / 6 });
  assertEquals(iou(gt, pred), { intersection: 4, union: 6, missed: 2, extra: 0, iou: 4 / 6 });
  // w+h = 8: R < 1, all radii 1, kernel 3x3 ellipse = cross. Dilation adds
  // the 8 edge-neighbours of the square; erosion is empty (each square pixel
  // has a background 4-neighbour). Region = 12 pixels; wrong: (3,1), (3,2).
  const r = mba(pred, gt);
  assertEquals(r.radii, [1, 1, 1, 1, 1]);
  assertEquals(r.counts[0], { radius: 1, region: 12, correct: 10 });
  assert(close(r.mba, 10 / 12));
});

Deno.test("ignored pixels count for neither IoU nor mBA (hand-computed)", () => {
  // classes: bg bg IGN fg fg fg bg; one row, so vertical neighbours are outside
  const gt = mask("..?###.");
  const pred = mask(".###.##");
  // non-ignored: pred fg {1,3,5,6}, gt fg {3,4,5}: I = {3,5}, U = {1,3,4,5,6},
  // missed {4}, extra {1,6} (the prediction's 2 is ignored)
  assertEquals(iou(pred, gt, { ignoreValue: 128 }), {
    intersection: 2,
    union: 5,
    missed: 1,
    extra: 2,
    iou: 0.4,
  });
  // dilate(fg|ign = {2..5}) = {1..6}; erode(fg = {3,4,5}) = {4} (3 touches the
  // ignored 2, 5 touches 6). Region = {1,3,5,6}; correct at 3 and 5.
  const r = mba(pred, gt, { ignoreValue: 128 });
  assertEquals(r.counts[0], { radius: 1, region: 4, correct: 2 });
  assert(close(r.mba, 0.5));
  // without an ignore value, 128 is simply foreground (>= 128)
  assertEquals(iou(pred, gt).union, 6);
});

Deno.test("empty and full masks", () => {
  const empty = pixels(5, 3, []);
  const full: Mask = { width: 5, height: 3, data: new Uint8Array(15).fill(255) };
  // both empty: an empty union is a perfect IoU; no boundary: every radius 1
  assertEquals(iou(empty, empty), { intersection: 0, union: 0, missed: 0, extra: 0, iou: 1 });
  assertEquals(mba(empty, empty).mba, 1);
  // all wrong, but a ground truth without a boundary has an empty region
  assertEquals(iou(full, empty).iou, 0);
  assertEquals(mba(full, empty).accuracies, [1, 1, 1, 1, 1]);
  // a full ground truth: the outside never erodes it, so no region either
  assertEquals(iou(empty, full), { intersection: 0, union: 15, missed: 15, extra: 0, iou: 0 });
  assertEquals(iou(full, empty), { intersection: 0, union: 15, missed: 0, extra: 15, iou: 0 });
  assertEquals(mba(empty, full).mba, 1);
});

Deno.test("one-row and one-column images reach radius 2 (hand-computed)", () => {
  // 700 x 1: radii [1,1,1,1,2]; a lone foreground pixel, prediction empty.
  // r=1: region = the pixel and its 2 row neighbours, 2 of 3 correct;
  // r=2: the 5x5 disk's middle row spans 5 pixels, 4 of 5 correct.
  const want = (4 * (2 / 3) + 4 / 5) / 5;
  const row = pixels(700, 1, [[350, 0]]);
  const r1 = mba(pixels(700, 1, []), row);
  assertEquals(r1.counts.map((c) => c.region), [3, 3, 3, 3, 5]);
  assert(close(r1.mba, want));
  // transposed: the disk's middle column spans 5 pixels too
  const col = pixels(1, 700, [[0, 350]]);
  assert(close(mba(pixels(1, 700, []), col).mba, want));
});

Deno.test("a lone pixel's region is the 5x5 ellipse of 17 pixels at radius 2", () => {
  // 700 x 20: R = 2.4, radii [1,1,1,1,2]. Region = the disk itself (erosion empty):
  // 5 pixels at r=1, 17 at r=2 (rows 1,5,5,5,1 wide... as OpenCV: 1+5+5+5+1).
  const gt = pixels(700, 20, [[300, 10]]);
  const r = mba(pixels(700, 20, []), gt);
  assertEquals(r.counts.map((c) => c.region), [5, 5, 5, 5, 17]);
  assert(close(r.mba, (4 * (4 / 5) + 16 / 17) / 5));
});

Deno.test("pixels outside the image are neutral (OpenCV's morphology borders)", () => {
  const gt = mask(
    "#####.....",
    "#####.....",
    "#####.....",
    "#####.....",
  );
  const pred = mask(
    "######....",
    "######....",
    "######....",
    "######....",
  );
  // radius 1 (cross): only columns 4 and 5 are boundary; the image edge is not
  assertEquals(mba(pred, gt).counts[0], { radius: 1, region: 8, correct: 4 });
  assertEquals(iou(pred, gt).iou, 20 / 24);
});

Deno.test("malformed input is rejected with a clear message", () => {
  const a = pixels(4, 3, []);
  assertThrows(() => iou(a, pixels(3, 4, [])), /differ in size/);
  assertThrows(
    () => mba(a, { width: 4, height: 3, data: new Uint8Array(11) }),
    /11 bytes, expected 4x3/,
  );
  assertThrows(() => iou(a, { width: 0, height: 3, data: new Uint8Array(0) }), /positive integers/);
  assertThrows(() => mba(a, a, { ignoreValue: 300 }), /ignoreValue/);
  assertThrows(() => dilate(a, -1), /radius/);
  assertThrows(() => ellipseKernel(0), /kernel size/);
});

// ---------------------------------------------------------------------------
// the elliptical kernel against OpenCV

Deno.test("ellipseKernel equals cv2.getStructuringElement(MORPH_ELLIPSE) for sizes 2..67", async () => {
  const fixture = JSON.parse(
    await Deno.readTextFile(new URL("./fixtures/ellipse_kernels.json", import.meta.url)),
  ) as { kernels: Record<string, string[]> };
  const sizes = Object.keys(fixture.kernels).map(Number);
  assert(sizes.length >= 33 && sizes.includes(3) && sizes.includes(67));
  for (const size of sizes) {
    const k = ellipseKernel(size);
    const rows = [];
    for (let i = 0; i < size; i++) {
      rows.push(Array.from(k.subarray(i * size, (i + 1) * size)).join(""));
    }
    assertEquals(rows, fixture.kernels[String(size)], `size ${size}`);
  }
});

Deno.test("half-widths match the kernel, and disks are nested up to radius 1000", () => {
  for (let r = 0; r <= 33; r++) {
    const size = 2 * r + 1, k = ellipseKernel(size), hw = ellipseHalfWidths(r);
    for (let dy = -r; dy <= r; dy++) {
      let n = 0;
      for (let x = 0; x < size; x++) n += k[(dy + r) * size + x];
      assertEquals(n, 2 * hw[Math.abs(dy)] + 1, `r ${r} dy ${dy}`);
    }
  }
  // the fast path assumes disk(r) inside disk(r+1): hw_r(dy) <= hw_{r+1}(dy)
  let prev = ellipseHalfWidths(0);
  for (let r = 1; r <= 1000; r++) {
    const hw = ellipseHalfWidths(r);
    for (let dy = 0; dy < prev.length; dy++) {
      assert(hw[dy] >= prev[dy], `disk ${r - 1} not inside disk ${r}`);
    }
    prev = hw;
  }
});

// ---------------------------------------------------------------------------
// the fast morphology against textbook morphology

Deno.test("boundaryCounts equals textbook morphology on random masks and sizes", () => {
  const rand = rng(7);
  const sizes: [number, number][] = [[1, 1], [2, 3], [17, 9], [700, 20], [21, 680], [900, 300], [
    1350,
    150,
  ]];
  for (const [w, h] of sizes) {
    for (let t = 0; t < 3; t++) {
      const gt = randomMask(w, h, rand);
      const pred = randomMask(w, h, rand);
      assertEquals(boundaryCounts(pred, gt), naiveCounts(pred, gt), `${w}x${h} #${t}`);
      // with an ignore band: some shapes are drawn with the ignore value
      const gtIgn = randomMask(w, h, rand, [0, 255, 128]);
      assertEquals(
        boundaryCounts(pred, gtIgn, { ignoreValue: 128 }),
        naiveCounts(pred, gtIgn, 128),
        `${w}x${h} #${t} ignore`,
      );
    }
  }
});

Deno.test("BoundaryRegions made once score several predictions exactly as fresh ones", () => {
  const rand = rng(11);
  for (const [w, h, ignoreValue] of [[640, 420, undefined], [333, 517, 128]] as const) {
    const gt = randomMask(w, h, rand, ignoreValue === undefined ? [0, 255] : [0, 255, 128]);
    const opts = { ignoreValue };
    const regions = new BoundaryRegions(gt, opts);
    assertEquals(regions.radii, mbaRadii(w, h));
    const stats = [new MaskStats(), new MaskStats()];
    for (let t = 0; t < 4; t++) {
      const pred = randomMask(w, h, rand);
      assertEquals(
        boundaryCounts(pred, gt, { ...opts, regions }),
        naiveCounts(pred, gt, ignoreValue),
      );
      assertEquals(mba(pred, gt, { ...opts, regions }), mba(pred, gt, opts));
      assertEquals(stats[0].add(pred, gt, { ...opts, regions }), stats[1].add(pred, gt, opts));
    }
    // regions of another ground truth (same size), or another ignore value, are refused
    const other = { ...gt, data: gt.data.slice() };
    assertThrows(() => mba(gt, other, { ...opts, regions }), /another ground truth/);
    assertThrows(() => mba(gt, gt, { ignoreValue: 7, regions }), /another ground truth/);
    assertThrows(() => regions.counts(randomMask(w, h + 1, rand)), /prediction is/);
  }
});

Deno.test("dilate and erode equal textbook morphology for radii 0..15", () => {
  const rand = rng(11);
  for (const [w, h] of [[40, 31], [9, 60], [64, 64]]) {
    const m = randomMask(w, h, rand, [0, 255, 200, 127]);
    for (let r = 0; r <= 15; r++) {
      assertEquals(dilate(m, r).data, naiveMorph(m, r, "dilate"), `dilate ${w}x${h} r ${r}`);
      assertEquals(erode(m, r).data, naiveMorph(m, r, "erode"), `erode ${w}x${h} r ${r}`);
    }
  }
});

// ---------------------------------------------------------------------------
// dataset accumulation

Deno.test("MaskStats: dataset IoU sums counts, mean IoU averages images", () => {
  const stats = new MaskStats();
  assert(Number.isNaN(stats.meanIou));
  // image 1: I = 4, U = 6; image 2: both empty, I = U = 0 (IoU 1)
  stats.add(mask(".##.", ".##."), mask(".###", ".###"), {}, "a");
  stats.add(pixels(3, 3, []), pixels(3, 3, []), {}, "b");
  assertEquals(stats.count, 2);
  assertEquals([stats.intersection, stats.union], [4, 6]);
  assert(close(stats.datasetIou, 4 / 6));
  assert(close(stats.meanIou, (4 / 6 + 1) / 2));
  assertEquals(stats.images[1].name, "b");
  assert(close(stats.meanMba, (stats.images[0].mba.mba + 1) / 2));
});

// ---------------------------------------------------------------------------
// cross-check against OpenCV on synthetic masks (always runs: committed PNGs)

/** One mask pair as train/check_metrics.py records it, with OpenCV's figures. */
interface OpenCvCase {
  /** the set (real masks only) */
  set?: string;
  name: string;
  gt: string;
  pred: string;
  gt_sha256: string;
  pred_sha256: string;
  ignoreValue: number | null;
  width: number;
  height: number;
  intersection: number;
  union: number;
  iou: number;
  radii: number[];
  region: number[];
  correct: number[];
  mba: number;
}

/** Checks src/metrics on one pair (files under `root`) against OpenCV's figures. */
async function checkAgainstOpenCv(c: OpenCvCase, root: URL, label: string, rerun: string) {
  const gtBytes = await Deno.readFile(new URL(c.gt, root));
  const predBytes = await Deno.readFile(new URL(c.pred, root));
  // a changed file is a data problem, not a metric problem: say so
  assertEquals(await sha256(gtBytes), c.gt_sha256, `${c.gt} changed; rerun ${rerun}`);
  assertEquals(await sha256(predBytes), c.pred_sha256, `${c.pred} changed; rerun ${rerun}`);
  const gt = await decodeGrayPng(gtBytes), pred = await decodeGrayPng(predBytes);
  assertEquals([gt.width, gt.height], [c.width, c.height]);
  assertEquals([pred.width, pred.height], [c.width, c.height]);
  const opts = c.ignoreValue === null ? {} : { ignoreValue: c.ignoreValue };
  const i = iou(pred, gt, opts), m = mba(pred, gt, opts);
  assertEquals([i.intersection, i.union], [c.intersection, c.union], label);
  assertEquals(m.radii, c.radii, label);
  assertEquals(m.counts.map((k) => k.region), c.region, label);
  assertEquals(m.counts.map((k) => k.correct), c.correct, label);
  assert(Math.abs(i.iou - c.iou) <= 1e-6, `${label} IoU ${i.iou} vs ${c.iou}`);
  assert(Math.abs(m.mba - c.mba) <= 1e-6, `${label} mBA ${m.mba} vs ${c.mba}`);
}

Deno.test("IoU and mBA agree with OpenCV (train/metrics.py) on synthetic masks to 1e-6", async () => {
  // written by `train/check_metrics.py --synthetic`; paths relative to tests/fixtures/
  const FIXTURES = new URL("./fixtures/", import.meta.url);
  const fixture = JSON.parse(
    await Deno.readTextFile(new URL("metrics_synthetic.json", FIXTURES)),
  ) as { cases: OpenCvCase[] };
  assert(fixture.cases.length >= 6);
  // the pairs must exercise different radii, the largest beyond 5, and an ignore band
  assert(new Set(fixture.cases.map((c) => c.radii.join())).size >= 4);
  assert(Math.max(...fixture.cases.flatMap((c) => c.radii)) >= 6);
  assert(fixture.cases.some((c) => c.ignoreValue !== null));
  for (const c of fixture.cases) {
    await checkAgainstOpenCv(c, FIXTURES, `synthetic/${c.name}`, "check_metrics.py --synthetic");
  }
});

// ---------------------------------------------------------------------------
// cross-check against OpenCV on real masks (needs ../shared/data)

const DATA = new URL("../../shared/data/eval/", import.meta.url);
const haveData = (() => {
  try {
    return Deno.statSync(DATA).isDirectory;
  } catch {
    return false;
  }
})();
if (!haveData) {
  console.log(`note: ${DATA.pathname} not found; skipping the OpenCV cross-check on real masks`);
}

Deno.test({
  name: "IoU and mBA agree with OpenCV (train/metrics.py) on real masks to 1e-6",
  ignore: !haveData,
  fn: async () => {
    const fixture = JSON.parse(
      await Deno.readTextFile(new URL("./fixtures/metrics_crosscheck.json", import.meta.url)),
    ) as { cases: OpenCvCase[] };
    assert(fixture.cases.length >= 6);
    for (const c of fixture.cases) {
      await checkAgainstOpenCv(c, DATA, `${c.set}/${c.name}`, "train/check_metrics.py");
    }
  },
});

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Minimal PNG decoder for 8-bit greyscale, non-interlaced images (all the
 * masks in the data set), using only the web-standard DecompressionStream:
 * the project has not chosen an image library, and an npm: import does not
 * resolve under this repository's nodeModulesDir "manual" setting.
 */
async function decodeGrayPng(bytes: Uint8Array<ArrayBuffer>): Promise<Mask> {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (!sig.every((b, i) => bytes[i] === b)) throw new Error("not a PNG");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let width = 0, height = 0;
  const idat: Uint8Array<ArrayBuffer>[] = [];
  for (let off = 8; off < bytes.length;) {
    const len = view.getUint32(off);
    const type = String.fromCharCode(...bytes.subarray(off + 4, off + 8));
    const body = bytes.subarray(off + 8, off + 8 + len);
    if (type === "IHDR") {
      width = view.getUint32(off + 8);
      height = view.getUint32(off + 12);
      const [depth, colour, , , interlace] = body.subarray(8, 13);
      if (depth !== 8 || colour !== 0 || interlace !== 0) {
        throw new Error(
          `only 8-bit greyscale non-interlaced PNG (got depth ${depth}, colour type ${colour})`,
        );
      }
    } else if (type === "IDAT") idat.push(body);
    else if (type === "IEND") break;
    off += 12 + len;
  }
  const raw = new Uint8Array(
    await new Response(new Blob(idat).stream().pipeThrough(new DecompressionStream("deflate")))
      .arrayBuffer(),
  );
  if (raw.length < height * (width + 1)) throw new Error("truncated PNG data");
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (width + 1)];
    const src = raw.subarray(y * (width + 1) + 1, (y + 1) * (width + 1));
    const row = out.subarray(y * width, (y + 1) * width);
    const up = y > 0 ? out.subarray((y - 1) * width, y * width) : new Uint8Array(width);
    for (let x = 0; x < width; x++) {
      const a = x > 0 ? row[x - 1] : 0, b = up[x], c = x > 0 ? up[x - 1] : 0;
      let pred = 0;
      if (filter === 1) pred = a;
      else if (filter === 2) pred = b;
      else if (filter === 3) pred = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (filter !== 0) throw new Error(`bad PNG filter ${filter}`);
      row[x] = (src[x] + pred) & 0xff;
    }
  }
  return { width, height, data: out };
}
