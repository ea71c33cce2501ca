/**
 * The library facade: a refiner owns a kernel instance with the packed
 * weights and refines (image, coarse mask) pairs.
 *
 * @module
 */

import { compileKernels, instantiateKernels, type KernelBuild } from "./engine/wasm.ts";
import { Arena } from "./engine/arena.ts";
import { loadNetwork, type Network } from "./model/network.ts";
import { loadModelWeights, type ModelWeights } from "./weights/model_weights.ts";
import { WeightsError } from "./weights/safetensors.ts";
import { type Progress, refineDense } from "./pipeline/refine_dense.ts";
import { CrispmaskError } from "./errors.ts";
import { binarise, checkAspect, foregroundBox, resizeNearest } from "./mask_ops.ts";
import { checkImage, checkMask, type Mask, type RgbImage } from "./types.ts";

export type { Progress };

/** Where the weights come from: bytes, or a URL / path of a safetensors file. */
export type WeightsSource = Uint8Array | URL | string;

/** Options of `createRefiner`. */
export interface RefinerOptions {
  /** the weights (default: the bundled weights/crm-lite.safetensors) */
  weights?: WeightsSource;
  /** force a kernel build (default: relaxed SIMD where the runtime validates it) */
  build?: KernelBuild;
  /** largest image accepted, in pixels (default 100 megapixels) */
  maxPixels?: number;
}

/** Options of one `refine` call. */
export interface RefineOptions {
  /** cancels the call; it rejects with a CrispmaskError("aborted") */
  signal?: AbortSignal;
  /** progress, as work units done of total */
  onProgress?: (p: Progress) => void;
  /** "soft" 8-bit probabilities (default) or "binary" 0/255 */
  output?: "soft" | "binary";
}

/** Refines coarse masks; create with `createRefiner`, end with `dispose`. */
export interface Refiner {
  /** the kernel build in use */
  readonly build: KernelBuild;
  /** the weights' provenance (training data, steps, metrics) */
  readonly provenance: Readonly<Record<string, unknown>>;
  /**
   * Refines `coarse` (any size with the image's aspect ratio; binary or soft
   * 8-bit) into a mask at the image's full size.
   */
  refine(image: RgbImage, coarse: Mask, options?: RefineOptions): Promise<Mask>;
  /** Frees the refiner; later calls reject. */
  dispose(): void;
}

/** Objects smaller than this (px, both sides) pass through unchanged, as in CRM's evaluation. */
export const TINY_OBJECT = 32;

const DEFAULT_MAX_PIXELS = 100_000_000;

/** Creates a refiner with the bundled weights (or the given ones). */
export async function createRefiner(options: RefinerOptions = {}): Promise<Refiner> {
  const weights = await readWeights(options.weights);
  const km = await compileKernels(options.build);
  const k = instantiateKernels(km);
  const arena = new Arena(k.memory, k.exports.heapBase());
  const net = loadNetwork(k, arena, weights);
  return new InlineRefiner(net, weights, options.maxPixels ?? DEFAULT_MAX_PIXELS);
}

class InlineRefiner implements Refiner {
  #net: Network | null;
  #maxPixels: number;
  readonly build: KernelBuild;
  readonly provenance: Readonly<Record<string, unknown>>;

  constructor(net: Network, weights: ModelWeights, maxPixels: number) {
    this.#net = net;
    this.#maxPixels = maxPixels;
    this.build = net.kernels.build;
    this.provenance = weights.provenance;
  }

  refine(image: RgbImage, coarse: Mask, options: RefineOptions = {}): Promise<Mask> {
    try {
      return Promise.resolve(this.#refine(image, coarse, options));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #refine(image: RgbImage, coarse: Mask, options: RefineOptions): Mask {
    const net = this.#net;
    if (!net) throw new CrispmaskError("disposed", "this refiner was disposed");
    validateInputs(image, coarse, this.#maxPixels);
    const out = passThrough(image, coarse) ?? runAbortable(() => refineDense(net, image, coarse, options));
    return options.output === "binary" ? binarise(out) : out;
  }

  dispose(): void {
    this.#net = null;
  }
}

function validateInputs(image: RgbImage, coarse: Mask, maxPixels: number): void {
  try {
    checkImage(image, "image");
    checkMask(coarse, "coarse mask");
  } catch (err) {
    throw new CrispmaskError("bad-input", (err as Error).message);
  }
  const pixels = image.width * image.height;
  if (pixels > maxPixels) {
    throw new CrispmaskError(
      "too-large",
      `the image has ${(pixels / 1e6).toFixed(1)} MP, over the limit of ${(maxPixels / 1e6).toFixed(1)} MP (option maxPixels)`,
    );
  }
  checkAspect(image.width, image.height, coarse.width, coarse.height);
}

/**
 * Masks that need no network: empty or full ones, and tiny objects, which
 * CRM's evaluation leaves unchanged. Returns null when refinement must run.
 */
function passThrough(image: RgbImage, coarse: Mask): Mask | null {
  const box = foregroundBox(coarse);
  const full = () => resizeNearest(coarse, image.width, image.height);
  if (!box || box.count === coarse.width * coarse.height) return full();
  const sx = image.width / coarse.width, sy = image.height / coarse.height;
  if ((box.x1 - box.x0) * sx < TINY_OBJECT && (box.y1 - box.y0) * sy < TINY_OBJECT) return full();
  return null;
}

function runAbortable(f: () => Mask): Mask {
  try {
    return f();
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") {
      throw new CrispmaskError("aborted", "refinement aborted", { cause: err });
    }
    if (err instanceof Error && err.name === "AbortError") {
      throw new CrispmaskError("aborted", "refinement aborted", { cause: err });
    }
    throw err;
  }
}

async function readWeights(source: WeightsSource | undefined): Promise<ModelWeights> {
  const url = source === undefined ? new URL("../weights/crm-lite.safetensors", import.meta.url) : source;
  let bytes: Uint8Array;
  const name = url instanceof Uint8Array ? "weights bytes" : String(url);
  try {
    bytes = url instanceof Uint8Array ? url : await readBytes(url);
  } catch (err) {
    throw new CrispmaskError("weights", `cannot read the weights ${name}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  try {
    return loadModelWeights(bytes, name);
  } catch (err) {
    if (err instanceof WeightsError) throw new CrispmaskError("weights", err.message, { cause: err });
    throw err;
  }
}

async function readBytes(src: URL | string): Promise<Uint8Array> {
  const isUrl = src instanceof URL || /^(file|https?|blob|data):/.test(src);
  if (!isUrl && typeof Deno !== "undefined") return await Deno.readFile(src);
  const url = src instanceof URL ? src : new URL(src);
  if (url.protocol === "file:" && typeof Deno !== "undefined") return await Deno.readFile(url);
  const res = await fetch(url);
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}
