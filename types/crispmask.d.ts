/**
 * Types of the bundle (dist/crispmask.js): the public API of mod.ts.
 *
 * Hand-maintained, because esbuild emits no declarations: tests/bundle_test.ts
 * checks at type level that every declaration here and mod.ts's agree both
 * ways, so a change to the API that is not made here fails the tests.
 */

/** An 8-bit RGB or RGBA image, row-major, interleaved (`data.length === width * height * channels`). */
export interface RgbImage {
  /** width in pixels */
  width: number;
  /** height in pixels */
  height: number;
  /** 3 (RGB) or 4 (RGBA; alpha is ignored) */
  channels: 3 | 4;
  /** interleaved samples, 0..255 */
  data: Uint8Array | Uint8ClampedArray;
}

/**
 * An 8-bit single-channel mask, row-major (`data.length === width * height`):
 * 0 is background, 255 foreground; values between are soft. Foreground where >= 128.
 */
export interface Mask {
  /** width in pixels */
  width: number;
  /** height in pixels */
  height: number;
  /** one byte per pixel */
  data: Uint8Array;
}

/** Which compiled build of the kernels runs. */
export type KernelBuild = "relaxed-simd" | "simd";

/** Where the weights come from: bytes, or a URL / path of a safetensors file. */
export type WeightsSource = Uint8Array | URL | string;

/** Progress of a `refine` call: `done` of `total` target pixels over all stages. */
export interface Progress {
  /** the stage running, from 0 */
  stage: number;
  /** stages in all */
  stages: number;
  /** target pixels finished, over all stages */
  done: number;
  /** target pixels of all stages */
  total: number;
}

/** Options of `createRefiner`. */
export interface RefinerOptions {
  /** the weights (default: weights/crm-lite.safetensors beside the package's dist/) */
  weights?: WeightsSource;
  /** force a kernel build (default: relaxed SIMD where the runtime validates it) */
  build?: KernelBuild;
  /** largest image accepted, in pixels (default 100 megapixels) */
  maxPixels?: number;
  /** worker threads (default: one per core where `Worker` exists; 0: the calling thread) */
  workers?: number;
  /** bytes the refiner's WebAssembly memories may grow to, all together */
  memoryBudget?: number;
}

/** Options of one `refine` call. */
export interface RefineOptions {
  /** cancels the call; it rejects with a CrispmaskError("aborted") */
  signal?: AbortSignal;
  /** progress, as work units done of total */
  onProgress?: (p: Progress) => void;
  /** "soft" 8-bit probabilities (default) or "binary" 0/255 */
  output?: "soft" | "binary";
  /** run the network on every pixel of every stage (default false: boundary tiles only) */
  dense?: boolean;
  /**
   * also refine the mirrored photo and average the two predictions (default
   * false): about twice the time; `onProgress` counts both passes and
   * `onStage` reports every stage twice, the mirrored pass second
   */
  flip?: boolean;
  /** called after each stage with its figures (size, time, pixels evaluated) */
  onStage?: (stage: StageReport) => void;
  /**
   * how far the output leans toward the coarse mask, in logits (default 0.5;
   * 0 turns it off): with a binary mask a pixel leaves its coarse label only
   * where the network's probability passes sigmoid(coarseTrust)
   */
  coarseTrust?: number;
}

/** What one stage did, as the scheduler fills it (`StageReport` is its read-only form). */
export interface StageStats {
  /** encoder size, [height, width] */
  size: [number, number];
  /** query size, [height, width] */
  target: [number, number];
  /** whether only boundary tiles ran */
  sparse: boolean;
  /** work units run */
  units: number;
  /** target pixels computed by the network */
  queried: number;
  /** fraction of target tiles that ran (1 for dense stages) */
  activeTiles: number;
  /** encoder multiply-adds planned */
  macs: number;
  /** largest linear memory of an instance that ran a unit, bytes */
  memoryBytes: number;
  /** wall milliseconds of the stage */
  ms: number;
}

/** What one stage did: `RefineOptions.onStage` receives one per stage, in order. */
export type StageReport = Readonly<StageStats>;

/** Refines coarse masks; create with `createRefiner`, end with `dispose`. */
export interface Refiner {
  /** the kernel build in use */
  readonly build: KernelBuild;
  /** worker threads it runs on (0: the calling thread) */
  readonly workers: number;
  /** the weights' provenance (training data, steps, metrics) */
  readonly provenance: Readonly<Record<string, unknown>>;
  /** Refines `coarse` (any size with the image's aspect ratio) into a mask at the image's size. */
  refine(image: RgbImage, coarse: Mask, options?: RefineOptions): Promise<Mask>;
  /** Frees the refiner; later calls reject. */
  dispose(): void;
}

/** Objects smaller than this (px, both sides) pass through unchanged, as in CRM's evaluation. */
export declare const TINY_OBJECT: 32;

/** Creates a refiner with the default weights (or the given ones). */
export declare function createRefiner(options?: RefinerOptions): Promise<Refiner>;

/** What went wrong, for programs that branch on it. */
export type ErrorCode =
  | "bad-input"
  | "aspect-mismatch"
  | "too-large"
  | "weights"
  | "aborted"
  | "worker"
  | "disposed";

/** An error with a machine-readable `code`. */
export declare class CrispmaskError extends Error {
  /** what went wrong */
  readonly code: ErrorCode;
  /** An error with `code`; `options.cause` keeps the underlying error. */
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown });
}

/** Options shared by the metrics. */
export interface MetricOptions {
  /** ground-truth value whose pixels count for neither metric (GrabCut: 128) */
  ignoreValue?: number;
  /**
   * the ground truth's boundary regions, made once with `new
   * BoundaryRegions(gt, { ignoreValue })` to score several predictions
   * against one ground truth faster (mBA only; same results)
   */
  regions?: BoundaryRegions;
}

/**
 * The boundary regions of one ground truth at mBA's 5 radii, for scoring
 * several predictions against it (pass as `MetricOptions.regions`). They
 * hold a reference to the ground truth's pixels, which must not change.
 */
export declare class BoundaryRegions {
  constructor(gt: Mask, opts?: MetricOptions);
  /** ground-truth width in pixels */
  readonly width: number;
  /** ground-truth height in pixels */
  readonly height: number;
  /** the ignore value the regions were made with */
  readonly ignoreValue: number | undefined;
  /** the 5 radii */
  readonly radii: number[];
  /** Whether these are the regions of `gt` (the same pixels) with `ignoreValue`. */
  isFor(gt: Mask, ignoreValue: number | undefined): boolean;
  /** Region size and agreement of `pred` (binarised at 128) for each radius. */
  counts(pred: Mask): BoundaryCount[];
}

/** IoU of one image. */
export interface IouResult {
  /** pixels foreground in both (ignored pixels excluded) */
  intersection: number;
  /** pixels foreground in either (ignored pixels excluded) */
  union: number;
  /** ground-truth foreground the prediction left out */
  missed: number;
  /** prediction foreground outside the ground truth; missed + extra = union - intersection */
  extra: number;
  /** intersection / union, or 1 when the union is empty */
  iou: number;
}

/** Boundary counts for one radius. */
export interface BoundaryCount {
  /** disk radius in pixels (kernel size 2r+1) */
  radius: number;
  /** pixels in the boundary region (ignored pixels excluded) */
  region: number;
  /** region pixels where prediction and ground truth agree */
  correct: number;
}

/** mBA of one image. */
export interface MbaResult {
  /** mean of `accuracies`, in [0, 1] */
  mba: number;
  /** the 5 radii */
  radii: number[];
  /** correct / region per radius; 1 for an empty region */
  accuracies: number[];
  /** raw counts per radius */
  counts: BoundaryCount[];
}

/** IoU of a predicted mask against the ground truth (foreground where >= 128). */
export declare function iou(pred: Mask, gt: Mask, opts?: MetricOptions): IouResult;

/** Mean boundary accuracy (CascadePSP's mBA) of a prediction against the ground truth. */
export declare function mba(pred: Mask, gt: Mask, opts?: MetricOptions): MbaResult;

/** One image's figures, as recorded by `MaskStats.add`. */
export interface ImageStats {
  /** caller's label for the image (file name), or "" */
  name: string;
  /** IoU counts and ratio */
  iou: IouResult;
  /** boundary accuracy per radius and their mean */
  mba: MbaResult;
}

/** Accumulates images into dataset IoU, mean IoU and mean mBA. */
export declare class MaskStats {
  /** per-image figures in the order added */
  readonly images: ImageStats[];
  /** summed intersections over all images */
  intersection: number;
  /** summed unions over all images */
  union: number;
  /** Scores one prediction against its ground truth and records it. */
  add(pred: Mask, gt: Mask, opts?: MetricOptions, name?: string): ImageStats;
  /** number of images added */
  get count(): number;
  /** summed intersections / summed unions; 1 when every union was empty */
  get datasetIou(): number;
  /** mean of per-image IoU; NaN before any image */
  get meanIou(): number;
  /** mean of per-image mBA in [0, 1]; NaN before any image */
  get meanMba(): number;
}
