/**
 * Trust in the coarse mask (`RefineOptions.coarseTrust`, src/coarse_trust.ts):
 * the lookup table, the rule it applies, coarse masks of other sizes, and the
 * refiner's use of it.
 */

import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { applyCoarseTrust, DEFAULT_COARSE_TRUST, trustTable } from "../src/coarse_trust.ts";
import { CrispmaskError } from "../src/errors.ts";
import { mirrorMask } from "../src/mirror.ts";
import { createRefinerWith, type Refiner } from "../src/refiner.ts";
import type { Mask } from "../src/types.ts";
import { blobMask, differences, randomBytes, sceneImage, WEIGHTS } from "./helpers/scene.ts";

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

Deno.test("trustTable: each entry is the probability with the coarse shift added to its logit", () => {
  const trust = 0.37 + Math.random(); // fresh each run
  const table = trustTable(trust);
  for (const c of [0, 1, 77, 128, 200, 255]) {
    for (let v = 1; v < 255; v++) {
      const z = Math.log(v / (255 - v)) + trust * (2 * c / 255 - 1);
      const want = 255 * sigmoid(z);
      assert(Math.abs(table[c * 256 + v] - want) <= 0.5 + 1e-9, `c ${c} v ${v} trust ${trust}`);
    }
    // 0 and 255 stand for probabilities beyond the 8-bit range: no finite shift moves them
    assertEquals([table[c * 256], table[c * 256 + 255]], [0, 255]);
  }
  // monotonic in the output and in the coarse value
  for (let c = 0; c < 256; c++) {
    for (let v = 1; v < 256; v++) assert(table[c * 256 + v] >= table[c * 256 + v - 1]);
  }
  for (let v = 0; v < 256; v++) {
    for (let c = 1; c < 256; c++) assert(table[c * 256 + v] >= table[(c - 1) * 256 + v]);
  }
});

Deno.test("applyCoarseTrust: with a binary mask a pixel changes side only past sigmoid(trust)", () => {
  const width = 61, height = 23;
  const out: Mask = { width, height, data: randomBytes(width * height, 9) };
  const coarse: Mask = {
    width,
    height,
    data: randomBytes(width * height, 21).map((v) => (v >= 128 ? 255 : 0)),
  };
  const trust = 0.2 + Math.random();
  const before = out.data.slice();
  const moved = applyCoarseTrust({ ...out, data: out.data.slice() }, coarse, trust);
  let kept = 0;
  for (let i = 0; i < before.length; i++) {
    const p = before[i] / 255, inside = coarse.data[i] === 255;
    const fg = before[i] === 255 ||
      (before[i] > 0 && (inside ? p >= sigmoid(-trust) : p >= sigmoid(trust)));
    assertEquals(moved.data[i] >= 128, fg, `pixel ${i}: v ${before[i]} coarse ${coarse.data[i]}`);
    if ((before[i] >= 128) !== fg) kept++;
  }
  assert(kept > 0, "the rule kept some pixels on their coarse side");
  // trust 0 changes nothing, and returns the same mask
  const same = { ...out, data: before.slice() };
  assertEquals(applyCoarseTrust(same, coarse, 0), same);
  assertEquals(same.data, before);
});

Deno.test("applyCoarseTrust: a smaller coarse mask is read bilinearly at pixel centres", () => {
  const width = 40, height = 20;
  const soft = randomBytes(width * height, 33);
  const trust = DEFAULT_COARSE_TRUST;
  // left half foreground, at a quarter of the size
  const small: Mask = { width: 10, height: 5, data: new Uint8Array(50) };
  for (let y = 0; y < 5; y++) for (let x = 0; x < 5; x++) small.data[y * 10 + x] = 255;
  const got = applyCoarseTrust({ width, height, data: soft.slice() }, small, trust);
  const table = trustTable(trust);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      // source x = (x + 0.5) / 4 - 0.5, clamped; the edge between source columns 4 and 5
      const s = Math.min(9, Math.max(0, (x + 0.5) / 4 - 0.5));
      const c = s <= 4 ? 255 : s >= 5 ? 0 : Math.round(255 * (5 - s));
      const i = y * width + x;
      assertEquals(got.data[i], table[c * 256 + soft[i]], `(${x}, ${y})`);
    }
  }
  // the same mask at full size gives the same result away from the edge
  const full: Mask = { width, height, data: new Uint8Array(width * height) };
  for (let i = 0; i < full.data.length; i++) full.data[i] = i % width < 20 ? 255 : 0;
  const direct = applyCoarseTrust({ width, height, data: soft.slice() }, full, trust);
  for (let y = 0; y < height; y++) {
    for (const x of [0, 5, 15, 24, 30, 39]) {
      assertEquals(direct.data[y * width + x], got.data[y * width + x], `(${x}, ${y})`);
    }
  }
});

Deno.test("applyCoarseTrust commutes with mirroring (so flip stays mirror-equivariant)", () => {
  const width = 37, height = 11;
  const out: Mask = { width, height, data: randomBytes(width * height, 4) };
  const coarse: Mask = { width: 13, height: 4, data: randomBytes(13 * 4, 5) };
  const a = applyCoarseTrust({ ...out, data: out.data.slice() }, coarse, 0.8);
  const b = applyCoarseTrust(mirrorMask(out), mirrorMask(coarse), 0.8);
  assertEquals(differences(mirrorMask(b).data, a.data), []);
});

const BASE = 80;
const image = sceneImage(300, 200);
const coarse = blobMask(150, 100);

async function withRefiner<T>(f: (r: Refiner) => Promise<T>): Promise<T> {
  const r = await createRefinerWith({ workers: 0, weights: WEIGHTS }, {
    schedule: { baseLongSide: BASE },
  });
  try {
    return await f(r);
  } finally {
    r.dispose();
  }
}

Deno.test("refine applies the default coarse trust to the network's output, and 0 turns it off", async () => {
  await withRefiner(async (r) => {
    const raw = await r.refine(image, coarse, { coarseTrust: 0 });
    const byDefault = await r.refine(image, coarse);
    const want = applyCoarseTrust({ ...raw, data: raw.data.slice() }, coarse, DEFAULT_COARSE_TRUST);
    assertEquals(differences(byDefault.data, want.data), []);
    assert(differences(byDefault.data, raw.data).length > 0, "the default changed nothing");
    const strong = await r.refine(image, coarse, { coarseTrust: 3, output: "binary" });
    const want3 = applyCoarseTrust({ ...raw, data: raw.data.slice() }, coarse, 3);
    assertEquals(differences(strong.data, want3.data.map((v) => (v >= 128 ? 255 : 0))), []);
  });
});

Deno.test("refine refuses a coarseTrust that is negative or not a finite number", async () => {
  await withRefiner(async (r) => {
    for (const bad of [-0.1, NaN, Infinity, "1" as unknown as number]) {
      await rejects(r.refine(image, coarse, { coarseTrust: bad }), (err: unknown) => {
        assert(err instanceof CrispmaskError, String(err));
        assertEquals(err.code, "bad-input");
        assert(err.message.includes("coarseTrust"), err.message);
        return true;
      });
    }
  });
});
