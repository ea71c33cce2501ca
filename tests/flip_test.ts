/**
 * Test-time flipping (`RefineOptions.flip`): the mirror helpers, the
 * average, and the refinement they make — the mean of the plain pass and the
 * mirrored one, mirror-equivariant bit for bit.
 */

import { deepStrictEqual as assertEquals, ok as assert, rejects, throws } from "node:assert/strict";
import { CrispmaskError } from "../src/errors.ts";
import {
  createRefinerWith,
  type Progress,
  type Refiner,
  type StageReport,
} from "../src/refiner.ts";
import { averagePlanes, mirrorImage, mirrorMask } from "../src/mirror.ts";
import { applyCoarseTrust, DEFAULT_COARSE_TRUST } from "../src/coarse_trust.ts";
import type { Mask, RgbImage } from "../src/types.ts";
import { blobMask, differences, randomBytes, sceneImage, WEIGHTS } from "./helpers/scene.ts";

const BASE = 80; // 300x200 runs three stages, the first two sparse

async function withRefiner<T>(workers: number, f: (r: Refiner) => Promise<T>): Promise<T> {
  const r = await createRefinerWith({ workers, weights: WEIGHTS }, {
    schedule: { baseLongSide: BASE },
  });
  try {
    return await f(r);
  } finally {
    r.dispose();
  }
}

Deno.test("mirrorImage and mirrorMask: pixel (x, y) comes from (w-1-x, y); twice is the identity; inputs untouched", () => {
  for (const channels of [3, 4] as const) {
    const image: RgbImage = {
      width: 7,
      height: 5,
      channels,
      data: randomBytes(7 * 5 * channels, 11 + channels),
    };
    const before = image.data.slice();
    const m = mirrorImage(image);
    assertEquals([m.width, m.height, m.channels], [7, 5, channels]);
    for (let y = 0; y < 5; y++) {
      for (let x = 0; x < 7; x++) {
        for (let c = 0; c < channels; c++) {
          assertEquals(
            m.data[(y * 7 + x) * channels + c],
            image.data[(y * 7 + 6 - x) * channels + c],
          );
        }
      }
    }
    assertEquals(image.data, before);
    assertEquals(mirrorImage(m).data, before);
  }
  const mask: Mask = { width: 9, height: 4, data: randomBytes(36, 5) };
  const before = mask.data.slice();
  const m = mirrorMask(mask);
  for (let y = 0; y < 4; y++) {
    for (let x = 0; x < 9; x++) assertEquals(m.data[y * 9 + x], mask.data[y * 9 + 8 - x]);
  }
  assertEquals(mask.data, before);
  assertEquals(mirrorMask(m).data, before);
});

Deno.test("averagePlanes: the mean rounded half up, symmetric; planes of different sizes are refused", () => {
  const a = randomBytes(1000, 3), b = randomBytes(1000, 4);
  const mean = averagePlanes(a, b);
  for (let i = 0; i < a.length; i++) assertEquals(mean[i], Math.floor((a[i] + b[i]) / 2 + 0.5));
  assertEquals(averagePlanes(b, a), mean);
  assertEquals(
    averagePlanes(Uint8Array.of(255, 0, 254), Uint8Array.of(255, 1, 255)),
    Uint8Array.of(255, 1, 255),
  );
  throws(() => averagePlanes(a, b.subarray(1)), RangeError);
});

const image = sceneImage(300, 200);
const coarse = blobMask(150, 100);

Deno.test("flip is the mean of the plain pass and the mirror of the mirrored pass, and differs from the plain pass", async () => {
  await withRefiner(1, async (r) => {
    // the coarse trust applies once, to the average: compare the passes without it
    const raw = { coarseTrust: 0 };
    const plain = await r.refine(image, coarse, raw);
    const mirrored = await r.refine(mirrorImage(image), mirrorMask(coarse), raw);
    const flipped = await r.refine(image, coarse, { flip: true, ...raw });
    const want = averagePlanes(plain.data, mirrorMask(mirrored).data);
    assertEquals([flipped.width, flipped.height], [300, 200]);
    assertEquals(differences(flipped.data, want), []);
    // the network is not mirror-symmetric, so the average is not the plain pass
    assert(differences(flipped.data, plain.data).length > 0, "flip changed nothing");
    const byDefault = await r.refine(image, coarse, { flip: true });
    const trusted = applyCoarseTrust(flipped, coarse, DEFAULT_COARSE_TRUST);
    assertEquals(differences(byDefault.data, trusted.data), []);
  });
});

Deno.test("flip is mirror-equivariant bit for bit, on workers and inline, dense and sparse", async () => {
  for (const workers of [0, 2]) {
    for (const dense of [false, true]) {
      await withRefiner(workers, async (r) => {
        const out = await r.refine(image, coarse, { flip: true, dense });
        const ofMirror = await r.refine(mirrorImage(image), mirrorMask(coarse), {
          flip: true,
          dense,
        });
        assertEquals(
          differences(mirrorMask(ofMirror).data, out.data),
          [],
          `workers ${workers} dense ${dense}`,
        );
      });
    }
  }
});

Deno.test("flip: progress counts both passes up to the total, and every stage is reported twice", async () => {
  await withRefiner(1, async (r) => {
    const plainStages: StageReport[] = [];
    await r.refine(image, coarse, { onStage: (s) => plainStages.push(s) });
    const seen: Progress[] = [];
    const stages: StageReport[] = [];
    const out = await r.refine(image, coarse, {
      flip: true,
      output: "binary",
      onProgress: (p) => seen.push(p),
      onStage: (s) => stages.push(s),
    });
    assert(out.data.every((v) => v === 0 || v === 255));
    assertEquals(stages.length, 2 * plainStages.length);
    assertEquals(
      stages.map((s) => s.target),
      [...plainStages, ...plainStages].map((s) => s.target),
    );
    const total = seen[0].total;
    assert(
      seen.every((p) => p.total === total && p.stages === 2 * plainStages.length),
      "constant totals",
    );
    for (let i = 1; i < seen.length; i++) {
      assert(seen[i].done >= seen[i - 1].done && seen[i].stage >= seen[i - 1].stage, "monotonic");
    }
    assertEquals(seen.at(-1)!.done, total);
    assert(
      seen.some((p) => p.done < total / 2) && seen.some((p) => p.done > total / 2),
      "both halves",
    );
  });
});

Deno.test("flip: disposing or aborting between the two passes rejects with the right code", async () => {
  const stages = await withRefiner(0, async (r) => {
    let n = 0;
    await r.refine(image, coarse, { onStage: () => n++ });
    return n;
  });
  for (const how of ["dispose", "abort"] as const) {
    const r = await createRefinerWith({ workers: 1, weights: WEIGHTS }, {
      schedule: { baseLongSide: BASE },
    });
    const controller = new AbortController();
    let seen = 0;
    const call = r.refine(image, coarse, {
      flip: true,
      signal: controller.signal,
      onStage: () => {
        if (++seen !== stages) return; // the plain pass's last stage
        if (how === "dispose") r.dispose();
        else controller.abort();
      },
    });
    await rejects(call, (err: unknown) => {
      assert(err instanceof CrispmaskError, `${how}: ${err}`);
      assertEquals(err.code, how === "dispose" ? "disposed" : "aborted");
      return true;
    });
    assertEquals(seen, stages, `${how}: the mirrored pass ran no stage`);
    r.dispose();
  }
});
