/**
 * The serverless handler (examples/serverless.ts), started with `deno serve`
 * on 127.0.0.1 (a free port) as a user starts it: real images posted as a
 * multipart form and as JSON file URLs give the library's mask bit for bit;
 * bad requests get a 4xx with a JSON error; the memory plan.
 */

import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { createRefiner } from "../mod.ts";
import { decodeImage, decodeMask, encodeMaskPng } from "../src/io/image_file.ts";
import { decodePng } from "../src/io/png.ts";
import { memoryPlan } from "../examples/serverless.ts";
import { type ServerlessProcess, startServerless } from "../examples/serverless_process.ts";
import { differences } from "./helpers/scene.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const EXAMPLES = `${ROOT}examples`;
const IMAGE = await Deno.readFile(`${EXAMPLES}/coffee.png`);
const COARSE = await Deno.readFile(`${EXAMPLES}/coffee_coarse.png`);
const MAX_PIXELS = 1_000_000;

const expected = await (async () => {
  const refiner = await createRefiner({ workers: 0 });
  try {
    return await refiner.refine(
      (await decodeImage(IMAGE, "image")).image,
      (await decodeMask(COARSE, "mask")).mask,
    );
  } finally {
    refiner.dispose();
  }
})();

/** The handler on a free port, with this test's settings. */
function serve(): Promise<ServerlessProcess> {
  return startServerless({
    CRISPMASK_FILE_ROOT: EXAMPLES,
    CRISPMASK_MAX_PIXELS: String(MAX_PIXELS),
    CRISPMASK_WORKERS: "2",
  });
}

function form(fields: Record<string, Uint8Array | string>): FormData {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) {
    f.append(k, typeof v === "string" ? v : new Blob([v as BlobPart]), k);
  }
  return f;
}

async function assertPngMask(res: Response, what: string): Promise<void> {
  assertEquals(res.status, 200, `${what}: ${res.status} ${await res.clone().text()}`);
  assertEquals(res.headers.get("content-type"), "image/png");
  const png = decodePng(new Uint8Array(await res.arrayBuffer()));
  assertEquals([png.width, png.height, png.channels], [expected.width, expected.height, 1]);
  assertEquals(differences(png.data, expected.data), [], what);
}

async function assertJsonError(res: Response, status: number, code: string, fragment: string) {
  assertEquals(res.status, status, `status for ${code}`);
  assert(res.headers.get("content-type")?.startsWith("application/json"));
  const body = await res.json();
  assertEquals(body.code, code);
  assert(typeof body.error === "string" && body.error.includes(fragment), body.error);
}

Deno.test("deno serve examples/serverless.ts: real images in, the library's mask out", async () => {
  const server = await serve();
  try {
    const multipart = await fetch(server.url, {
      method: "POST",
      body: form({ image: IMAGE, mask: COARSE }),
    });
    await assertPngMask(multipart, "multipart");
    const json = await fetch(server.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        image: `file://${EXAMPLES}/coffee.png`,
        mask: `file://${EXAMPLES}/coffee_coarse.png`,
      }),
    });
    await assertPngMask(json, "JSON file URLs");

    // bad requests: a 4xx and a JSON error each, and the server goes on serving
    const post = (body: BodyInit, headers: HeadersInit = {}) =>
      fetch(server.url, { method: "POST", body, headers });
    await assertJsonError(await post(form({ image: IMAGE })), 400, "bad-request", '"mask"');
    await assertJsonError(
      await post(form({ image: new TextEncoder().encode("not an image"), mask: COARSE })),
      415,
      "unsupported-format",
      "image: not a PNG or JPEG",
    );
    const square = encodeMaskPng({ width: 100, height: 100, data: new Uint8Array(100 * 100) });
    await assertJsonError(
      await post(form({ image: IMAGE, mask: square })),
      422,
      "aspect-mismatch",
      "aspect",
    );
    const big = encodeMaskPng({ width: 1100, height: 1000, data: new Uint8Array(1100 * 1000) });
    await assertJsonError(await post(form({ image: big, mask: COARSE })), 413, "too-large", "MP");
    await assertJsonError(
      await post(form({ image: IMAGE, mask: COARSE, output: "fuzzy" })),
      400,
      "bad-request",
      "output",
    );
    await assertJsonError(
      await post(JSON.stringify({ image: `file://${ROOT}README.md`, mask: "x" }), {
        "content-type": "application/json",
      }),
      403,
      "forbidden",
      "outside",
    );
    await assertJsonError(
      await post("image=1", { "content-type": "text/plain" }),
      415,
      "unsupported-media-type",
      "multipart",
    );
    await assertJsonError(await fetch(server.url), 405, "method-not-allowed", "POST");

    const again = await post(form({ image: IMAGE, mask: COARSE, output: "binary" }));
    assertEquals(again.status, 200);
    const bin = decodePng(new Uint8Array(await again.arrayBuffer()));
    assert(bin.data.every((v) => v === 0 || v === 255), "binary output");
  } finally {
    await server.stop();
  }
});

Deno.test("the memory plan keeps workers that fit and refuses budgets that cannot work", () => {
  const MiB = 2 ** 20;
  const six = memoryPlan({ maxPixels: 24e6, memoryBudget: 512 * MiB, workers: 2 });
  assertEquals(six.workers, 2);
  assert(six.refinerBytes >= 3 * 16 * MiB, `${six.refinerBytes}`);
  const tight = memoryPlan({ maxPixels: 24e6, memoryBudget: 460 * MiB, workers: 4 });
  assert(tight.workers < 4);
  throws(() => memoryPlan({ maxPixels: 24e6, memoryBudget: 300 * MiB, workers: 2 }), /needs about/);
});
