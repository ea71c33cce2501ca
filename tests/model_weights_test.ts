import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  expectedTensorShapes,
  type ModelConfig,
  parseModelConfig,
} from "../src/weights/model_config.ts";
import { loadModelWeights, WEIGHTS_FORMAT } from "../src/weights/model_weights.ts";
import { parseSafetensors } from "../src/weights/safetensors.ts";
import { assertWeightsError } from "./helpers/assert.ts";
import {
  randomFloats,
  type TensorSpec,
  u16Bytes,
  writeSafetensors,
} from "./helpers/safetensors_writer.ts";

/** train/model.py's DEFAULT_CONFIG. */
const DEFAULT = {
  arch: "crm-lite",
  in_channels: 4,
  stem: 32,
  stages: [
    { width: 32, blocks: 2, stride: 1, dilation: 1 },
    { width: 64, blocks: 2, stride: 2, dilation: 1 },
    { width: 128, blocks: 2, stride: 1, dilation: 2 },
  ],
  proj: [16, 16, 32],
  latent: 64,
  mlp: [32, 32, 32],
  pos_dims: 6,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  base_long_side: 960,
};

/**
 * A narrow config that still exercises every rule for `down`: stage 0 keeps
 * width and stride (no down), stage 1 changes width at stride 1, stage 2
 * keeps width at stride 2 (down on its first block only).
 */
const SMALL = {
  ...DEFAULT,
  stem: 8,
  stages: [
    { width: 8, blocks: 2, stride: 1, dilation: 1 },
    { width: 12, blocks: 1, stride: 1, dilation: 2 },
    { width: 12, blocks: 2, stride: 2, dilation: 4 },
  ],
  proj: [4, 4, 8],
  latent: 8,
  mlp: [8, 4],
  base_long_side: 320,
};

/** SMALL's tensors as train/model.py's folded_tensors lists them, worked out by hand. */
const SMALL_TENSORS: [string, number[]][] = [
  ["stem.weight", [8, 4, 7, 7]],
  ["stem.bias", [8]],
  ["stage0.0.conv1.weight", [8, 8, 3, 3]],
  ["stage0.0.conv1.bias", [8]],
  ["stage0.0.conv2.weight", [8, 8, 3, 3]],
  ["stage0.0.conv2.bias", [8]],
  ["stage0.1.conv1.weight", [8, 8, 3, 3]],
  ["stage0.1.conv1.bias", [8]],
  ["stage0.1.conv2.weight", [8, 8, 3, 3]],
  ["stage0.1.conv2.bias", [8]],
  ["stage1.0.conv1.weight", [12, 8, 3, 3]],
  ["stage1.0.conv1.bias", [12]],
  ["stage1.0.conv2.weight", [12, 12, 3, 3]],
  ["stage1.0.conv2.bias", [12]],
  ["stage1.0.down.weight", [12, 8, 1, 1]],
  ["stage1.0.down.bias", [12]],
  ["stage2.0.conv1.weight", [12, 12, 3, 3]],
  ["stage2.0.conv1.bias", [12]],
  ["stage2.0.conv2.weight", [12, 12, 3, 3]],
  ["stage2.0.conv2.bias", [12]],
  ["stage2.0.down.weight", [12, 12, 1, 1]],
  ["stage2.0.down.bias", [12]],
  ["stage2.1.conv1.weight", [12, 12, 3, 3]],
  ["stage2.1.conv1.bias", [12]],
  ["stage2.1.conv2.weight", [12, 12, 3, 3]],
  ["stage2.1.conv2.bias", [12]],
  ["proj2.weight", [4, 8, 1, 1]],
  ["proj2.bias", [4]],
  ["proj4.weight", [4, 8, 1, 1]],
  ["proj4.bias", [4]],
  ["proj8.weight", [8, 12, 1, 1]],
  ["proj8.bias", [8]],
  ["fuse.weight", [8, 16, 3, 3]],
  ["fuse.bias", [8]],
  ["mlp.feat.weight", [8, 8, 1, 1]],
  ["mlp.feat.bias", [8]],
  ["mlp.pos.weight", [8, 6]],
  ["mlp.hidden0.weight", [4, 8]],
  ["mlp.hidden0.bias", [4]],
  ["mlp.out.weight", [1, 4]],
  ["mlp.out.bias", [1]],
];

const PROVENANCE = { trained: false, random_seed: 7, commit: "abc123", metrics: { iou: 0.9 } };

const product = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * A weights file for `tensors` (default: SMALL's) with fresh random values,
 * plus the values written. `edit` may change the tensor list before writing.
 */
function weightsFile(
  options: {
    config?: unknown;
    tensors?: [string, number[]][];
    metadata?: Record<string, string>;
    edit?: (specs: TensorSpec[]) => void;
  } = {},
) {
  const values = new Map<string, Float32Array>();
  const specs: TensorSpec[] = (options.tensors ?? SMALL_TENSORS).map(([name, shape]) => {
    const data = randomFloats(product(shape));
    values.set(name, data);
    return { name, shape, data };
  });
  options.edit?.(specs);
  const metadata = options.metadata ?? {
    format: WEIGHTS_FORMAT,
    config: JSON.stringify(options.config ?? SMALL),
    provenance: JSON.stringify(PROVENANCE),
  };
  return { file: writeSafetensors(specs, metadata, { padTo: 8 }), values };
}

/** SMALL with `patch` applied to a deep copy. */
function smallWith(patch: (cfg: Record<string, unknown>) => void): unknown {
  const cfg = structuredClone(SMALL) as Record<string, unknown>;
  patch(cfg);
  return cfg;
}

// ---------------------------------------------------------------------------
// expectedTensorShapes

Deno.test("expectedTensorShapes lists SMALL's tensors exactly as folded_tensors does", () => {
  const shapes = expectedTensorShapes(parseModelConfig(SMALL));
  assertEquals([...shapes.entries()], SMALL_TENSORS);
});

Deno.test("expectedTensorShapes matches the names, shapes and order of the exported weights", () => {
  const bytes = Deno.readFileSync(new URL("../weights/crm-lite.safetensors", import.meta.url));
  const st = parseSafetensors(bytes);
  const cfg = parseModelConfig(JSON.parse(st.metadata.get("config")!));
  const fromFile = [...st.tensors.values()].map((t) => [t.name, [...t.shape]]);
  assertEquals([...expectedTensorShapes(cfg).entries()], fromFile);
});

Deno.test("expectedTensorShapes: down only on a first block that changes stride or width", () => {
  const names = [...expectedTensorShapes(parseModelConfig(DEFAULT)).keys()];
  const downs = names.filter((n) => n.includes(".down."));
  // stage0: 32 -> 32 at stride 1 (none); stage1: stride 2 (first block); stage2: 64 -> 128
  assertEquals(downs, [
    "stage1.0.down.weight",
    "stage1.0.down.bias",
    "stage2.0.down.weight",
    "stage2.0.down.bias",
  ]);
  // a single-layer MLP has no hidden layers: feat/pos feed the output layer directly
  const one = expectedTensorShapes(parseModelConfig({ ...DEFAULT, mlp: [16] }));
  assert(![...one.keys()].some((n) => n.startsWith("mlp.hidden")));
  assertEquals(one.get("mlp.out.weight"), [1, 16]);
  assertEquals(one.get("mlp.pos.weight"), [16, 6]);
});

// ---------------------------------------------------------------------------
// loading valid files

Deno.test("round trip: a small synthetic model loads with its config, provenance and values", () => {
  const { file, values } = weightsFile();
  const w = loadModelWeights(file);
  assertEquals(w.config, SMALL);
  assertEquals(w.provenance, PROVENANCE);
  assertEquals(w.names, SMALL_TENSORS.map(([n]) => n));
  for (const [name, shape] of SMALL_TENSORS) {
    assert(w.has(name));
    assertEquals(w.shape(name), shape);
    assertEquals(w.tensor(name), values.get(name));
  }
  assert(Object.isFrozen(w.config) && Object.isFrozen(w.config.stages[0]));
});

Deno.test("tensor order in the file does not matter", () => {
  const { file, values } = weightsFile({ edit: (specs) => specs.reverse() });
  const w = loadModelWeights(file);
  assertEquals(w.names, SMALL_TENSORS.map(([n]) => n));
  assertEquals(w.tensor("fuse.weight"), values.get("fuse.weight"));
});

Deno.test("a wider config (stem 48) loads with matching tensors, no code change", () => {
  const wide = { ...DEFAULT, stem: 48, latent: 96, mlp: [48, 36, 24] };
  const tensors = [...expectedTensorShapes(parseModelConfig(wide)).entries()];
  const { file, values } = weightsFile({ config: wide, tensors });
  const w = loadModelWeights(file);
  assertEquals(w.config.stem, 48);
  assertEquals(w.shape("stem.weight"), [48, 4, 7, 7]);
  // 48 -> 32 now changes width, so stage 0's first block gains a down conv
  assertEquals(w.shape("stage0.0.down.weight"), [32, 48, 1, 1]);
  assertEquals(w.shape("proj2.weight"), [16, 48, 1, 1]);
  assertEquals(w.shape("mlp.hidden1.weight"), [24, 36]);
  assertEquals(w.tensor("mlp.feat.weight"), values.get("mlp.feat.weight"));
});

Deno.test("the shipped weights load", () => {
  const bytes = Deno.readFileSync(new URL("../weights/crm-lite.safetensors", import.meta.url));
  const w = loadModelWeights(bytes, "weights/crm-lite.safetensors");
  // the shipped weights read the prior: DEFAULT_CONFIG with a 7th positional input
  assertEquals(w.config, { ...DEFAULT, pos_dims: 7 });
  assertEquals(typeof w.provenance.trained, "boolean");
  assertEquals(w.shape("fuse.weight"), [64, 64, 3, 3]);
  assertEquals(w.shape("mlp.pos.weight"), [32, 7]);
});

Deno.test("F16 weights load, widened exactly", () => {
  const { file } = weightsFile({
    edit: (specs) => {
      for (const s of specs) {
        // alternate 1.5 (0x3e00) and -2^-24 (0x8001, a subnormal)
        const n = product(s.shape);
        s.raw = u16Bytes(Array.from({ length: n }, (_, i) => (i % 2 ? 0x8001 : 0x3e00)));
        s.dtype = "F16";
        delete s.data;
      }
    },
  });
  const t = loadModelWeights(file).tensor("stem.bias");
  assertEquals(Array.from(t.subarray(0, 2)), [1.5, -(2 ** -24)]);
});

Deno.test("missing provenance reads as an empty object; missing format is accepted", () => {
  const { file } = weightsFile({ metadata: { config: JSON.stringify(SMALL) } });
  assertEquals(loadModelWeights(file).provenance, {});
});

// ---------------------------------------------------------------------------
// metadata problems

Deno.test("a file without __metadata__.config is rejected", () => {
  for (const metadata of [{ format: WEIGHTS_FORMAT }, undefined]) {
    const specs = SMALL_TENSORS.map(([name, shape]) => ({
      name,
      shape,
      data: randomFloats(product(shape)),
    }));
    assertWeightsError(
      () => loadModelWeights(writeSafetensors(specs, metadata)),
      "__metadata__.config is missing",
    );
  }
});

Deno.test("a config that is not JSON is rejected", () => {
  const { file } = weightsFile({ metadata: { config: "{stem: 8}" } });
  assertWeightsError(() => loadModelWeights(file), "__metadata__.config is not valid JSON");
});

Deno.test("a provenance that is not a JSON object is rejected", () => {
  const config = JSON.stringify(SMALL);
  assertWeightsError(
    () => loadModelWeights(weightsFile({ metadata: { config, provenance: "trained" } }).file),
    "__metadata__.provenance is not valid JSON",
  );
  assertWeightsError(
    () => loadModelWeights(weightsFile({ metadata: { config, provenance: "[1]" } }).file),
    "__metadata__.provenance is an array, not a JSON object",
  );
});

Deno.test("a file of another format (the golden fixtures) is rejected", () => {
  const bytes = Deno.readFileSync(new URL("./fixtures/golden.safetensors", import.meta.url));
  assertWeightsError(
    () => loadModelWeights(bytes, "golden.safetensors"),
    "golden.safetensors: ",
    '__metadata__.format is "crispmask-golden", not "crispmask-crm"',
  );
});

Deno.test("structural file problems surface as WeightsError with the source name", () => {
  const { file } = weightsFile();
  assertWeightsError(
    () => loadModelWeights(file.subarray(0, file.length - 4), "w.safetensors"),
    "w.safetensors: ",
    'tensor "mlp.out.bias"',
    "past the end of the data",
  );
});

// ---------------------------------------------------------------------------
// tensor problems

Deno.test("a missing tensor is named with its expected shape", () => {
  const { file } = weightsFile({
    edit: (specs) => specs.splice(specs.findIndex((s) => s.name === "stage2.0.down.weight"), 1),
  });
  const err = assertWeightsError(
    () => loadModelWeights(file),
    'missing tensor "stage2.0.down.weight" (expected shape [12, 12, 1, 1])',
  );
  assertEquals(err.tensor, "stage2.0.down.weight");
  const none = weightsFile({ edit: (specs) => specs.splice(0) }).file;
  assertWeightsError(
    () => loadModelWeights(none),
    'missing tensor "stem.weight"',
    "40 more missing",
  );
});

Deno.test("a tensor of the wrong shape names expected and actual shapes", () => {
  // same element count, different layout: only the shape check can catch it
  const { file } = weightsFile({
    edit: (specs) => void (specs.find((s) => s.name === "fuse.weight")!.shape = [16, 8, 3, 3]),
  });
  const err = assertWeightsError(
    () => loadModelWeights(file),
    'tensor "fuse.weight" has shape [16, 8, 3, 3], expected [8, 16, 3, 3]',
  );
  assertEquals(err.tensor, "fuse.weight");
  // a rank mismatch: a linear layer stored as a 1x1 conv
  const conv = weightsFile({
    edit: (specs) =>
      void (specs.find((s) => s.name === "mlp.hidden0.weight")!.shape = [4, 8, 1, 1]),
  }).file;
  assertWeightsError(() => loadModelWeights(conv), "has shape [4, 8, 1, 1], expected [4, 8]");
});

Deno.test("an unexpected extra tensor is rejected", () => {
  const { file } = weightsFile({
    edit: (specs) =>
      specs.push({ name: "stage0.0.down.weight", shape: [8, 8, 1, 1], data: randomFloats(64) }),
  });
  const err = assertWeightsError(
    () => loadModelWeights(file),
    'unexpected tensor "stage0.0.down.weight"',
    "config",
  );
  assertEquals(err.tensor, "stage0.0.down.weight");
});

Deno.test("weights of another config are rejected (config and tensors disagree)", () => {
  const { file } = weightsFile({ config: { ...SMALL, latent: 12 } });
  assertWeightsError(
    () => loadModelWeights(file),
    'tensor "fuse.weight"',
    "expected [12, 16, 3, 3]",
  );
});

Deno.test("NaN and ±Inf values are rejected, naming the tensor and the first bad index", () => {
  for (const bad of [NaN, Infinity, -Infinity]) {
    const { file } = weightsFile({
      edit: (specs) => {
        const s = specs.find((s) => s.name === "stage1.0.conv1.weight")!;
        const data = s.data as Float32Array;
        data[1 * 72 + 2 * 9 + 1 * 3 + 2] = bad; // index [1, 2, 1, 2] of [12, 8, 3, 3]
        data[500] = NaN; // a later one is not the one reported
      },
    });
    const err = assertWeightsError(
      () => loadModelWeights(file),
      `tensor "stage1.0.conv1.weight" has a non-finite value ${bad} at index 95 ([1, 2, 1, 2])`,
    );
    assertEquals(err.tensor, "stage1.0.conv1.weight");
  }
});

Deno.test("F16 NaN and Inf are rejected too", () => {
  const { file } = weightsFile({
    edit: (specs) => {
      const s = specs.find((s) => s.name === "mlp.out.weight")!;
      s.raw = u16Bytes([0x3c00, 0x3c00, 0x7c00, 0x3c00]);
      s.dtype = "F16";
    },
  });
  assertWeightsError(
    () => loadModelWeights(file),
    'tensor "mlp.out.weight"',
    "Infinity at index 2 ([0, 2])",
  );
});

Deno.test("tensor() and shape() name an unknown tensor", () => {
  const w = loadModelWeights(weightsFile().file);
  assertEquals(assertWeightsError(() => w.tensor("stem"), 'no tensor named "stem"').tensor, "stem");
  assertWeightsError(() => w.shape("mlp.hidden1.weight"), 'no tensor named "mlp.hidden1.weight"');
  assert(!w.has("stem"));
});

// ---------------------------------------------------------------------------
// parseModelConfig

Deno.test("parseModelConfig accepts DEFAULT_CONFIG and returns a frozen copy", () => {
  const input = structuredClone(DEFAULT);
  const cfg: ModelConfig = parseModelConfig(input);
  assertEquals(cfg, DEFAULT);
  input.stages[0].width = 999; // the result does not alias the input
  assertEquals(cfg.stages[0].width, 32);
  assert(Object.isFrozen(cfg) && Object.isFrozen(cfg.mlp) && Object.isFrozen(cfg.proj));
});

Deno.test("parseModelConfig rejects values out of range, naming the key and the rule", () => {
  const cases: [(c: Record<string, unknown>) => void, string][] = [
    [
      (c) => (c.arch = "crm-r50"),
      'arch is the string "crm-r50"; this engine implements only "crm-lite"',
    ],
    [(c) => (c.in_channels = 3), "in_channels is number 3; must be 4"],
    [(c) => (c.pos_dims = 5), "pos_dims is number 5; must be 6"],
    [(c) => (c.stem = 0), "stem is number 0; must be a positive integer"],
    [(c) => (c.stem = -8), "stem is number -8; must be a positive integer"],
    [(c) => (c.stem = 8.5), "stem is number 8.5; must be a positive integer"],
    [(c) => (c.stem = "8"), 'stem is the string "8"; must be a positive integer'],
    [(c) => (c.latent = null), "latent is null; must be a positive integer"],
    [(c) => (c.base_long_side = 0), "base_long_side is number 0"],
    [(c) => (c.stages = []), "stages is an array; must be a non-empty array"],
    [(c) => (c.stages = { width: 8 }), "stages is an object; must be a non-empty array"],
    [(c) => ((c.stages as unknown[])[1] = 5), "stages[1] is number 5; must be an object"],
    [(c) => (stage(c, 2).stride = 3), "stages[2].stride is number 3; must be 1 or 2"],
    [(c) => (stage(c, 0).stride = 4), "stages[0].stride is number 4; must be 1 or 2"],
    [(c) => (stage(c, 2).dilation = 3), "stages[2].dilation is number 3; must be 1, 2 or 4"],
    [(c) => (stage(c, 1).dilation = 8), "stages[1].dilation is number 8; must be 1, 2 or 4"],
    [(c) => (stage(c, 1).width = 0), "stages[1].width is number 0; must be a positive integer"],
    [(c) => (stage(c, 0).blocks = 0), "stages[0].blocks is number 0; must be a positive integer"],
    [(c) => delete stage(c, 0).blocks, 'stages[0] is missing "blocks"'],
    [(c) => (stage(c, 0).groups = 2), 'stages[0] has unknown key "groups"'],
    [
      (c) => (c.proj = [4, 4]),
      "proj is an array of 2; must be an array of exactly 3 projection widths",
    ],
    [(c) => (c.proj = [4, 4, 8, 8]), "proj is an array of 4; must be an array of exactly 3"],
    [(c) => (c.proj = [4, 0, 8]), "proj[1] is number 0; must be a positive integer"],
    [
      (c) => (c.mlp = [8, 30]),
      "mlp[1] is 30; MLP widths must be multiples of 4 (the wasm MLP kernel vectorises by 4",
    ],
    [(c) => (c.mlp = [6]), "mlp[0] is 6; MLP widths must be multiples of 4"],
    [(c) => (c.mlp = []), "mlp is an array; must be a non-empty array of widths"],
    [(c) => (c.mlp = [8, -4]), "mlp[1] is number -4; must be a positive integer"],
    [(c) => (c.mean = [0.5, 0.5]), "mean is an array of 2; must be an array of exactly 3 numbers"],
    [(c) => (c.mean = [0.5, "0.5", 0.5]), 'mean[1] is the string "0.5"; must be a finite number'],
    [(c) => (c.std = [0.2, 0, 0.2]), "std[1] is 0; must be positive"],
    [(c) => (c.std = [0.2, 0.2, -0.1]), "std[2] is -0.1; must be positive"],
    [(c) => delete c.latent, 'config is missing "latent"'],
    [
      (c) => (c.activation = "gelu"),
      'config has unknown key "activation" (this engine does not know what it means)',
    ],
  ];
  for (const [patch, message] of cases) {
    assertWeightsError(() => parseModelConfig(smallWith(patch)), "model config: ", message);
  }
  for (const json of [null, [], "crm-lite", 3]) {
    assertWeightsError(
      () => parseModelConfig(json),
      "model config: config is",
      "must be an object",
    );
  }
});

Deno.test("an invalid config inside a weights file is reported as such", () => {
  const { file } = weightsFile({ config: smallWith((c) => (c.mlp = [8, 10])) });
  assertWeightsError(() => loadModelWeights(file), "model config: mlp[1] is 10", "multiples of 4");
});

function stage(c: Record<string, unknown>, i: number): Record<string, unknown> {
  return (c.stages as Record<string, unknown>[])[i];
}
