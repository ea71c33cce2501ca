/**
 * The encoder over a WINDOW of a stage, streamed row by row: computes
 * exactly the cells of `proj` (the per-cell first-layer term) that a unit's
 * target pixels read, with values bit-identical to a whole-image encode,
 * in memory that grows with the window's width, not its height.
 *
 * Planning walks the graph backwards: each tensor's window is the union of
 * what its consumers read (a 3x3 conv one more cell each way, a stride-2
 * conv twice the rows, the bilinear upsampling its source rows), clipped to
 * the tensor's GLOBAL grid (from the stage size). The receptive radius is
 * thus applied layer by layer: the first layers carry a wide halo, the
 * expensive stride-2 head (the 3x3 fuse conv, 38% of the work) one cell.
 * Every convolution gets exactly the input rows and columns it reads, with
 * zero padding only where the global grid ends: no value near a window edge
 * is approximate and nothing is discarded.
 *
 * Streaming: the unit's target rows go in steps; a step needs, per tensor,
 * a range of rows that only moves down. Each tensor keeps a buffer of the
 * rows the current step needs: rows no later step needs are dropped, rows
 * computed before are kept, only the new rows are computed. So each row of
 * each tensor is computed once per unit, and a buffer holds (step + halo)
 * rows: memory grows with the width of the window and the halo, not its
 * height. `planStream` gives the unit's memory and multiply-adds, which the
 * scheduler uses to cut work into units.
 *
 * @module
 */

import { conv2d, type TensorView } from "../engine/kernels/conv.ts";
import {
  bilinearSourceRange,
  type GridWindow,
  maxPoolWindow,
  poolSourceRange,
  resizeBilinearWindow,
} from "../engine/kernels/window.ts";
import type { ConvOp, EncoderGraph, EncoderOp } from "../model/graph.ts";
import { tensorSizes } from "../model/graph.ts";
import type { Network } from "../model/network.ts";

/** Rows [r0, r1) x columns [c0, c1) of a grid. */
export interface Span {
  r0: number;
  r1: number;
  c0: number;
  c1: number;
}

/** Each tensor's window of its global grid for a given `proj` window. */
export function requiredSpans(
  graph: EncoderGraph,
  grids: Map<string, [number, number]>,
  projSpan: Span,
): Map<string, Span> {
  const spans = new Map<string, Span>([[graph.output, projSpan]]);
  const need = (name: string, s: Span) => spans.set(name, union(spans.get(name), s));
  for (let i = graph.ops.length - 1; i >= 0; i--) {
    const op = graph.ops[i];
    const out = spans.get(op.output);
    if (!out) continue;
    const [ih, iw] = grids.get(op.input)!;
    need(op.input, inputSpan(op, out, ih, iw, grids.get(op.output)!));
    if (op.kind === "conv" && op.residual) need(op.residual, out);
  }
  return spans;
}

/** Multiply-adds of the convolutions producing `spans`. */
export function spanMacs(graph: EncoderGraph, spans: Map<string, Span>): number {
  let macs = 0;
  for (const op of graph.ops) {
    const out = spans.get(op.output);
    if (!out || op.kind !== "conv") continue;
    macs += (out.r1 - out.r0) * (out.c1 - out.c0) * op.cout * op.cin * op.kernel * op.kernel;
  }
  return macs;
}

/** The input window an op reads to produce `out`. */
function inputSpan(
  op: EncoderOp,
  out: Span,
  ih: number,
  iw: number,
  outGrid: [number, number],
): Span {
  if (op.kind === "conv") return convInputSpan(op, out, ih, iw);
  if (op.kind === "maxpool") {
    const [r0, r1] = poolSourceRange(ih, out.r0, out.r1);
    const [c0, c1] = poolSourceRange(iw, out.c0, out.c1);
    return { r0, r1, c0, c1 };
  }
  const [r0, r1] = bilinearSourceRange(ih, outGrid[0], out.r0, out.r1);
  const [c0, c1] = bilinearSourceRange(iw, outGrid[1], out.c0, out.c1);
  return { r0, r1, c0, c1 };
}

/** Input rows/columns a convolution reads for `out`, clipped to the grid (the rest is padding). */
function convInputSpan(op: ConvOp, out: Span, ih: number, iw: number): Span {
  const [a, b] = convReach(op, out.r0, out.r1);
  const [c, d] = convReach(op, out.c0, out.c1);
  return { r0: Math.max(a, 0), r1: Math.min(b, ih), c0: Math.max(c, 0), c1: Math.min(d, iw) };
}

/** Unclipped input range [first, end) of outputs [o0, o1) along one axis. */
function convReach(op: ConvOp, o0: number, o1: number): [number, number] {
  const pad = (op.dilation * (op.kernel - 1)) >> 1;
  return [op.stride * o0 - pad, op.stride * (o1 - 1) - pad + op.dilation * (op.kernel - 1) + 1];
}

function union(a: Span | undefined, b: Span): Span {
  if (!a) return { ...b };
  return {
    r0: Math.min(a.r0, b.r0),
    r1: Math.max(a.r1, b.r1),
    c0: Math.min(a.c0, b.c0),
    c1: Math.max(a.c1, b.c1),
  };
}

// --------------------------------------------------------------------------
// streaming plan

/** One tensor's sliding buffer. */
export interface StreamTensor {
  name: string;
  channels: number;
  gridH: number;
  gridW: number;
  /** columns (fixed for the unit) */
  c0: number;
  c1: number;
  /** rows the buffer can hold */
  capacity: number;
  /** byte offset in the unit's region */
  offset: number;
}

/**
 * One step of a unit: the input rows it feeds, the rows each op computes
 * (`ops[i]`, empty when none), the first row each tensor must still hold
 * (rows above it are dropped before the step), and the target rows it
 * queries afterwards (`query`, empty when none).
 */
export interface StreamStep {
  input: [number, number];
  ops: [number, number][];
  hold: Map<string, number>;
  query: [number, number];
}

/** The plan of a unit's encoder. */
export interface StreamPlan {
  /** the stage's encoder size */
  stage: [number, number];
  tensors: Map<string, StreamTensor>;
  steps: StreamStep[];
  /** per op index: floats of the crops it needs when it reads fewer columns than its input holds */
  crops: Map<number, { input: number; residual: number; offset: number }>;
  /** the unit's window of every tensor (all steps) */
  spans: Map<string, Span>;
  /** bytes of the region holding every buffer and crop */
  bytes: number;
  /** multiply-adds of the unit's convolutions (each row once) */
  macs: number;
}

/** What `planStream` streams: target rows over the proj columns a unit's queries read. */
export interface StreamRequest {
  /** target grid rows (Ht) and the proj grid rows (Hf) */
  targetRows: number;
  /** target rows to query, in order; a query of row t reads proj rows `support(t)` */
  rows: [number, number];
  /** proj rows [lo, hi) that target rows [t0, t1) read */
  support: (t0: number, t1: number) => [number, number];
  /** proj columns [c0, c1) the queries read */
  cols: [number, number];
  /** target rows per step goal, and input rows fed per step */
  stepTargetRows: number;
  stepInputRows: number;
}

/**
 * Plans a unit as a wavefront: each step feeds at most `stepInputRows` new
 * input rows; each op then computes the rows its inputs allow, but no more
 * than the current goal needs (the proj rows of the next `stepTargetRows`
 * target rows), so no layer runs ahead and holds rows early; target rows
 * are queried as soon as their proj rows exist.
 */
export function planStream(
  graph: EncoderGraph,
  stageH: number,
  stageW: number,
  req: StreamRequest,
): StreamPlan {
  const grids = tensorSizes(graph, stageH, stageW);
  const span = (r: [number, number]) => ({ r0: r[0], r1: r[1], c0: req.cols[0], c1: req.cols[1] });
  const all = requiredSpans(graph, grids, span(req.support(req.rows[0], req.rows[1])));
  const ops = graph.ops;
  const producers = new Map<string, number[]>();
  ops.forEach((op, i) => producers.set(op.output, [...(producers.get(op.output) ?? []), i]));
  const done = ops.map((op) => all.get(op.output)!.r0); // next row each op computes
  let inputDone = all.get("input")!.r0;
  const avail = (name: string) =>
    name === "input" ? inputDone : Math.min(...producers.get(name)!.map((i) => done[i]));
  const written = (name: string) =>
    name === "input" ? inputDone : Math.max(...producers.get(name)!.map((i) => done[i]));
  const steps: StreamStep[] = [];
  const high = new Map<string, number>(); // most rows each tensor held at once
  let queried = req.rows[0], goalT = req.rows[0];
  let goal = new Map<string, number>();
  const projEnd = all.get(graph.output)!.r1;
  while (queried < req.rows[1]) {
    if (avail(graph.output) >= (goal.get(graph.output) ?? -1) && goalT < req.rows[1]) {
      goalT = Math.min(req.rows[1], goalT + req.stepTargetRows);
      const need = requiredSpans(graph, grids, span(req.support(req.rows[0], goalT)));
      goal = new Map([...need].map(([name, s]) => [name, s.r1]));
    }
    const hold = holdStarts(
      graph,
      grids,
      all,
      done,
      inputDone,
      req.support(queried, queried + 1)[0],
    );
    const in0 = inputDone;
    inputDone = Math.min(goal.get("input")!, inputDone + req.stepInputRows);
    const fresh: [number, number][] = ops.map((op, i) => {
      const n0 = done[i];
      const n1 = computable(
        op,
        grids,
        n0,
        goal.get(op.output)!,
        avail(op.input),
        op.kind === "conv" && op.residual ? avail(op.residual) : Infinity,
        grids.get(op.output)!,
      );
      done[i] = n1;
      return [n0, n1];
    });
    const t0 = queried;
    while (
      queried < req.rows[1] &&
      req.support(queried, queried + 1)[1] <= Math.min(avail(graph.output), projEnd)
    ) queried++;
    for (const [name] of all) {
      high.set(name, Math.max(high.get(name) ?? 0, written(name) - hold.get(name)!));
    }
    steps.push({ input: [in0, inputDone], ops: fresh, hold, query: [t0, queried] });
    if (steps.length > 100000) throw new Error("stream plan does not progress");
  }
  let offset = 0;
  const take = (bytes: number) => {
    const at = offset;
    offset += Math.ceil(bytes / 16) * 16;
    return at;
  };
  const tensors = new Map<string, StreamTensor>();
  for (const [name, spec] of graph.tensors) {
    const s = all.get(name);
    if (!s) continue;
    const [gridH, gridW] = grids.get(name)!;
    const capacity = Math.max(1, high.get(name)!);
    tensors.set(name, {
      name,
      channels: spec.channels,
      gridH,
      gridW,
      c0: s.c0,
      c1: s.c1,
      capacity,
      offset: 0,
    });
  }
  for (const t of tensors.values()) t.offset = take(t.capacity * (t.c1 - t.c0) * t.channels * 4);
  const crops = planCrops(graph, tensors, steps, take);
  return {
    stage: [stageH, stageW],
    tensors,
    steps,
    crops,
    spans: all,
    bytes: offset,
    macs: spanMacs(graph, all),
  };
}

/** The last row (exclusive) an op can compute from `n0`, given its inputs' available rows and the goal. */
function computable(
  op: EncoderOp,
  grids: Map<string, [number, number]>,
  n0: number,
  goalEnd: number,
  inputAvail: number,
  residualAvail: number,
  outGrid: [number, number],
): number {
  const [ih, iw] = grids.get(op.input)!;
  let n = n0;
  while (
    n < goalEnd && n + 1 <= residualAvail &&
    inputSpan(op, { r0: n, r1: n + 1, c0: 0, c1: 1 }, ih, iw, outGrid).r1 <= inputAvail
  ) n++;
  return n;
}

/** The first row of each tensor that a later computation or query still reads. */
function holdStarts(
  graph: EncoderGraph,
  grids: Map<string, [number, number]>,
  all: Map<string, Span>,
  done: number[],
  inputDone: number,
  projNeed: number,
): Map<string, number> {
  const hold = new Map<string, number>();
  for (const name of all.keys()) hold.set(name, Infinity);
  hold.set("input", inputDone);
  graph.ops.forEach((op, i) => {
    const out = all.get(op.output)!;
    hold.set(op.output, Math.min(hold.get(op.output)!, done[i]));
    if (done[i] >= out.r1) return; // finished: reads nothing more
    const [ih, iw] = grids.get(op.input)!;
    const read =
      inputSpan(op, { r0: done[i], r1: done[i] + 1, c0: 0, c1: 1 }, ih, iw, grids.get(op.output)!)
        .r0;
    hold.set(op.input, Math.min(hold.get(op.input)!, read));
    if (op.kind === "conv" && op.residual) {
      hold.set(op.residual, Math.min(hold.get(op.residual)!, done[i]));
    }
  });
  hold.set(graph.output, Math.min(hold.get(graph.output)!, projNeed));
  return hold;
}

/** Crop buffers (one, shared) for ops that read fewer columns than their input (or residual) holds. */
function planCrops(
  graph: EncoderGraph,
  tensors: Map<string, StreamTensor>,
  steps: StreamStep[],
  take: (bytes: number) => number,
): Map<number, { input: number; residual: number; offset: number }> {
  const crops = new Map<number, { input: number; residual: number; offset: number }>();
  graph.ops.forEach((op, i) => {
    if (op.kind !== "conv") return;
    const src = tensors.get(op.input)!, out = tensors.get(op.output)!;
    const cols = convInputSpan(op, { r0: 0, r1: 1, c0: out.c0, c1: out.c1 }, src.gridH, src.gridW);
    const res = op.residual ? tensors.get(op.residual)! : undefined;
    const cropIn = cols.c0 !== src.c0 || cols.c1 !== src.c1;
    const cropRes = res !== undefined && (res.c0 !== out.c0 || res.c1 !== out.c1);
    if (!cropIn && !cropRes) return;
    let inRows = 0, outRows = 0;
    for (const st of steps) {
      const [n0, n1] = st.ops[i];
      if (n0 >= n1) continue;
      const need = convInputSpan(
        op,
        { r0: n0, r1: n1, c0: out.c0, c1: out.c1 },
        src.gridH,
        src.gridW,
      );
      inRows = Math.max(inRows, need.r1 - need.r0);
      outRows = Math.max(outRows, n1 - n0);
    }
    const input = cropIn ? inRows * (cols.c1 - cols.c0) * src.channels : 0;
    const residual = cropRes ? outRows * (out.c1 - out.c0) * res!.channels : 0;
    crops.set(i, { input, residual, offset: 0 });
  });
  // one op runs at a time: its crops are dead once it returns, so all share one buffer
  const largest = Math.max(0, ...[...crops.values()].map((c) => c.input + c.residual));
  const offset = take(4 * largest);
  for (const c of crops.values()) c.offset = offset;
  return crops;
}

// --------------------------------------------------------------------------
// streaming execution

/** Rows [lo, hi) of a tensor currently held in its buffer. */
interface Held {
  lo: number;
  hi: number;
}

/** Runs a planned unit step by step over a region of linear memory. */
export class StreamRunner {
  readonly plan: StreamPlan;
  #net: Network;
  #region: number;
  #held = new Map<string, Held>();
  #step = 0;

  constructor(net: Network, plan: StreamPlan, regionPtr: number) {
    this.#net = net;
    this.plan = plan;
    this.#region = regionPtr;
    for (const name of plan.tensors.keys()) this.#held.set(name, { lo: 0, hi: 0 });
  }

  /** The next step, or null when done. */
  get next(): StreamStep | null {
    return this.plan.steps[this.#step] ?? null;
  }

  /**
   * Starts the next step: drops rows no longer needed and returns the new
   * input rows to fill (rows [r0, r1) of the input tensor, at `ptr`, row
   * pitch = the input window's width).
   */
  begin(): { r0: number; r1: number; ptr: number } {
    const step = this.plan.steps[this.#step];
    for (const [name, t] of this.plan.tensors) this.#slide(t, step.hold.get(name)!);
    const input = this.plan.tensors.get("input")!;
    const [r0, r1] = step.input;
    this.#grow(input, r1);
    return { r0, r1, ptr: this.#rowPtr(input, r0) };
  }

  /** Runs the step's ops on their new rows; returns the proj rows held, as a window. */
  finish(): { view: TensorView; span: Span } {
    const step = this.plan.steps[this.#step];
    const { graph } = this.#net;
    graph.ops.forEach((op, i) => {
      const [n0, n1] = step.ops[i];
      if (n0 >= n1) return;
      this.#grow(this.plan.tensors.get(op.output)!, n1);
      this.#run(op, i, n0, n1);
    });
    this.#step++;
    const proj = this.plan.tensors.get(graph.output)!;
    const held = this.#held.get(graph.output)!;
    return {
      view: this.#view(proj, held.lo, held.hi),
      span: { r0: held.lo, r1: held.hi, c0: proj.c0, c1: proj.c1 },
    };
  }

  /** Extends a tensor's held rows to `end` (rows being written now). */
  #grow(t: StreamTensor, end: number): void {
    const held = this.#held.get(t.name)!;
    if (end > held.hi) held.hi = end;
    if (held.hi - held.lo > t.capacity) throw new Error(`stream buffer of ${t.name} overflows`);
  }

  /** Drops the rows above `start` (moving the rest to the buffer's top). */
  #slide(t: StreamTensor, start: number): void {
    const held = this.#held.get(t.name)!;
    if (start >= held.hi) {
      held.lo = held.hi = start; // nothing to keep
    } else if (start > held.lo) {
      const rowFloats = (t.c1 - t.c0) * t.channels;
      const mem = new Float32Array(this.#net.kernels.memory.buffer);
      const base = (this.#region + t.offset) / 4;
      mem.copyWithin(
        base,
        base + (start - held.lo) * rowFloats,
        base + (held.hi - held.lo) * rowFloats,
      );
      held.lo = start;
    }
  }

  #rowPtr(t: StreamTensor, row: number): number {
    return this.#region + t.offset +
      4 * (row - this.#held.get(t.name)!.lo) * (t.c1 - t.c0) * t.channels;
  }

  #view(t: StreamTensor, r0: number, r1: number): TensorView {
    return { ptr: this.#rowPtr(t, r0), h: r1 - r0, w: t.c1 - t.c0, c: t.channels };
  }

  #window(t: StreamTensor, r0: number, r1: number, channels = t.channels): GridWindow {
    return {
      ptr: this.#rowPtr(t, r0),
      gridH: t.gridH,
      gridW: t.gridW,
      y0: r0,
      x0: t.c0,
      h: r1 - r0,
      w: t.c1 - t.c0,
      channels,
    };
  }

  #run(op: EncoderOp, i: number, n0: number, n1: number): void {
    const k = this.#net.kernels;
    const src = this.plan.tensors.get(op.input)!, out = this.plan.tensors.get(op.output)!;
    if (op.kind === "conv") return this.#conv(op, i, src, out, n0, n1);
    if (op.kind === "maxpool") {
      const [a, b] = poolSourceRange(src.gridH, n0, n1);
      maxPoolWindow(k, this.#window(src, a, b), this.#window(out, n0, n1));
      return;
    }
    const [a, b] = bilinearSourceRange(src.gridH, out.gridH, n0, n1);
    const dst = this.#window(out, n0, n1, src.channels);
    resizeBilinearWindow(k, this.#window(src, a, b), {
      ...dst,
      ptr: dst.ptr + 4 * op.outOffset,
      stride: out.channels,
    });
  }

  #conv(op: ConvOp, i: number, src: StreamTensor, out: StreamTensor, n0: number, n1: number): void {
    const outSpan = { r0: n0, r1: n1, c0: out.c0, c1: out.c1 };
    const need = convInputSpan(op, outSpan, src.gridH, src.gridW);
    const [rTop, rBottom] = convReach(op, n0, n1);
    const [cLeft, cRight] = convReach(op, out.c0, out.c1);
    const crop = this.plan.crops.get(i);
    const inputAt = crop ? this.#region + crop.offset : 0;
    const residualAt = crop ? inputAt + 4 * crop.input : 0;
    const input = need.c0 !== src.c0 || need.c1 !== src.c1
      ? this.#crop(src, need, inputAt)
      : this.#view(src, need.r0, need.r1);
    let residual: TensorView | undefined;
    if (op.residual) {
      const res = this.plan.tensors.get(op.residual)!;
      residual = res.c0 !== out.c0 || res.c1 !== out.c1
        ? this.#crop(res, outSpan, residualAt)
        : this.#view(res, n0, n1);
    }
    conv2d(this.#net.kernels, {
      input,
      output: {
        ptr: this.#rowPtr(out, n0) + 4 * op.outOffset,
        h: n1 - n0,
        w: out.c1 - out.c0,
        c: op.cout,
        stride: out.channels,
      },
      weights: this.#net.convs.get(op.weights)!,
      stride: op.stride,
      dilation: op.dilation,
      padding: {
        top: need.r0 - rTop,
        bottom: rBottom - need.r1,
        left: need.c0 - cLeft,
        right: cRight - need.c1,
      },
      relu: op.relu,
      residual,
      scratch: this.#net.scratch,
    });
  }

  /** Copies rows/columns `s` of tensor `t` to `at` and returns them as a dense view. */
  #crop(t: StreamTensor, s: Span, at: number): TensorView {
    const mem = new Float32Array(this.#net.kernels.memory.buffer);
    const C = t.channels, tw = t.c1 - t.c0;
    const h = s.r1 - s.r0, w = s.c1 - s.c0;
    const lo = this.#held.get(t.name)!.lo;
    const src = (this.#region + t.offset) / 4, dst = at / 4;
    for (let r = 0; r < h; r++) {
      const from = src + ((s.r0 - lo + r) * tw + (s.c0 - t.c0)) * C;
      mem.copyWithin(dst + r * w * C, from, from + w * C);
    }
    return { ptr: at, h, w, c: C };
  }
}
