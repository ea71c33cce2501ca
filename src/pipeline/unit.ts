/**
 * One unit of work, as posted to a worker (or run inline): the encoder over
 * a window of one stage, streamed in steps of target rows, and the implicit
 * function on the unit's query rectangles. Jobs carry only plain data (typed
 * arrays, numbers), so they cross `postMessage` as they are; the pixels they
 * carry are crops of the 8-bit image and of the previous stage's
 * probability, never a full image.
 *
 * @module
 */

import { implicitQuery, logitToProb, sigmoidToU8, supportCells } from "../engine/kernels/cam.ts";
import {
  areaSourceRange,
  normalizeEncoderInput,
  resizeAreaU8Window,
  unitTable,
} from "../engine/kernels/window.ts";
import { tensorSizes } from "../model/graph.ts";
import type { EncoderGraph } from "../model/graph.ts";
import type { Network } from "../model/network.ts";
import { planStream, type Span, type StreamPlan, StreamRunner } from "./encoder_window.ts";
import type { Rect, StageGeometry } from "./plan.ts";
import { upsample } from "./planes.ts";

/** What a unit returns per pixel of its window. */
export type UnitOutput = "prob" | "u8" | "logits";

/**
 * A crop of the image: rows/columns `span` of the full-size 8-bit image
 * (resized by the unit), or of the image already resized to the stage's
 * size (float RGB in [0, 1], for stages much smaller than the image).
 */
export type ImageCrop =
  | {
    kind: "u8";
    data: Uint8Array;
    /** bytes per pixel (3: RGB, 4: RGBA, alpha unused) */
    pixelBytes: 3 | 4;
    /** the full image's size [h, w] */
    full: [number, number];
    span: Span;
  }
  | { kind: "f32"; data: Float32Array; span: Span };

/** A crop of the stage's mask (the previous probability on the encoder grid). */
export interface MaskCrop {
  data: Float32Array;
  span: Span;
}

/** A unit of work. */
export interface UnitJob {
  geo: StageGeometry;
  window: Rect;
  queries: Rect[];
  output: UnitOutput;
  image: ImageCrop;
  mask: MaskCrop;
}

/**
 * A unit's result: the values of its query rectangles, one after the other
 * in the job's order, each row-major (`queryOffsets` says where each starts).
 */
export interface UnitResult {
  data: Float32Array | Uint8Array;
  /** bytes of linear memory of the instance that ran it (for memory reports) */
  memoryBytes: number;
}

/** What a unit needs besides its job: the network and two small constant tables in its memory. */
export interface UnitContext {
  net: Network;
  /** 256 floats x / 255 */
  lutPtr: number;
  /** mean[3], std[3] */
  normPtr: number;
}

/**
 * Proj rows per streaming step (~16 target rows at the last stage). A unit's
 * memory grows with it (the stride-2 tensors hold a step plus a halo); 16
 * took 30% more memory per worker at 6K and ran no faster.
 */
export const STEP_PROJ_ROWS = 8;

/** Prepares a network's instance to run units (allocates the constant tables once). */
export function unitContext(net: Network): UnitContext {
  const lut = net.arena.upload(unitTable());
  const norm = net.arena.upload(Float32Array.from([...net.config.mean, ...net.config.std]));
  return { net, lutPtr: lut.ptr, normPtr: norm.ptr };
}

/** A query rectangle clipped to a step's rows, with the index of the rectangle it comes from. */
interface StepQuery extends Rect {
  parent: number;
}

/** A unit's plan: the streamed encoder and, per step, the query rectangles clipped to its rows. */
interface UnitSteps {
  plan: StreamPlan;
  queries: StepQuery[][];
}

/** Where each query rectangle's values start in a unit's result. */
export function queryOffsets(queries: readonly Rect[]): number[] {
  const out: number[] = [];
  let at = 0;
  for (const q of queries) {
    out.push(at);
    at += q.h * q.w;
  }
  return out;
}

/**
 * Plans a unit: the streamed encoder over the proj cells its queries read,
 * in steps of about `STEP_PROJ_ROWS` proj rows, and each step's queries.
 */
export function planUnit(
  graph: EncoderGraph,
  geo: StageGeometry,
  queries: readonly Rect[],
): UnitSteps {
  if (queries.length === 0) throw new RangeError("a unit needs at least one query rectangle");
  const [hf, wf] = tensorSizes(graph, geo.size[0], geo.size[1]).get(graph.output)!;
  const [Ht, Wt] = geo.target;
  let c0 = Infinity, c1 = -Infinity, r0 = Infinity, r1 = -Infinity;
  for (const q of queries) {
    const [a, b] = supportCells(Wt, wf, q.x0, q.w);
    c0 = Math.min(c0, a);
    c1 = Math.max(c1, b);
    r0 = Math.min(r0, q.y0);
    r1 = Math.max(r1, q.y0 + q.h);
  }
  const plan = planStream(graph, geo.size[0], geo.size[1], {
    targetRows: Ht,
    rows: [r0, r1],
    support: (t0, t1) => supportCells(Ht, hf, t0, t1 - t0),
    cols: [c0, c1],
    stepTargetRows: Math.max(1, Math.round((STEP_PROJ_ROWS * Ht) / hf)),
    stepInputRows: Math.max(8, Math.round((2 * STEP_PROJ_ROWS * geo.size[0]) / hf)),
  });
  const clipped = plan.steps.map(({ query: [t0, t1] }) =>
    queries
      .map((q, parent) => ({
        y0: Math.max(q.y0, t0),
        x0: q.x0,
        h: Math.min(q.y0 + q.h, t1) - Math.max(q.y0, t0),
        w: q.w,
        parent,
      }))
      .filter((q) => q.h > 0)
  );
  return { plan, queries: clipped };
}

/** The encoder input window of a unit (all steps): rows/columns of the stage grid. */
export function unitInputSpan(steps: UnitSteps): Span {
  return steps.plan.spans.get("input")!;
}

/** Rows/columns of the full-size image that the area resize reads for `input` (a stage-grid window). */
export function imageSpanFor(full: [number, number], stage: [number, number], input: Span): Span {
  const [r0, r1] = areaSourceRange(full[0], stage[0], input.r0, input.r1);
  const [c0, c1] = areaSourceRange(full[1], stage[1], input.c0, input.c1);
  return { r0, r1, c0, c1 };
}

/** Bytes of linear memory a unit needs: the stream buffers plus the per-step staging (8-bit crops). */
export function unitBytes(
  steps: UnitSteps,
  window: Rect,
  full: [number, number],
  pixelBytes: number,
): number {
  const s = staging(steps, window, full, pixelBytes);
  return steps.plan.bytes + s.image + s.mask + 2 * s.logits;
}

/** Bytes of the per-step staging: image rows, mask rows, logits and the prior (a plane like the logits). */
function staging(steps: UnitSteps, window: Rect, full: [number, number], pixelBytes: number) {
  const plan = steps.plan;
  const input = plan.spans.get("input")!;
  const img = imageSpanFor(full, plan.stage, input);
  let image = 0, mask = 0;
  for (const st of plan.steps) {
    const [a, r1] = st.input;
    if (a >= r1) continue;
    const [i0, i1] = areaSourceRange(full[0], plan.stage[0], a, r1);
    image = Math.max(image, (i1 - i0) * (img.c1 - img.c0) * pixelBytes);
    mask = Math.max(mask, (r1 - a) * (input.c1 - input.c0) * 4);
  }
  const logits = Math.max(1, ...plan.steps.map(({ query: [a, b] }) => b - a)) * window.w * 4;
  const align = (n: number) => Math.ceil(n / 16) * 16;
  return { image: align(image), mask: align(mask), logits: align(logits) };
}

/** Runs one unit on `ctx`'s instance. */
export function runUnit(ctx: UnitContext, job: UnitJob): UnitResult {
  const { net } = ctx;
  const steps = planUnit(net.graph, job.geo, job.queries);
  const plan = steps.plan;
  const input = plan.spans.get("input")!;
  checkCrops(job, input);
  const img = job.image;
  const room = staging(
    steps,
    job.window,
    img.kind === "u8" ? img.full : job.geo.size,
    img.kind === "u8" ? img.pixelBytes : 0,
  );
  const mark = net.arena.mark();
  try {
    const region = net.arena.bytes(plan.bytes + room.image + room.mask + 2 * room.logits);
    const imagePtr = region + plan.bytes,
      maskPtr = imagePtr + room.image,
      logitsPtr = maskPtr + room.mask,
      priorPtr = logitsPtr + room.logits;
    const runner = new StreamRunner(net, plan, region);
    const win = job.window;
    const offsets = queryOffsets(job.queries);
    const total = job.queries.reduce((a, q) => a + q.h * q.w, 0);
    const result = job.output === "u8" ? new Uint8Array(total) : new Float32Array(total);
    for (let j = 0; j < plan.steps.length; j++) {
      const fresh = runner.begin();
      if (fresh.r1 > fresh.r0) buildInput(ctx, job, input, fresh, imagePtr, maskPtr);
      const proj = runner.finish();
      const [t0, t1] = plan.steps[j].query;
      if (steps.queries[j].length === 0) continue;
      queryStep(ctx, job, proj, steps.queries[j], t0, t1, logitsPtr, priorPtr);
      const plane = convert(ctx, job.output, logitsPtr, (t1 - t0) * win.w);
      for (const q of steps.queries[j]) {
        const parent = job.queries[q.parent];
        for (let y = 0; y < q.h; y++) {
          const from = (q.y0 - t0 + y) * win.w + (q.x0 - win.x0);
          result.set(
            plane.subarray(from, from + q.w),
            offsets[q.parent] + (q.y0 - parent.y0 + y) * parent.w,
          );
        }
      }
    }
    return { data: result, memoryBytes: net.kernels.memory.buffer.byteLength };
  } finally {
    net.arena.release(mark);
  }
}

/** Encoder input rows [r0, r1) (at `ptr`): the image rows at the stage's size, normalised, with the mask. */
function buildInput(
  ctx: UnitContext,
  job: UnitJob,
  input: Span,
  fresh: { r0: number; r1: number; ptr: number },
  imagePtr: number,
  maskPtr: number,
): void {
  const { net } = ctx;
  const mem = net.kernels.memory.buffer;
  const w = input.c1 - input.c0, n = (fresh.r1 - fresh.r0) * w;
  new Float32Array(mem, maskPtr, n).set(
    job.mask.data.subarray((fresh.r0 - input.r0) * w, (fresh.r1 - input.r0) * w),
  );
  const img = job.image;
  if (img.kind === "f32") {
    const iw = img.span.c1 - img.span.c0, dx = input.c0 - img.span.c0;
    const out = new Float32Array(mem, fresh.ptr, 4 * n);
    for (let r = 0; r < fresh.r1 - fresh.r0; r++) {
      const from = ((fresh.r0 - img.span.r0 + r) * iw + dx) * 3;
      for (let x = 0; x < w; x++) {
        const o = 4 * (r * w + x), i = from + 3 * x;
        out[o] = img.data[i];
        out[o + 1] = img.data[i + 1];
        out[o + 2] = img.data[i + 2];
      }
    }
  } else {
    const geo = job.geo;
    const [i0, i1] = areaSourceRange(img.full[0], geo.size[0], fresh.r0, fresh.r1);
    const rowBytes = (img.span.c1 - img.span.c0) * img.pixelBytes;
    new Uint8Array(mem, imagePtr, (i1 - i0) * rowBytes).set(
      img.data.subarray((i0 - img.span.r0) * rowBytes, (i1 - img.span.r0) * rowBytes),
    );
    resizeAreaU8Window(
      net.kernels,
      {
        ptr: imagePtr,
        gridH: img.full[0],
        gridW: img.full[1],
        y0: i0,
        x0: img.span.c0,
        h: i1 - i0,
        w: img.span.c1 - img.span.c0,
        pixelBytes: img.pixelBytes,
        channels: 3,
      },
      ctx.lutPtr,
      {
        ptr: fresh.ptr,
        gridH: geo.size[0],
        gridW: geo.size[1],
        y0: fresh.r0,
        x0: input.c0,
        h: fresh.r1 - fresh.r0,
        w,
        channels: 3,
        stride: 4,
      },
    );
  }
  normalizeEncoderInput(net.kernels, fresh.ptr, maskPtr, n, ctx.normPtr);
}

/**
 * Logits of the step's query rectangles into the step's plane (rows [t0, t1),
 * the window's width). A model that reads the prior gets it in a plane of
 * the same layout at `prior`: the unit's mask crop upsampled to each rectangle.
 */
function queryStep(
  ctx: UnitContext,
  job: UnitJob,
  proj: ReturnType<StreamRunner["finish"]>,
  rects: Rect[],
  t0: number,
  t1: number,
  logits: number,
  prior: number,
): void {
  const { net } = ctx;
  const [Ht, Wt] = job.geo.target;
  const [hf, wf] = tensorSizes(net.graph, job.geo.size[0], job.geo.size[1]).get(net.graph.output)!;
  const win = job.window, p = proj.span;
  new Float32Array(net.kernels.memory.buffer, logits, (t1 - t0) * win.w).fill(0); // pixels outside the queries stay defined
  const withPrior = net.implicit.posDims === 7;
  for (const q of rects) {
    const at = 4 * ((q.y0 - t0) * win.w + (q.x0 - win.x0));
    if (withPrior) {
      const values = upsample(cropReader(job.mask), job.geo, q);
      const plane = new Float32Array(
        net.kernels.memory.buffer,
        prior + at,
        (q.h - 1) * win.w + q.w,
      );
      for (let y = 0; y < q.h; y++) plane.set(values.subarray(y * q.w, (y + 1) * q.w), y * win.w);
    }
    implicitQuery(
      net.kernels,
      {
        ptr: proj.view.ptr,
        gridH: hf,
        gridW: wf,
        y0: p.r0,
        x0: p.c0,
        h: p.r1 - p.r0,
        w: p.c1 - p.c0,
      },
      { gridH: Ht, gridW: Wt, y0: q.y0, x0: q.x0, h: q.h, w: q.w },
      net.implicit,
      { ptr: logits + at, rowStride: win.w },
      net.scratch.ptr,
      withPrior ? { ptr: prior + at, rowStride: win.w } : undefined,
    );
  }
}

/** Reads rectangles of the stage's mask (global coordinates) from a unit's crop of it. */
function cropReader(crop: MaskCrop): { read(r: Rect): Float32Array } {
  const s = crop.span, w = s.c1 - s.c0;
  return {
    read(r: Rect): Float32Array {
      if (r.y0 < s.r0 || r.y0 + r.h > s.r1 || r.x0 < s.c0 || r.x0 + r.w > s.c1) {
        throw new RangeError(`mask crop ${JSON.stringify(s)} does not hold ${JSON.stringify(r)}`);
      }
      const out = new Float32Array(r.h * r.w);
      for (let y = 0; y < r.h; y++) {
        const from = (r.y0 - s.r0 + y) * w + (r.x0 - s.c0);
        out.set(crop.data.subarray(from, from + r.w), y * r.w);
      }
      return out;
    },
  };
}

/** The first `n` logits of the step's plane converted in place; a view of them. */
function convert(
  ctx: UnitContext,
  output: UnitOutput,
  logits: number,
  n: number,
): Float32Array | Uint8Array {
  const k = ctx.net.kernels;
  if (output === "u8") {
    sigmoidToU8(k, logits, logits, n); // bytes trail the floats they come from
    return new Uint8Array(k.memory.buffer, logits, n);
  }
  if (output === "prob") logitToProb(k, logits, logits, n);
  return new Float32Array(k.memory.buffer, logits, n);
}

function checkCrops(job: UnitJob, input: Span): void {
  const img = job.image;
  const want = img.kind === "u8" ? imageSpanFor(img.full, job.geo.size, input) : input;
  const has = img.span;
  if (want.r0 < has.r0 || want.r1 > has.r1 || want.c0 < has.c0 || want.c1 > has.c1) {
    throw new RangeError(`image crop ${JSON.stringify(has)} does not hold ${JSON.stringify(want)}`);
  }
  const m = job.mask.span;
  if (m.r0 !== input.r0 || m.r1 !== input.r1 || m.c0 !== input.c0 || m.c1 !== input.c1) {
    throw new RangeError(
      `mask crop ${JSON.stringify(m)} is not the input window ${JSON.stringify(input)}`,
    );
  }
  const px = img.kind === "u8" ? img.pixelBytes : 3;
  if (img.data.length !== (has.r1 - has.r0) * (has.c1 - has.c0) * px) {
    throw new RangeError("image crop size mismatch");
  }
  if (job.mask.data.length !== (m.r1 - m.r0) * (m.c1 - m.c0)) {
    throw new RangeError("mask crop size mismatch");
  }
}
