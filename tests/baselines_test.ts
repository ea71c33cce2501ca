/**
 * The classical baseline (guided filter) against a naive implementation, and
 * the synthetic coarse kinds: deterministic, and of the right character.
 */
import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import {
  boxMean,
  channelPlane,
  grayPlane,
  GuidedFilter,
  guidedFilterColor,
  guidedFilterGray,
  guidedRefine,
  maskPlane,
  pixelRadius,
  type Plane,
  reflect101,
} from "../src/baselines/guided_filter.ts";
import { lowres, perturbed, synthesizeCoarse } from "../src/baselines/coarse_kinds.ts";
import { resizeArea, resizeBilinear } from "../src/baselines/resample.ts";
import { Rng } from "../src/baselines/rng.ts";
import { iou, type Mask } from "../src/metrics/mod.ts";
import type { RgbImage } from "../src/types.ts";

// ---------------------------------------------------------------------------
// helpers

function randomPlane(w: number, h: number, rng: Rng): Plane {
  const d = new Float32Array(w * h);
  for (let i = 0; i < d.length; i++) d[i] = rng.random();
  return { width: w, height: h, data: d };
}

/** Box mean by summing every window sample: O(r²) per pixel, reflect-101 borders. */
function naiveBox(p: Plane, r: number): Float64Array {
  const { width: w, height: h, data } = p;
  const out = new Float64Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let dy = -r; dy <= r; dy++) {
        for (let dx = -r; dx <= r; dx++) {
          s += data[reflect101(y + dy, h) * w + reflect101(x + dx, w)];
        }
      }
      out[y * w + x] = s / ((2 * r + 1) * (2 * r + 1));
    }
  }
  return out;
}

/** The guided filter from its definition, in double precision, with the naive box. */
function naiveGuided(I: Plane[], p: Plane, r: number, eps: number): Float64Array {
  const n = p.data.length, c = I.length;
  const f = (x: ArrayLike<number>): Plane => ({
    width: p.width,
    height: p.height,
    data: Float32Array.from(x),
  });
  const prod = (a: ArrayLike<number>, b: ArrayLike<number>) =>
    Array.from({ length: n }, (_, i) => a[i] * b[i]);
  const mI = I.map((ch) => naiveBox(ch, r)), mP = naiveBox(p, r);
  const a: Float64Array[] = I.map(() => new Float64Array(n)), b = new Float64Array(n);
  const cov = I.map((ch) => naiveBox(f(prod(ch.data, p.data)), r));
  const sig = I.map((ci) => I.map((cj) => naiveBox(f(prod(ci.data, cj.data)), r)));
  for (let i = 0; i < n; i++) {
    const S = I.map((_, u) =>
      I.map((_, v) => sig[u][v][i] - mI[u][i] * mI[v][i] + (u === v ? eps : 0))
    );
    const v = I.map((_, u) => cov[u][i] - mI[u][i] * mP[i]);
    const sol = solve(S, v);
    let bi = mP[i];
    for (let u = 0; u < c; u++) {
      a[u][i] = sol[u];
      bi -= sol[u] * mI[u][i];
    }
    b[i] = bi;
  }
  const mA = a.map((x) => naiveBox(f(x), r)), mB = naiveBox(f(b), r);
  return Float64Array.from(
    { length: n },
    (_, i) => mB[i] + I.reduce((s, ch, u) => s + mA[u][i] * ch.data[i], 0),
  );
}

/** Gaussian elimination for a small system. */
function solve(A: number[][], v: number[]): number[] {
  const n = v.length, M = A.map((row, i) => [...row, v[i]]);
  for (let k = 0; k < n; k++) {
    for (let i = k + 1; i < n; i++) {
      const f = M[i][k] / M[k][k];
      for (let j = k; j <= n; j++) M[i][j] -= f * M[k][j];
    }
  }
  const x = new Array(n).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    let s = M[i][n];
    for (let j = i + 1; j < n; j++) s -= M[i][j] * x[j];
    x[i] = s / M[i][i];
  }
  return x;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** A w x h mask of the pixels where `inside(x, y)`. */
function shape(w: number, h: number, inside: (x: number, y: number) => boolean): Mask {
  const data = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[y * w + x] = inside(x, y) ? 255 : 0;
  return { width: w, height: h, data };
}

/** Run lengths of a binary mask, starting with background. */
function runLengths(m: Mask): number[] {
  const out: number[] = [];
  let cur = false, n = 0;
  for (const v of m.data) {
    if ((v > 0) === cur) n++;
    else {
      out.push(n);
      cur = v > 0;
      n = 1;
    }
  }
  out.push(n);
  return out;
}

// ---------------------------------------------------------------------------
// guided filter

Deno.test("reflect101 mirrors without repeating the edge, for any overshoot", () => {
  assertEquals([-3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7].map((i) => reflect101(i, 4)), [
    3,
    2,
    1,
    0,
    1,
    2,
    3,
    2,
    1,
    0,
    1,
  ]);
  assertEquals(reflect101(-5, 1), 0);
});

Deno.test("boxMean equals the O(r²) window sum, radius smaller and larger than the image", () => {
  const rng = new Rng("box");
  for (const [w, h, r] of [[7, 5, 1], [9, 6, 2], [13, 11, 3], [5, 4, 6], [1, 3, 2], [16, 1, 4]]) {
    const p = randomPlane(w, h, rng);
    const diff = maxDiff(boxMean(p, r), naiveBox(p, r));
    assert(diff < 1e-6, `${w}x${h} r=${r}: max difference ${diff}`);
  }
});

Deno.test("gray guided filter equals the naive definition", () => {
  const rng = new Rng("gray");
  for (const [w, h, r, eps] of [[12, 9, 1, 1e-3], [17, 13, 2, 1e-2], [10, 10, 3, 1e-4]]) {
    const I = randomPlane(w, h, rng), p = randomPlane(w, h, rng);
    const diff = maxDiff(guidedFilterGray(I, p, r, eps), naiveGuided([I], p, r, eps));
    assert(diff < 2e-3, `${w}x${h} r=${r} eps=${eps}: max difference ${diff}`);
  }
});

Deno.test("colour guided filter equals the naive definition", () => {
  const rng = new Rng("color");
  for (const [w, h, r, eps] of [[11, 8, 1, 1e-3], [15, 12, 2, 1e-2], [9, 9, 2, 1e-1]]) {
    const I = [randomPlane(w, h, rng), randomPlane(w, h, rng), randomPlane(w, h, rng)];
    const p = randomPlane(w, h, rng);
    const diff = maxDiff(
      guidedFilterColor(I as [Plane, Plane, Plane], p, r, eps),
      naiveGuided(I, p, r, eps),
    );
    assert(diff < 2e-3, `${w}x${h} r=${r} eps=${eps}: max difference ${diff}`);
  }
});

Deno.test("guidedRefine: pixel radius, byte output, edges follow the image", () => {
  assertEquals(pixelRadius(4, 400, 300), 3); // 2.8
  assertEquals(pixelRadius(4, 1918, 1280), 13); // 12.79
  assertEquals(pixelRadius(4, 300, 325), 2); // 2.5 rounds to even, as Python
  assertEquals(pixelRadius(4, 10, 10), 1);
  // a photo split at x = 20 and a soft coarse ramp from x = 14 to 26 (0.5 at x = 20): the
  // output's step snaps to the photo's edge, much sharper than the ramp
  const w = 40, h = 24;
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) data.fill((i % w) < 20 ? 230 : 20, 3 * i, 3 * i + 3);
  const image: RgbImage = { width: w, height: h, channels: 3, data };
  const ramp = (x: number) => Math.round(255 * Math.min(1, Math.max(0, (26 - x) / 12)));
  const coarse: Mask = {
    width: w,
    height: h,
    data: Uint8Array.from({ length: w * h }, (_, i) => ramp(i % w)),
  };
  const out = guidedRefine(image, coarse, { radius: 100 }); // 6 px at this size
  const at = (x: number) => out.data[12 * w + x];
  assert(at(19) >= 128 && at(20) < 128, `step at the photo's edge: ${at(19)} ${at(20)}`);
  assert(at(19) - at(20) > 100 && ramp(19) - ramp(20) < 25);
  assert(at(0) === 255 && at(39) === 0);
  assertEquals(channelPlane(image, 1).data[0], Math.fround(230 / 255));
  assertEquals(maskPlane(coarse).data[0], 1);
  assertThrows(() => guidedRefine(image, shape(w - 1, h, () => true)), /differ in size/);
  assertThrows(() => guidedRefine(image, coarse, { guide: "hsv" as "gray" }), /guide must be/);
});

Deno.test("GuidedFilter: one image's statistics serve several masks, each exactly as a fresh filter", () => {
  const rng = new Rng("guided-reuse");
  const w = 53, h = 37;
  const image: RgbImage = {
    width: w,
    height: h,
    channels: 3,
    data: Uint8Array.from({ length: w * h * 3 }, () => rng.int(256)),
  };
  const masks = [0, 1].map((): Mask => ({
    width: w,
    height: h,
    data: Uint8Array.from({ length: w * h }, () => (rng.random() < 0.4 ? 255 : rng.int(256))),
  }));
  const bytes = (q: Float32Array) =>
    Uint8Array.from(q, (v) => Math.round(255 * Math.min(1, Math.max(0, v))));
  for (const guide of ["color", "gray"] as const) {
    const filter = new GuidedFilter(image, { guide, radius: 60 });
    assertEquals(filter.radius, pixelRadius(60, w, h));
    const r = filter.radius, eps = filter.eps;
    const fresh = (m: Mask) =>
      bytes(
        guide === "gray"
          ? guidedFilterGray(grayPlane(image), maskPlane(m), r, eps)
          : guidedFilterColor(
            [0, 1, 2].map((c) => channelPlane(image, c)) as [Plane, Plane, Plane],
            maskPlane(m),
            r,
            eps,
          ),
      );
    // A, B, then A again: refining B must not have changed the shared statistics
    for (const m of [masks[0], masks[1], masks[0]]) {
      const got = filter.refine(m).data;
      assertEquals(got, fresh(m));
      assertEquals(got, guidedRefine(image, m, { guide, radius: 60 }).data);
    }
    assert(filter.refine(masks[0]).data.some((v, i) => v !== filter.refine(masks[1]).data[i]));
    assertThrows(
      () => filter.refine({ width: w, height: h - 1, data: new Uint8Array(w * (h - 1)) }),
      /differ in size/,
    );
  }
});

// ---------------------------------------------------------------------------
// resampling

Deno.test("resizeArea averages blocks; resizeBilinear interpolates with half-pixel centres", () => {
  const p: Plane = { width: 4, height: 2, data: Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]) };
  assertEquals(Array.from(resizeArea(p, 2, 1).data), [2.5, 4.5]);
  assertEquals(Array.from(resizeArea(p, 3, 1).data).map((v) => +v.toFixed(4)), [2.25, 3.5, 4.75]);
  const q: Plane = { width: 2, height: 1, data: Float32Array.from([0, 1]) };
  assertEquals(Array.from(resizeBilinear(q, 4, 1).data), [0, 0.25, 0.75, 1]);
  assertThrows(() => resizeArea(p, 5, 1), /only shrinks/);
});

// ---------------------------------------------------------------------------
// coarse kinds

/** The parity shape: an ellipse with a 5 px notch, a 1 px spike, and soft values on a diagonal grid. */
function parityGt(): Mask {
  const w = 72, h = 56;
  const m = shape(w, h, (x, y) => {
    const ell = ((x - 30) / 22) ** 2 + ((y - 28) / 18) ** 2 <= 1 &&
      !(x > 40 && Math.abs(y - 28) < 3);
    return ell || (y === 10 && x >= 50 && x < 70);
  });
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if ((x + y) % 7 === 0) {
        m.data[y * w + x] = m.data[y * w + x] ? 200 : 60;
      }
    }
  }
  return m;
}

Deno.test("lowres8 / lowres32 equal train/coarse_eval.py (OpenCV) on a fixed shape", () => {
  // run lengths of train/coarse_eval.py's synthesize(kind, gt, "x") for the same shape built
  // with numpy (y, x = np.mgrid[0:56, 0:72]; the same expressions), cv2 4.6
  const lowres8 = [
    747,
    7,
    62,
    13,
    57,
    17,
    53,
    21,
    49,
    25,
    46,
    28,
    42,
    32,
    39,
    34,
    36,
    36,
    35,
    38,
    33,
    39,
    33,
    39,
    33,
    38,
    33,
    39,
    33,
    38,
    34,
    37,
    35,
    36,
    36,
    35,
    37,
    35,
    37,
    36,
    36,
    38,
    34,
    38,
    34,
    39,
    33,
    40,
    33,
    39,
    33,
    39,
    33,
    39,
    34,
    38,
    35,
    36,
    38,
    33,
    40,
    31,
    43,
    28,
    45,
    25,
    48,
    22,
    51,
    20,
    55,
    15,
    60,
    10,
    684,
  ];
  const gt = parityGt();
  assertEquals(runLengths(synthesizeCoarse("lowres8", gt, "x")), lowres8);
  assertEquals(runLengths(synthesizeCoarse("lowres32", gt, "x")), [72 * 56]);
});

Deno.test("lowres8 is blocky at 8 px: detail inside 8x8 blocks is lost, larger shapes kept", () => {
  const w = 96, h = 64;
  // two ground truths with equal 8x8 block means give the same lowres8 mask
  const square = shape(w, h, (x, y) => x >= 24 && x < 56 && y >= 16 && y < 48);
  const stripes = shape(
    w,
    h,
    (x, y) => x >= 24 && x < 56 && y >= 16 && y < 48 && (x + y) % 2 === 0,
  );
  const halfBlock = shape(w, h, (x, y) => x >= 24 && x < 56 && y >= 16 && y < 48 && (x % 8) < 4);
  assertEquals(lowres(stripes, 8), lowres(halfBlock, 8));
  // a 3 px line vanishes; a 32 px square survives with its corners rounded
  const line = shape(w, h, (x, y) => y >= 30 && y < 33 && x >= 8 && x < 88);
  assert(lowres(line, 8).data.every((v) => v === 0));
  const sq = lowres(square, 8);
  assert(iou(sq, square).iou > 0.9);
  assert(
    sq.data[32 * w + 40] === 255 && sq.data[16 * w + 24] === 0,
    "interior kept, corner rounded",
  );
  // lowres32 of the same square loses much more
  assert(iou(lowres(square, 32), square).iou < iou(sq, square).iou);
  assertEquals(lowres(square, 8), lowres(square, 8));
});

function blob(w: number, h: number, cx: number, cy: number, rx: number, ry: number): Mask {
  return shape(w, h, (x, y) => {
    const a = Math.atan2(y - cy, x - cx);
    const wob = 1 + 0.15 * Math.sin(5 * a); // a non-convex outline
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= wob * wob;
  });
}

Deno.test("perturbed: IoU in [0.8, 0.9], deterministic per name, different across names", () => {
  const cases: Array<[Mask, string]> = [
    [blob(160, 120, 80, 60, 45, 35), "a"],
    [blob(160, 120, 80, 60, 45, 35), "b"],
    [blob(200, 90, 70, 40, 50, 30), "car_01"],
    [shape(128, 128, (x, y) => x > 20 && x < 100 && y > 30 && y < 110), "box"],
  ];
  for (const [gt, name] of cases) {
    const m = perturbed(gt, name);
    const v = iou(m, gt).iou;
    assert(v >= 0.8 && v <= 0.9, `${name}: IoU ${v}`);
    assert(m.data.every((x) => x === 0 || x === 255), "binary");
    assertEquals(perturbed(gt, name), m);
    assertEquals(synthesizeCoarse("perturbed", gt, name), m);
  }
  assert(
    maxDiff(perturbed(cases[0][0], "a").data, perturbed(cases[1][0], "b").data) > 0,
    "names give other draws",
  );
});

Deno.test("perturbed leaves an empty or a full ground truth alone; unknown kinds are refused", () => {
  const empty = shape(20, 10, () => false), full = shape(20, 10, () => true);
  assertEquals(perturbed(empty, "e"), empty);
  assertEquals(perturbed(full, "f"), full); // no boundary to perturb
  assertThrows(() => synthesizeCoarse("blur" as "lowres8", empty, "e"), /no synthetic coarse kind/);
});

Deno.test("Rng streams are reproducible and uniform enough", () => {
  const a = new Rng("seed"), b = new Rng("seed"), c = new Rng("other");
  const xs = Array.from({ length: 1000 }, () => a.random());
  assertEquals(xs, Array.from({ length: 1000 }, () => b.random()));
  assert(xs[0] !== c.random());
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert(Math.abs(mean - 0.5) < 0.05 && xs.every((x) => x >= 0 && x < 1));
  const ints = new Set(Array.from({ length: 200 }, () => a.int(5)));
  assertEquals([...ints].sort(), [0, 1, 2, 3, 4]);
});
