/**
 * The public API, without the command-line tool: what mod.ts exports and
 * what the bundle (scripts/bundle.ts) is built from, so that the two cannot
 * drift apart.
 *
 * @module
 */

export {
  createRefiner,
  type Progress,
  type RefineOptions,
  type Refiner,
  type RefinerOptions,
  type StageReport,
  TINY_OBJECT,
  type WeightsSource,
} from "./refiner.ts";
export { CrispmaskError, type ErrorCode } from "./errors.ts";
export type { Mask, RgbImage } from "./types.ts";
export type { StageStats } from "./pipeline/refine.ts";
export type { KernelBuild } from "./engine/wasm.ts";
export {
  type BoundaryCount,
  BoundaryRegions,
  type ImageStats,
  iou,
  type IouResult,
  MaskStats,
  mba,
  type MbaResult,
  type MetricOptions,
} from "./metrics/mod.ts";
