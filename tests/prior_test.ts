/**
 * The prior input (models with 7 positional inputs, `pos_dims: 7`): the
 * implicit function also reads the stage's mask upsampled to each target
 * pixel. The dense pipeline computes it with the resize kernel over whole
 * grids, a unit with `upsample` over its mask crop; both must agree bit for
 * bit whatever the strips, tiles and units, and the prior must matter.
 *
 * The model here is the shipped one with the 7th positional input's weights
 * drawn at random (added when the shipped one has 6 inputs, replaced when it
 * has 7), so the test holds for any shipped weights.
 */
import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { parseSafetensors } from "../src/weights/safetensors.ts";
import { loadModelWeights } from "../src/weights/model_weights.ts";
import { compileKernels, instantiateKernels } from "../src/engine/wasm.ts";
import { Arena } from "../src/engine/arena.ts";
import { loadNetwork } from "../src/model/network.ts";
import { refineDenseLogits } from "../src/pipeline/refine_dense.ts";
import { refineScheduled, type StageStats } from "../src/pipeline/refine.ts";
import { unitContext } from "../src/pipeline/unit.ts";
import { InlineRunner } from "../src/workers/pool.ts";
import { assemble, layout, type TensorSpec } from "./helpers/safetensors_writer.ts";
import { randomFloats } from "./helpers/kernels.ts";
import { blobMask, differences, sceneImage, WEIGHTS } from "./helpers/scene.ts";

/** `bytes` (a 6- or 7-input model) with 7 positional inputs, the prior's weights uniform in ±`scale`. */
function withPrior(bytes: Uint8Array, scale: number): Uint8Array {
  const file = parseSafetensors(bytes, "weights");
  const config = JSON.parse(file.metadata.get("config")!);
  const tensors: TensorSpec[] = [];
  for (const name of file.tensors.keys()) {
    const t = file.getTensor(name);
    if (name === "mlp.pos.weight") {
      const [w0, had] = t.shape;
      const extra = randomFloats(w0, 11, -scale, scale);
      const wide = new Float32Array(w0 * 7);
      for (let c = 0; c < w0; c++) {
        wide.set(t.data.subarray(c * had, c * had + 6), c * 7);
        wide[c * 7 + 6] = extra[c];
      }
      tensors.push({ name, shape: [w0, 7], data: wide });
    } else {
      tensors.push({ name, shape: [...t.shape], data: t.data });
    }
  }
  const metadata = Object.fromEntries(file.metadata);
  metadata.config = JSON.stringify({ ...config, pos_dims: 7 });
  const { header, data } = layout(tensors, metadata);
  return assemble(header, data, { padTo: 8 });
}

async function setup(bytes: Uint8Array) {
  const k = instantiateKernels(await compileKernels("relaxed-simd"));
  const net = loadNetwork(
    k,
    new Arena(k.memory, k.exports.heapBase()),
    loadModelWeights(bytes, "weights"),
  );
  const ctx = unitContext(net);
  return { ctx, inline: new InlineRunner(ctx) };
}

const BASE = 80; // stages 75x50, 150x100, 300x200
const image = sceneImage(200, 300);
const coarse = blobMask(100, 150);
const prior = await setup(withPrior(WEIGHTS, 1.5));
const reference = refineDenseLogits(prior.ctx.net, image, coarse, { baseLongSide: BASE });

Deno.test("a 7-input model loads, and its config says it reads the prior", () => {
  assertEquals(prior.ctx.net.config.pos_dims, 7);
  assertEquals(prior.ctx.net.implicit.posDims, 7);
  // a 7-wide positional weight under a 6-input config is refused with the tensor's name
  const file = parseSafetensors(withPrior(WEIGHTS, 1), "weights");
  const metadata = Object.fromEntries(file.metadata);
  metadata.config = JSON.stringify({ ...JSON.parse(metadata.config), pos_dims: 6 });
  const tensors = [...file.tensors.keys()].map((name) => {
    const t = file.getTensor(name);
    return { name, shape: [...t.shape], data: t.data };
  });
  const { header, data } = layout(tensors, metadata);
  throws(
    () => loadModelWeights(assemble(header, data, { padTo: 8 }), "weights"),
    /mlp\.pos\.weight/,
  );
});

Deno.test("the prior changes the result (the engine reads it)", async () => {
  const other = await setup(withPrior(WEIGHTS, -1.5));
  const flipped = refineDenseLogits(other.ctx.net, image, coarse, { baseLongSide: BASE });
  let moved = 0;
  for (let i = 0; i < reference.length; i++) {
    if (Math.abs(flipped[i] - reference[i]) > 1e-3) moved++;
  }
  assert(moved > reference.length / 10, `only ${moved} of ${reference.length} logits moved`);
});

Deno.test("with the prior, row strips and sparse tiles give the dense pipeline's logits bit for bit", async () => {
  for (const stripRows of [8, 40, 300]) {
    const out = await refineScheduled(prior.ctx, prior.inline, image, coarse, "logits", {
      baseLongSide: BASE,
      dense: true,
      stripRows,
    });
    assertEquals(differences(out, reference), [], `strips of ${stripRows} rows`);
  }
  // nothing confident: every tile runs, cut into many small units
  for (const [tile, unitBytes] of [[16, 1 << 18], [48, 1 << 30]]) {
    const stats: StageStats[] = [];
    const out = await refineScheduled(prior.ctx, prior.inline, image, coarse, "logits", {
      baseLongSide: BASE,
      sparsity: { tile, low: -1, high: 2, denseAbove: Infinity },
      unitBytes,
      stats,
    });
    assert(stats.every((s) => s.sparse), "tiles ran");
    assertEquals(differences(out, reference), [], `tiles of ${tile}`);
  }
});
