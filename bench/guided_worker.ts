/**
 * Worker entry of bench/guided_thread.ts: runs the guided filter baseline
 * off the benchmark's main thread. Holds one image's GuidedFilter (its
 * guide statistics) at a time.
 *
 * Messages in: `{ image }` (a new image: its statistics are made) or
 * `{ coarse }` (refine a mask of the current image). Out: `{ mask, seconds }`
 * or `{ error }`; `{ image }` answers `{ seconds }`.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { GuidedFilter } from "../src/baselines/guided_filter.ts";
import type { Mask, RgbImage } from "../src/types.ts";

let filter: GuidedFilter | null = null;

self.onmessage = (e: MessageEvent<{ image?: RgbImage; coarse?: Mask }>) => {
  const t = performance.now();
  try {
    if (e.data.image) {
      filter = null; // the previous image's statistics can go before the next are made
      filter = new GuidedFilter(e.data.image);
      self.postMessage({ seconds: (performance.now() - t) / 1000 });
      return;
    }
    if (!filter) throw new Error("no image was sent before the coarse mask");
    const mask = filter.refine(e.data.coarse!);
    self.postMessage({ mask, seconds: (performance.now() - t) / 1000 }, [mask.data.buffer]);
  } catch (err) {
    self.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
};
