/**
 * The CRM-lite architecture config, as stored (JSON) in the weights'
 * `__metadata__.config`, and the tensor names and shapes it implies.
 *
 * The config mirrors `DEFAULT_CONFIG` in train/model.py key for key, so a
 * wider or narrower export loads without code changes. Validation is strict:
 * the engine has kernels only for the shapes described here, so an
 * out-of-range value or an unknown key (whose meaning the engine would
 * silently ignore) is an error, not a guess.
 *
 * @module
 */

import { describe, WeightsError } from "./safetensors.ts";

/** One residual stage of the encoder: `blocks` BasicBlocks of `width` channels. */
export interface StageConfig {
  /** Output channels of every block in the stage. */
  readonly width: number;
  /** Number of BasicBlocks (two 3x3 convs plus a skip each); at least 1. */
  readonly blocks: number;
  /** Stride of the stage's first block (the others use 1); 1 or 2. */
  readonly stride: 1 | 2;
  /** Dilation of every 3x3 conv in the stage (keeps stride 8 while widening the view). */
  readonly dilation: 1 | 2 | 4;
}

/** The architecture config of CRM-lite (keys as in train/model.py's DEFAULT_CONFIG). */
export interface ModelConfig {
  /** Architecture name; this engine implements only `"crm-lite"`. */
  readonly arch: "crm-lite";
  /** Encoder input channels: normalised RGB plus the mask mapped to [-1, 1]; always 4. */
  readonly in_channels: 4;
  /** Output channels of the 7x7 stride-2 stem conv (the stride-2 feature map). */
  readonly stem: number;
  /** Residual stages after the stem's 3x3 stride-2 max-pool, in order; at least one. */
  readonly stages: readonly StageConfig[];
  /**
   * Widths of the 1x1 projections of the stride-2 (stem), stride-4 (stage 0)
   * and last-stage features, concatenated and fused into the latent grid.
   */
  readonly proj: readonly [number, number, number];
  /** Channels of the latent grid F_latent (output of the 3x3 fuse conv, stride 2). */
  readonly latent: number;
  /**
   * Widths of the implicit function's hidden layers, first to last; the first
   * layer is factorised into a per-cell 1x1 conv (`mlp.feat`) and a per-pixel
   * positional term (`mlp.pos`). Each a multiple of 4 (the wasm MLP kernel
   * processes 4 channels per SIMD vector).
   */
  readonly mlp: readonly number[];
  /**
   * Positional inputs per query: 6 (rel_y, rel_x, cell_y, cell_x, coord_y,
   * coord_x, as CRM), or 7 when the implicit function also reads the prior,
   * the stage's mask upsampled to the target pixel.
   */
  readonly pos_dims: 6 | 7;
  /** Per-channel RGB mean subtracted before the encoder (image in [0, 1]). */
  readonly mean: readonly [number, number, number];
  /** Per-channel RGB standard deviation the centred image is divided by; positive. */
  readonly std: readonly [number, number, number];
  /** Long side (px) of the first inference stage, near the training scale. */
  readonly base_long_side: number;
}

const CONFIG_KEYS = [
  "arch",
  "in_channels",
  "stem",
  "stages",
  "proj",
  "latent",
  "mlp",
  "pos_dims",
  "mean",
  "std",
  "base_long_side",
] as const;
const STAGE_KEYS = ["width", "blocks", "stride", "dilation"] as const;

/**
 * Validates a parsed JSON config and returns it typed (a frozen copy).
 *
 * @param json the value of `JSON.parse(metadata.config)`
 * @throws {WeightsError} naming the offending key and the rule it breaks
 */
export function parseModelConfig(json: unknown): ModelConfig {
  const fail = (problem: string): never => {
    throw new WeightsError(`model config: ${problem}`);
  };
  const obj = record(json, "config", fail);
  checkKeys(obj, CONFIG_KEYS, "config", fail);

  if (obj.arch !== "crm-lite") {
    fail(`arch is ${describe(obj.arch)}; this engine implements only "crm-lite"`);
  }
  if (obj.in_channels !== 4) {
    fail(`in_channels is ${describe(obj.in_channels)}; must be 4 (RGB + mask)`);
  }
  if (obj.pos_dims !== 6 && obj.pos_dims !== 7) {
    fail(
      `pos_dims is ${describe(obj.pos_dims)}; must be 6 ` +
        "(rel_y, rel_x, cell_y, cell_x, coord_y, coord_x) or 7 (and the prior)",
    );
  }
  const stem = positiveInt(obj.stem, "stem", fail);
  const latent = positiveInt(obj.latent, "latent", fail);
  const baseLongSide = positiveInt(obj.base_long_side, "base_long_side", fail);

  if (!Array.isArray(obj.stages) || obj.stages.length === 0) {
    fail(`stages is ${describe(obj.stages)}; must be a non-empty array`);
  }
  const stages = (obj.stages as unknown[]).map((s, i) => parseStage(s, `stages[${i}]`, fail));

  const proj = array(obj.proj, "proj", 3, fail, "projection widths (stem, stage 0, last stage)")
    .map((v, i) => positiveInt(v, `proj[${i}]`, fail)) as [number, number, number];

  if (!Array.isArray(obj.mlp) || obj.mlp.length === 0) {
    fail(`mlp is ${describe(obj.mlp)}; must be a non-empty array of widths`);
  }
  const mlp = (obj.mlp as unknown[]).map((v, i) => {
    const w = positiveInt(v, `mlp[${i}]`, fail);
    if (w % 4 !== 0) {
      fail(
        `mlp[${i}] is ${w}; MLP widths must be multiples of 4 ` +
          "(the wasm MLP kernel vectorises by 4 channels)",
      );
    }
    return w;
  });

  const mean = array(obj.mean, "mean", 3, fail).map((v, i) => finite(v, `mean[${i}]`, fail)) as [
    number,
    number,
    number,
  ];
  const std = array(obj.std, "std", 3, fail).map((v, i) => {
    const s = finite(v, `std[${i}]`, fail);
    if (s <= 0) fail(`std[${i}] is ${s}; must be positive (the image is divided by it)`);
    return s;
  }) as [number, number, number];

  return deepFreeze({
    arch: "crm-lite",
    in_channels: 4,
    stem,
    stages,
    proj,
    latent,
    mlp,
    pos_dims: obj.pos_dims === 7 ? 7 : 6,
    mean,
    std,
    base_long_side: baseLongSide,
  });
}

function parseStage(json: unknown, path: string, fail: (p: string) => never): StageConfig {
  const obj = record(json, path, fail);
  checkKeys(obj, STAGE_KEYS, path, fail);
  const width = positiveInt(obj.width, `${path}.width`, fail);
  const blocks = positiveInt(obj.blocks, `${path}.blocks`, fail);
  if (obj.stride !== 1 && obj.stride !== 2) {
    fail(`${path}.stride is ${describe(obj.stride)}; must be 1 or 2`);
  }
  if (obj.dilation !== 1 && obj.dilation !== 2 && obj.dilation !== 4) {
    fail(`${path}.dilation is ${describe(obj.dilation)}; must be 1, 2 or 4`);
  }
  return {
    width,
    blocks,
    stride: obj.stride as 1 | 2,
    dilation: obj.dilation as 1 | 2 | 4,
  };
}

/**
 * Every tensor the engine needs and its shape, in the order of
 * train/model.py's `folded_tensors`. Convs are `[out, in, kh, kw]` with a
 * `[out]` bias (BatchNorm folded in); the MLP's linear layers are `[out, in]`.
 */
export function expectedTensorShapes(cfg: ModelConfig): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  const conv = (name: string, cin: number, cout: number, k: number) => {
    shapes.set(`${name}.weight`, [cout, cin, k, k]);
    shapes.set(`${name}.bias`, [cout]);
  };

  conv("stem", cfg.in_channels, cfg.stem, 7);
  let cin = cfg.stem;
  cfg.stages.forEach((st, i) => {
    for (let j = 0; j < st.blocks; j++) {
      const stride = j === 0 ? st.stride : 1;
      conv(`stage${i}.${j}.conv1`, cin, st.width, 3);
      conv(`stage${i}.${j}.conv2`, st.width, st.width, 3);
      // the skip path needs a 1x1 conv exactly when it must change size or width
      if (stride !== 1 || cin !== st.width) conv(`stage${i}.${j}.down`, cin, st.width, 1);
      cin = st.width;
    }
  });
  const [p2, p4, p8] = cfg.proj;
  conv("proj2", cfg.stem, p2, 1);
  conv("proj4", cfg.stages[0].width, p4, 1);
  conv("proj8", cfg.stages[cfg.stages.length - 1].width, p8, 1);
  conv("fuse", p2 + p4 + p8, cfg.latent, 3);

  const mlp = cfg.mlp;
  shapes.set("mlp.feat.weight", [mlp[0], cfg.latent, 1, 1]);
  shapes.set("mlp.feat.bias", [mlp[0]]);
  shapes.set("mlp.pos.weight", [mlp[0], cfg.pos_dims]);
  for (let i = 0; i + 1 < mlp.length; i++) {
    shapes.set(`mlp.hidden${i}.weight`, [mlp[i + 1], mlp[i]]);
    shapes.set(`mlp.hidden${i}.bias`, [mlp[i + 1]]);
  }
  shapes.set("mlp.out.weight", [1, mlp[mlp.length - 1]]);
  shapes.set("mlp.out.bias", [1]);
  return shapes;
}

// ---------------------------------------------------------------------------
// small validators; each names the key path in its message

function record(
  x: unknown,
  path: string,
  fail: (p: string) => never,
): Record<string, unknown> {
  if (typeof x !== "object" || x === null || Array.isArray(x)) {
    return fail(`${path} is ${describe(x)}; must be an object`);
  }
  return x as Record<string, unknown>;
}

function checkKeys(
  obj: Record<string, unknown>,
  keys: readonly string[],
  path: string,
  fail: (p: string) => never,
): void {
  for (const k of keys) {
    if (!Object.hasOwn(obj, k)) fail(`${path} is missing "${k}"`);
  }
  for (const k of Object.keys(obj)) {
    if (!keys.includes(k)) {
      fail(`${path} has unknown key "${k}" (this engine does not know what it means)`);
    }
  }
}

function positiveInt(x: unknown, path: string, fail: (p: string) => never): number {
  if (typeof x !== "number" || !Number.isSafeInteger(x) || x <= 0) {
    return fail(`${path} is ${describe(x)}; must be a positive integer`);
  }
  return x;
}

function finite(x: unknown, path: string, fail: (p: string) => never): number {
  if (typeof x !== "number" || !Number.isFinite(x)) {
    return fail(`${path} is ${describe(x)}; must be a finite number`);
  }
  return x;
}

function array(
  x: unknown,
  path: string,
  length: number,
  fail: (p: string) => never,
  what = "numbers",
): unknown[] {
  if (!Array.isArray(x) || x.length !== length) {
    const got = Array.isArray(x) ? `an array of ${x.length}` : describe(x);
    return fail(`${path} is ${got}; must be an array of exactly ${length} ${what}`);
  }
  return x;
}

function deepFreeze<T>(x: T): T {
  if (typeof x === "object" && x !== null) {
    for (const v of Object.values(x)) deepFreeze(v);
    Object.freeze(x);
  }
  return x;
}
