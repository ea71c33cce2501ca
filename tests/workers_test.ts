/**
 * The worker pool and the refiner on top of it: results bit-identical for
 * any worker count (and inline), failures of a worker fail the call with the
 * worker's error (no hang, no partial result), aborts and dispose, and the
 * refiner's input handling (typed errors, quick exact pass-through).
 */
import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { CrispmaskError } from "../src/errors.ts";
import { compileKernels } from "../src/engine/wasm.ts";
import { createRefinerWith, type Refiner } from "../src/refiner.ts";
import { runStage, type StageStats } from "../src/pipeline/refine.ts";
import type { StageGeometry } from "../src/pipeline/plan.ts";
import { DensePlane } from "../src/pipeline/planes.ts";
import { InlineRunner, WorkerPool } from "../src/workers/pool.ts";
import { blobMask, differences, sceneImage, unitSetup, WEIGHTS } from "./helpers/scene.ts";

const BASE = 80; // 300x200 runs three stages
const image = sceneImage(200, 300);
const coarse = blobMask(100, 150);

function isCode(code: string, fragment?: string) {
  return (err: unknown) => {
    assert(err instanceof CrispmaskError, `expected a CrispmaskError, got ${err}`);
    assertEquals(err.code, code);
    if (fragment) assert(err.message.includes(fragment), `message ${JSON.stringify(err.message)}`);
    return true;
  };
}

async function withRefiner<T>(
  workers: number,
  f: (r: Refiner) => Promise<T>,
  internals: Parameters<typeof createRefinerWith>[1] = {},
): Promise<T> {
  const r = await createRefinerWith({ workers, weights: WEIGHTS }, {
    schedule: { baseLongSide: BASE },
    ...internals,
  });
  try {
    return await f(r);
  } finally {
    r.dispose();
  }
}

const reference = await withRefiner(0, (r) => r.refine(image, coarse, { dense: true }));

Deno.test("1, 2 and 3 workers give the inline result bit for bit (dense)", async () => {
  for (const workers of [1, 2, 3]) {
    const out = await withRefiner(workers, async (r) => {
      assertEquals(r.workers, workers);
      return await r.refine(image, coarse, { dense: true });
    });
    assertEquals(differences(out.data, reference.data), [], `${workers} workers`);
  }
});

Deno.test("1, 2 and 3 workers give the inline result bit for bit (sparse stage)", async () => {
  const host = await unitSetup();
  const km = await compileKernels("relaxed-simd");
  const prev = new Float32Array(150 * 100);
  for (let y = 0; y < 150; y++) {
    for (let x = 0; x < 100; x++) {
      prev[y * 100 + x] = 1 / (1 + Math.exp(-12 * (1 - Math.hypot((x - 50) / 30, (y - 80) / 45))));
    }
  }
  const geo: StageGeometry = { size: [150, 100], target: [300, 200], full: [300, 200] };
  const sparsity = { tile: 16, denseAbove: Infinity };
  const unitBytes = 1 << 18; // small units: several per worker
  const stats: StageStats[] = [];
  const plane = new DensePlane(150, 100, prev);
  const want = await runStage(host, new InlineRunner(host), image, plane, geo, "u8", {
    sparsity,
    unitBytes,
    stats,
  }) as Uint8Array;
  assert(stats[0].activeTiles < 0.9);
  for (const size of [1, 2, 3]) {
    const pool = await WorkerPool.create({ size, module: km, weights: WEIGHTS });
    try {
      const got = await runStage(host, pool, image, plane, geo, "u8", {
        sparsity,
        unitBytes,
        stats,
      }) as Uint8Array;
      assert(stats.at(-1)!.units >= 4, `${stats.at(-1)!.units} units`);
      assertEquals(differences(got, want), [], `${size} workers`);
    } finally {
      pool.terminate();
    }
  }
});

Deno.test("a unit that throws in a worker fails the call with the worker's error; the refiner goes on", async () => {
  await withRefiner(2, async (r) => {
    await rejects(
      r.refine(image, coarse, { dense: true }),
      isCode("worker", "injected unit failure"),
    );
    const again = await r.refine(image, coarse, { dense: true });
    assertEquals(differences(again.data, reference.data), []);
  }, { fault: { unit: 2, mode: "throw" } });
});

Deno.test("a worker that dies fails the call (no hang, no partial result); a replacement serves later calls", async () => {
  await withRefiner(2, async (r) => {
    await rejects(
      r.refine(image, coarse, { dense: true }),
      isCode("worker", "injected worker crash"),
    );
    const again = await r.refine(image, coarse, { dense: true });
    assertEquals(differences(again.data, reference.data), []);
  }, { fault: { unit: 1, mode: "die", worker: 0 } });
});

Deno.test("a worker that dies on its first unit with one worker fails the call", async () => {
  await withRefiner(1, async (r) => {
    await rejects(r.refine(image, coarse, { dense: true }), isCode("worker", "died"));
  }, { fault: { unit: 1, mode: "die", worker: 0 } });
});

Deno.test("an abort stops the call between units and drops the rest", async () => {
  const big = sceneImage(400, 600);
  const bigCoarse = blobMask(100, 150);
  for (const workers of [0, 2]) {
    await withRefiner(workers, async (r) => {
      const ctrl = new AbortController();
      let calls = 0, afterAbort = 0, last = { done: 0, total: 1 };
      const p = r.refine(big, bigCoarse, {
        dense: true,
        signal: ctrl.signal,
        onProgress: (q) => {
          calls++;
          last = q;
          if (ctrl.signal.aborted) afterAbort++;
          if (calls === 1) ctrl.abort();
        },
      });
      await rejects(p, isCode("aborted"));
      assert(last.done < last.total, "the call finished before the abort took effect");
      assert(afterAbort <= workers, `${afterAbort} units reported after the abort`);
      // the refiner is still usable
      const out = await r.refine(image, coarse, { dense: true });
      assertEquals(differences(out.data, reference.data), []);
      await rejects(r.refine(image, coarse, { signal: AbortSignal.abort() }), isCode("aborted"));
    });
  }
});

Deno.test("dispose terminates the workers: a running call rejects, later calls reject", async () => {
  const r = await createRefinerWith({ workers: 2, weights: WEIGHTS }, {
    schedule: { baseLongSide: BASE },
  });
  const running = r.refine(sceneImage(400, 600), blobMask(100, 150), { dense: true });
  await new Promise((resolve) => setTimeout(resolve, 50));
  r.dispose();
  await rejects(running, isCode("disposed"));
  await rejects(r.refine(image, coarse), isCode("disposed"));
});

Deno.test("bad input is a typed CrispmaskError, as before", async () => {
  await withRefiner(1, async (r) => {
    const bad = { ...image, data: image.data.subarray(1) };
    await rejects(r.refine(bad, coarse), isCode("bad-input"));
    await rejects(r.refine(image, { ...coarse, width: 0 }), isCode("bad-input"));
    await rejects(r.refine(image, blobMask(150, 100)), isCode("aspect-mismatch"));
  });
  const small = await createRefinerWith({ workers: 1, weights: WEIGHTS, maxPixels: 1000 }, {});
  await rejects(small.refine(image, coarse), isCode("too-large"));
  small.dispose();
});

Deno.test("empty, full and tiny masks pass through exactly, without running units", async () => {
  const stats: StageStats[] = [];
  await withRefiner(2, async (r) => {
    const empty = await r.refine(image, {
      width: 100,
      height: 150,
      data: new Uint8Array(100 * 150),
    });
    assert(empty.data.every((v) => v === 0) && empty.data.length === 200 * 300);
    const full = await r.refine(image, {
      width: 100,
      height: 150,
      data: new Uint8Array(100 * 150).fill(255),
    });
    assert(full.data.every((v) => v === 255));
    const tiny = new Uint8Array(100 * 150);
    for (let y = 70; y < 75; y++) for (let x = 40; x < 45; x++) tiny[y * 100 + x] = 255;
    const out = await r.refine(image, { width: 100, height: 150, data: tiny });
    let fg = 0;
    for (const v of out.data) fg += v === 255 ? 1 : 0;
    assertEquals(fg, 10 * 10);
  }, { schedule: { baseLongSide: BASE, stats } });
  assertEquals(stats.length, 0, "no stage ran");
});

Deno.test("binary output thresholds the soft mask at 128", async () => {
  const out = await withRefiner(
    1,
    (r) => r.refine(image, coarse, { dense: true, output: "binary" }),
  );
  assertEquals(differences(out.data, reference.data.map((v) => (v >= 128 ? 255 : 0))), []);
});

Deno.test("default: one worker per core (inline where there is no Worker)", async () => {
  const r = await createRefinerWith({ weights: WEIGHTS }, {});
  try {
    assertEquals(r.workers, navigator.hardwareConcurrency);
  } finally {
    r.dispose();
  }
});

Deno.test("where Worker does not exist, the same code runs inline", async () => {
  const saved = globalThis.Worker;
  // deno-lint-ignore no-explicit-any
  delete (globalThis as any).Worker;
  try {
    const out = await withRefiner(2, async (r) => {
      assertEquals(r.workers, 0);
      return await r.refine(image, coarse, { dense: true });
    });
    assertEquals(differences(out.data, reference.data), []);
  } finally {
    globalThis.Worker = saved;
  }
});
