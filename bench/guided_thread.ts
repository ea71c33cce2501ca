/**
 * The guided filter baseline on a helper thread (bench/guided_worker.ts), so
 * that the quality benchmark runs it while crispmask's workers refine the
 * same coarse mask, instead of leaving both cores to one of them in turn.
 * Requests are answered in order.
 *
 * @module
 */

import type { Mask, RgbImage } from "../src/types.ts";

/** One guided refinement: the mask and the seconds it took on the helper thread. */
export interface GuidedResult {
  pred: Mask;
  seconds: number;
}

type Reply = { mask?: Mask; seconds?: number; error?: string };

/** A helper thread holding one image's guided filter at a time. */
export class GuidedThread {
  #worker = new Worker(new URL("./guided_worker.ts", import.meta.url), { type: "module" });
  #waiting: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  /** seconds the current image's guide statistics took */
  #prepared: Promise<number> | null = null;

  constructor() {
    this.#worker.onmessage = (e: MessageEvent<Reply>) => {
      const next = this.#waiting.shift();
      if (e.data.error !== undefined) next?.reject(new Error(e.data.error));
      else next?.resolve(e.data);
    };
    this.#worker.onerror = (e) => {
      e.preventDefault();
      for (const w of this.#waiting.splice(0)) w.reject(new Error(`guided worker: ${e.message}`));
    };
  }

  #send(message: unknown): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      this.#worker.postMessage(message);
    });
  }

  /** Makes `image` the current one (its guide statistics are computed on the thread). */
  setImage(image: RgbImage): void {
    this.#prepared = this.#send({ image }).then((r) => r.seconds!);
    this.#prepared.catch(() => {}); // reported by the refine calls that depend on it
  }

  /**
   * Refines a coarse mask of the current image. `share` of the image's
   * statistics time is added to the seconds (each coarse kind pays its part).
   */
  async refine(coarse: Mask, share: number): Promise<GuidedResult> {
    if (!this.#prepared) throw new Error("setImage first");
    const prepared = this.#prepared;
    const reply = await this.#send({ coarse });
    return { pred: reply.mask!, seconds: reply.seconds! + share * await prepared };
  }

  /** Ends the thread; pending requests never settle. */
  close(): void {
    this.#worker.terminate();
  }
}
