/**
 * Loads a CRM-lite weights file (as written by train/export.py) and checks it
 * against its own architecture config before the engine sees any of it.
 *
 * The config travels inside the file (`__metadata__.config`, a JSON string),
 * so the tensors are checked against the architecture they claim to be: every
 * expected tensor present with its exact shape, nothing extra (an extra
 * tensor means config and weights disagree, e.g. a `down` conv the config
 * does not produce), and every value finite.
 *
 * @module
 */

import { expectedTensorShapes, type ModelConfig, parseModelConfig } from "./model_config.ts";
import { describe, parseSafetensors, type SafetensorsFile, WeightsError } from "./safetensors.ts";

/** The `__metadata__.format` train/export.py writes on model weights. */
export const WEIGHTS_FORMAT = "crispmask-crm";

/** A validated model: its architecture, provenance and float32 tensors. */
export interface ModelWeights {
  /** The architecture the tensors were checked against. */
  readonly config: ModelConfig;
  /**
   * Where the weights came from (`__metadata__.provenance`: training data,
   * steps, metrics, commit...), as exported; `{}` when the file records none.
   */
  readonly provenance: Readonly<Record<string, unknown>>;
  /** Every tensor name, in the order of train/model.py's `folded_tensors`. */
  readonly names: readonly string[];
  /** True when `name` is one of {@link ModelWeights.names}. */
  has(name: string): boolean;
  /**
   * A tensor's values, row-major float32 (F16 files are widened exactly).
   * The array is shared, not copied: callers must not modify it.
   * @throws {WeightsError} for a name the model does not have
   */
  tensor(name: string): Float32Array;
  /**
   * A tensor's shape, outermost first: `[out, in, kh, kw]` for conv weights,
   * `[out, in]` for MLP weights, `[out]` for biases.
   * @throws {WeightsError} for a name the model does not have
   */
  shape(name: string): readonly number[];
}

/**
 * Parses and validates a weights file.
 *
 * @param bytes the whole file
 * @param source a name for the file in error messages (e.g. its path)
 * @throws {WeightsError} naming the problem (and the tensor, where one is at fault)
 */
export function loadModelWeights(bytes: Uint8Array, source = "weights file"): ModelWeights {
  const fail = (problem: string, tensor?: string): never => {
    throw new WeightsError(`${source}: ${problem}`, tensor);
  };
  const file = parseSafetensors(bytes, source);

  // the golden fixtures are safetensors too; refuse them by their format tag
  const format = file.metadata.get("format");
  if (format !== undefined && format !== WEIGHTS_FORMAT) {
    fail(`__metadata__.format is "${format}", not "${WEIGHTS_FORMAT}": not CRM weights`);
  }
  const config = readConfig(file, fail);
  const provenance = readProvenance(file, fail);
  const expected = expectedTensorShapes(config);
  checkNames(file, expected, fail);

  const tensors = new Map<string, { data: Float32Array; shape: readonly number[] }>();
  for (const [name, shape] of expected) {
    const info = file.tensors.get(name)!;
    if (!sameShape(info.shape, shape)) {
      fail(
        `tensor "${name}" has shape [${info.shape.join(", ")}], ` +
          `expected [${shape.join(", ")}] from the config`,
        name,
      );
    }
    const { data } = file.getTensor(name);
    checkFinite(name, data, shape, fail);
    tensors.set(name, { data, shape: Object.freeze(shape) });
  }

  const get = (name: string) => {
    const t = tensors.get(name);
    if (t === undefined) return fail(`the model has no tensor named "${name}"`, name);
    return t;
  };
  return Object.freeze({
    config,
    provenance,
    names: Object.freeze([...expected.keys()]),
    has: (name: string) => tensors.has(name),
    tensor: (name: string) => get(name).data,
    shape: (name: string) => get(name).shape,
  });
}

type Fail = (problem: string, tensor?: string) => never;

function readConfig(file: SafetensorsFile, fail: Fail): ModelConfig {
  const text = file.metadata.get("config");
  if (text === undefined) {
    return fail("__metadata__.config is missing; the file does not say which architecture it is");
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(`__metadata__.config is not valid JSON (${(e as Error).message})`);
  }
  return parseModelConfig(json);
}

function readProvenance(file: SafetensorsFile, fail: Fail): Readonly<Record<string, unknown>> {
  const text = file.metadata.get("provenance");
  if (text === undefined) return Object.freeze({});
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(`__metadata__.provenance is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return fail(`__metadata__.provenance is ${describe(json)}, not a JSON object`);
  }
  return Object.freeze(json as Record<string, unknown>);
}

/** Every expected name present, no other name: config and tensors describe one model. */
function checkNames(file: SafetensorsFile, expected: Map<string, number[]>, fail: Fail): void {
  const missing = [...expected.keys()].filter((n) => !file.has(n));
  if (missing.length > 0) {
    const first = missing[0];
    const more = missing.length > 1 ? ` (and ${missing.length - 1} more missing)` : "";
    fail(
      `missing tensor "${first}" (expected shape [${expected.get(first)!.join(", ")}])${more}`,
      first,
    );
  }
  for (const name of file.tensors.keys()) {
    if (!expected.has(name)) {
      fail(
        `unexpected tensor "${name}": the config's architecture has no such tensor ` +
          "(do the config and the weights belong together?)",
        name,
      );
    }
  }
}

/** NaN or Inf in a weight would spread through every pixel; report the first one. */
function checkFinite(
  name: string,
  data: Float32Array,
  shape: readonly number[],
  fail: Fail,
): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    // v - v is 0 for finite values and NaN for NaN and ±Inf: one test for both
    if (v - v !== 0) {
      fail(
        `tensor "${name}" has a non-finite value ${v} at index ${i} ` +
          `([${unravel(i, shape).join(", ")}])`,
        name,
      );
    }
  }
}

/** The multi-dimensional index of flat row-major index `i`. */
function unravel(i: number, shape: readonly number[]): number[] {
  const index = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    index[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return index;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
