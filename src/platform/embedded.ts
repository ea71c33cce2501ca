/**
 * Assets that a bundle carries inside itself. From source, nothing is
 * embedded: the kernels are read from build/wasm/ and the worker starts from
 * src/workers/worker.ts. scripts/bundle.ts replaces this module with one
 * holding the compiled kernels (base64) and the worker's bundled source, so
 * a single file runs where there is no file system to read them from.
 *
 * @module
 */

import type { KernelBuild } from "../engine/wasm.ts";

/** What a bundle embeds; every field is absent when running from source. */
export interface EmbeddedAssets {
  /** the compiled kernel modules, base64 */
  kernels?: Partial<Record<KernelBuild, string>>;
  /** the worker entry bundled into one ES module's source text */
  worker?: string;
}

/** The assets of this build (none: running from source). */
export const embedded: EmbeddedAssets = {};
