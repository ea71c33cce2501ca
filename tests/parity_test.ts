/**
 * Golden parity: the WebAssembly forward pass against the PyTorch reference.
 *
 * tests/fixtures/golden.safetensors is written by train/export.py from the
 * shipped weights: inputs of odd size, every encoder stage, the per-cell
 * first-layer term and logits on several target grids (same size, 2x, a
 * non-integer scale, an interior window), with the prior planes when the
 * model reads one.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { parseSafetensors } from "../src/weights/safetensors.ts";
import { loadModelWeights } from "../src/weights/model_weights.ts";
import { compileKernels, instantiateKernels, type KernelBuild } from "../src/engine/wasm.ts";
import { Arena } from "../src/engine/arena.ts";
import { encode, loadNetwork, query, type Tensor } from "../src/model/network.ts";
import { encoderInputInto, nchwToNhwc } from "../src/model/layout.ts";
import { refineDenseLogits } from "../src/pipeline/refine_dense.ts";

const ROOT = new URL("../", import.meta.url);
const weightsBytes = await Deno.readFile(new URL("weights/crm-lite.safetensors", ROOT));
const golden = parseSafetensors(
  await Deno.readFile(new URL("tests/fixtures/golden.safetensors", ROOT)),
  "golden fixture",
);
const meta = JSON.parse(golden.metadata.get("golden")!) as {
  image_size: [number, number];
  targets: Record<string, { size: [number, number]; window: [number, number, number, number] }>;
  pipeline: { base_long_side: number; stages: [number, number][] };
};

function relativeL2(actual: Float32Array, expected: Float32Array): number {
  assertEquals(actual.length, expected.length);
  let num = 0, den = 0;
  for (let i = 0; i < actual.length; i++) {
    num += (actual[i] - expected[i]) ** 2;
    den += expected[i] ** 2;
  }
  assert(den > 0, "reference is all zeros: the comparison would mean nothing");
  return Math.sqrt(num / den);
}

async function setup(build: KernelBuild) {
  const k = instantiateKernels(await compileKernels(build));
  const arena = new Arena(k.memory, k.exports.heapBase());
  const weights = loadModelWeights(weightsBytes, "weights/crm-lite.safetensors");
  const net = loadNetwork(k, arena, weights);
  const [h, w] = meta.image_size;
  const image = golden.getTensor("input.image").data;
  const mask = golden.getTensor("input.mask").data;
  const input: Tensor = { buf: arena.f32(h * w * 4), h, w, c: 4 };
  encoderInputInto(
    arena.view(input.buf),
    h * w,
    weights.config,
    (i, c) => image[c * h * w + i],
    (i) => mask[i],
  );
  const taps = new Map<string, Tensor>();
  const proj = encode(net, input, taps);
  return { net, arena, proj, taps };
}

for (const build of ["relaxed-simd", "simd"] as const) {
  const ctx = await setup(build);

  Deno.test(`[${build}] every encoder stage matches PyTorch (rel. L2 < 1e-4)`, () => {
    const stages = [...golden.tensors.keys()].filter((n) => n.startsWith("tap."));
    assert(stages.length >= 5, `fixture has too few taps: ${stages}`);
    for (const name of stages) {
      const ref = golden.getTensor(name);
      const [, c, h, w] = ref.shape;
      const t = ctx.taps.get(name.slice(4));
      assert(t, `engine has no tensor ${name.slice(4)}`);
      assertEquals([t.h, t.w, t.c], [h, w, c], `${name} shape`);
      const err = relativeL2(ctx.arena.view(t.buf), nchwToNhwc(ref.data, c, h, w));
      assert(err < 1e-4, `${name}: relative L2 error ${err.toExponential(2)}`);
      console.log(`  ${build} ${name.padEnd(14)} ${h}x${w}x${c}  rel. L2 ${err.toExponential(2)}`);
    }
  });

  Deno.test(`[${build}] logits match PyTorch on every target grid`, () => {
    for (const [name, t] of Object.entries(meta.targets)) {
      const ref = golden.getTensor(`logits.${name}`).data;
      const [y0, x0, h, w] = t.window;
      const mark = ctx.arena.mark();
      const out = ctx.arena.f32(h * w);
      // a model that reads the prior gets PyTorch's (the pipeline test checks the engine's own)
      const prior = ctx.net.implicit.posDims === 7
        ? { ptr: ctx.arena.upload(golden.getTensor(`prior.${name}`).data).ptr }
        : undefined;
      query(ctx.net, ctx.proj, { gridH: t.size[0], gridW: t.size[1], y0, x0, h, w }, out, prior);
      const got = ctx.arena.view(out);
      const err = relativeL2(got, ref);
      let flips = 0;
      for (let i = 0; i < ref.length; i++) {
        if ((got[i] > 0) !== (ref[i] > 0) && Math.abs(ref[i]) >= 1e-3) flips++;
      }
      ctx.arena.release(mark);
      console.log(
        `  ${build} logits.${name.padEnd(7)} ${h}x${w} of ${t.size}  rel. L2 ${
          err.toExponential(2)
        }`,
      );
      assert(err < 1e-4, `logits.${name}: relative L2 error ${err.toExponential(2)}`);
      assertEquals(flips, 0, `logits.${name}: ${flips} pixels change class at |logit| >= 1e-3`);
    }
  });
}

Deno.test("the dense multi-resolution pipeline matches PyTorch's refine (3 stages)", async () => {
  const { net } = await setup("relaxed-simd");
  const img = golden.getTensor("pipeline.image");
  const [, , h, w] = img.shape;
  const coarseT = golden.getTensor("pipeline.coarse");
  const [, , ch, cw] = coarseT.shape;
  const rgb = nchwToNhwc(img.data, 3, h, w);
  const image = { width: w, height: h, channels: 3 as const, data: Uint8Array.from(rgb) };
  const coarse = { width: cw, height: ch, data: Uint8Array.from(coarseT.data) };
  let stagesSeen = 0;
  const logits = refineDenseLogits(net, image, coarse, {
    baseLongSide: meta.pipeline.base_long_side,
    chunkRows: 7, // several chunks per stage, with a ragged last one
    onProgress: (p) => (stagesSeen = p.stages),
  });
  assertEquals(stagesSeen, meta.pipeline.stages.length);
  const ref = golden.getTensor("pipeline.logits").data;
  const err = relativeL2(logits, ref);
  console.log(
    `  pipeline ${h}x${w}, stages ${JSON.stringify(meta.pipeline.stages)}: rel. L2 ${
      err.toExponential(2)
    }`,
  );
  assert(err < 1e-4, `pipeline logits: relative L2 error ${err.toExponential(2)}`);
});
