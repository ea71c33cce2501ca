/**
 * The whole-image reference pipeline: train/model.py's `refine` on one
 * kernel instance, stage by stage, the simplest way. Each stage resizes the
 * full float image to its size, encodes all of it with the previous stage's
 * probability as the mask, and queries the implicit function at the next
 * stage's size (the last at full size), in row chunks.
 *
 * It holds full-size float copies and runs on one thread: the library uses
 * the scheduler (src/pipeline/refine.ts: strips, tiles, workers, bounded
 * memory) instead. This stays as the oracle the scheduler is tested
 * against bit for bit (tests/pipeline_test.ts), itself checked against
 * PyTorch (tests/parity_test.ts).
 *
 * @module
 */

import { resize } from "../engine/kernels/resize.ts";
import { logitToProb, sigmoidToU8 } from "../engine/kernels/cam.ts";
import type { F32Buffer } from "../engine/arena.ts";
import { encode, type Network, query } from "../model/network.ts";
import { encoderInputFromUnit, maskToUnit, rgbToUnit } from "../model/layout.ts";
import type { Mask, RgbImage } from "../types.ts";
import { querySizes, type StageSize, stageSizes } from "./schedule.ts";
import type { Progress } from "./refine.ts";

/** Options of `refineDense`. */
export interface DenseOptions {
  /** called after each chunk of target rows (`done`/`total` in target pixels) */
  onProgress?: (p: Progress) => void;
  /** checked between chunks; aborts with its reason */
  signal?: AbortSignal;
  /** target rows per implicit-function call (default 64) */
  chunkRows?: number;
  /** long side of the first stage (default: the model's `base_long_side`) */
  baseLongSide?: number;
}

/**
 * Refines `coarse` (any size with the image's aspect ratio, soft or binary)
 * into a soft 8-bit mask at the image's full size.
 */
export function refineDense(
  net: Network,
  image: RgbImage,
  coarse: Mask,
  opts: DenseOptions = {},
): Mask {
  const k = net.kernels;
  return runStages(net, image, coarse, opts, (logits, n) => {
    const bytes = net.arena.bytes(n);
    sigmoidToU8(k, logits.ptr, bytes, n);
    return {
      width: image.width,
      height: image.height,
      data: new Uint8Array(k.memory.buffer, bytes, n).slice(),
    };
  });
}

/** Full-size logits of the dense refinement (for parity tests and evaluation). */
export function refineDenseLogits(
  net: Network,
  image: RgbImage,
  coarse: Mask,
  opts: DenseOptions = {},
): Float32Array {
  return runStages(net, image, coarse, opts, (logits) => net.arena.view(logits).slice());
}

function runStages<T>(
  net: Network,
  image: RgbImage,
  coarse: Mask,
  opts: DenseOptions,
  finish: (logits: F32Buffer, n: number) => T,
): T {
  const { arena, kernels: k, config } = net;
  const H = image.height, W = image.width;
  const stages = stageSizes(H, W, opts.baseLongSide ?? config.base_long_side);
  const queries = querySizes(stages);
  const total = queries.reduce((s, [h, w]) => s + h * w, 0);
  const chunk = opts.chunkRows ?? 64;
  const top = arena.mark();
  try {
    const rgb = arena.f32(H * W * 3);
    rgbToUnit(image.data, H * W, image.channels, arena.view(rgb));
    const coarseBuf = arena.f32(coarse.width * coarse.height);
    maskToUnit(coarse.data, arena.view(coarseBuf));

    let mask = resized(net, coarseBuf, [coarse.height, coarse.width], stages[0], 1);
    let done = 0;
    for (let s = 0; s < stages.length; s++) {
      const [th, tw] = queries[s];
      const logits = arena.f32(th * tw);
      const mark = arena.mark();
      const proj = encodeStage(net, rgb, [H, W], mask, stages[s]);
      // the prior: this stage's mask on the grid it is queried at
      const prior = config.pos_dims === 7
        ? resized(net, mask, stages[s], queries[s], 1)
        : undefined;
      for (let y0 = 0; y0 < th; y0 += chunk) {
        opts.signal?.throwIfAborted();
        const rows = Math.min(chunk, th - y0);
        const out = { ptr: logits.ptr + 4 * y0 * tw, length: rows * tw };
        const window = { gridH: th, gridW: tw, y0, x0: 0, h: rows, w: tw };
        query(net, proj, window, out, prior && { ptr: prior.ptr + 4 * y0 * tw });
        done += rows * tw;
        opts.onProgress?.({ stage: s, stages: stages.length, done, total });
      }
      arena.release(mark);
      if (s < stages.length - 1) {
        logitToProb(k, logits.ptr, logits.ptr, th * tw);
        mask = logits;
      } else {
        return finish(logits, th * tw);
      }
    }
    throw new Error("unreachable: no stages");
  } finally {
    arena.release(top);
  }
}

/** Encodes one stage: image and mask at the stage's size, normalised. */
function encodeStage(
  net: Network,
  rgb: F32Buffer,
  full: StageSize,
  mask: F32Buffer,
  size: StageSize,
) {
  const { arena } = net;
  const [h, w] = size;
  const img = resized(net, rgb, full, size, 3);
  const input = { buf: arena.f32(h * w * 4), h, w, c: 4 };
  encoderInputFromUnit(arena.view(img), arena.view(mask), h * w, net.config, arena.view(input.buf));
  return encode(net, input);
}

/** `src` (from size, `channels`) resized to `to`, in a new arena buffer (or `src` itself). */
function resized(
  net: Network,
  src: F32Buffer,
  from: StageSize,
  to: StageSize,
  channels: number,
): F32Buffer {
  if (from[0] === to[0] && from[1] === to[1]) return src;
  const dst = net.arena.f32(to[0] * to[1] * channels);
  resize(
    net.kernels,
    { ptr: src.ptr, h: from[0], w: from[1], channels },
    { ptr: dst.ptr, h: to[0], w: to[1], channels },
  );
  return dst;
}
