/**
 * Runs CRM-lite with the WebAssembly kernels: packs the weights once, then
 * encodes images (the encoder graph of src/model/graph.ts) and queries the
 * implicit function on target windows.
 *
 * Every buffer lives in the kernel instance's arena. `encode` allocates the
 * graph's tensors on top of the arena and returns them; the caller releases
 * them with `arena.release(mark)` when done (stack order).
 *
 * @module
 */

import type { Arena, F32Buffer } from "../engine/arena.ts";
import type { KernelInstance } from "../engine/wasm.ts";
import {
  conv2d,
  convScratchFloats,
  packConvWeights,
  type PackedConv,
} from "../engine/kernels/conv.ts";
import { maxPool3x3s2 } from "../engine/kernels/pool.ts";
import { resizeBilinear } from "../engine/kernels/resize.ts";
import {
  type ImplicitParamsRef,
  implicitQuery,
  implicitScratchFloats,
  type PriorPlane,
  uploadImplicitParams,
} from "../engine/kernels/cam.ts";
import type { ModelConfig } from "../weights/model_config.ts";
import type { ModelWeights } from "../weights/model_weights.ts";
import { buildEncoderGraph, type EncoderGraph, tensorSizes } from "./graph.ts";

/** A model ready to run in one kernel instance. */
export interface Network {
  readonly config: ModelConfig;
  readonly graph: EncoderGraph;
  readonly kernels: KernelInstance;
  readonly arena: Arena;
  /** packed weights of every convolution, by weight name */
  readonly convs: ReadonlyMap<string, PackedConv>;
  readonly implicit: ImplicitParamsRef;
  /** scratch shared by all convolutions and the implicit function */
  readonly scratch: F32Buffer;
}

/** An NHWC float32 tensor in the arena. */
export interface Tensor {
  buf: F32Buffer;
  h: number;
  w: number;
  c: number;
}

/** Packs `weights` into `arena` (kept for the network's lifetime). */
export function loadNetwork(kernels: KernelInstance, arena: Arena, weights: ModelWeights): Network {
  const config = weights.config;
  const graph = buildEncoderGraph(config);
  const convs = new Map<string, PackedConv>();
  let scratchFloats = implicitScratchFloats(config.mlp);
  for (const op of graph.ops) {
    if (op.kind !== "conv") continue;
    const shape = { cout: op.cout, cin: op.cin, kh: op.kernel, kw: op.kernel };
    const packed = packConvWeights(
      kernels,
      arena,
      weights.tensor(`${op.weights}.weight`),
      shape,
      weights.tensor(`${op.weights}.bias`),
    );
    convs.set(op.weights, packed);
    scratchFloats = Math.max(scratchFloats, convScratchFloats(op.cin, op.kernel, op.kernel));
  }
  const implicit = uploadImplicitParams(
    arena,
    config.mlp,
    (n) => weights.tensor(n),
    config.pos_dims,
  );
  const scratch = arena.f32(scratchFloats);
  return { config, graph, kernels, arena, convs, implicit, scratch };
}

/**
 * Encodes an encoder input (NHWC, `in_channels` = 4: normalised RGB and the
 * mask in [-1, 1]; see src/model/layout.ts) into the per-cell first-layer
 * term of the implicit function. With `taps`, every graph tensor is also
 * returned by name (for parity tests).
 */
export function encode(net: Network, input: Tensor, taps?: Map<string, Tensor>): Tensor {
  const { graph, kernels: k, arena } = net;
  if (input.c !== net.config.in_channels) {
    throw new RangeError(
      `encoder input has ${input.c} channels, the model takes ${net.config.in_channels}`,
    );
  }
  const sizes = tensorSizes(graph, input.h, input.w);
  const tensors = new Map<string, Tensor>([["input", input]]);
  for (const [name, spec] of graph.tensors) {
    if (name === "input") continue;
    const [h, w] = sizes.get(name)!;
    tensors.set(name, { buf: arena.f32(h * w * spec.channels), h, w, c: spec.channels });
  }
  for (const op of graph.ops) {
    const src = tensors.get(op.input)!;
    const dst = tensors.get(op.output)!;
    if (op.kind === "conv") {
      const res = op.residual ? tensors.get(op.residual)! : undefined;
      conv2d(k, {
        input: view(src),
        output: {
          ptr: dst.buf.ptr + 4 * op.outOffset,
          h: dst.h,
          w: dst.w,
          c: op.cout,
          stride: dst.c,
        },
        weights: net.convs.get(op.weights)!,
        stride: op.stride,
        dilation: op.dilation,
        relu: op.relu,
        residual: res ? view(res) : undefined,
        scratch: net.scratch,
      });
    } else if (op.kind === "maxpool") {
      maxPool3x3s2(k, { input: view(src), output: view(dst) });
    } else {
      resizeBilinear(
        k,
        { ptr: src.buf.ptr, h: src.h, w: src.w, channels: src.c },
        { ptr: dst.buf.ptr + 4 * op.outOffset, h: dst.h, w: dst.w, channels: src.c, stride: dst.c },
      );
    }
  }
  if (taps) { for (const [name, t] of tensors) taps.set(name, t); }
  return tensors.get(graph.output)!;
}

/** A window of a target grid: rows [y0, y0+h), columns [x0, x0+w) of gridH x gridW. */
export interface QueryWindow {
  gridH: number;
  gridW: number;
  y0: number;
  x0: number;
  h: number;
  w: number;
}

/**
 * Logits of a target window from the per-cell grid `proj` (the whole grid of
 * the encoded image), written as an h x w plane at `out`. `prior`: the
 * window's prior (h x w probabilities), for a model that reads one.
 */
export function query(
  net: Network,
  proj: Tensor,
  target: QueryWindow,
  out: F32Buffer,
  prior?: PriorPlane,
): void {
  if (out.length < target.h * target.w) {
    throw new RangeError(
      `logit buffer holds ${out.length} floats, the window needs ${target.h * target.w}`,
    );
  }
  implicitQuery(
    net.kernels,
    { ptr: proj.buf.ptr, gridH: proj.h, gridW: proj.w, y0: 0, x0: 0, h: proj.h, w: proj.w },
    target,
    net.implicit,
    { ptr: out.ptr },
    net.scratch.ptr,
    prior,
  );
}

function view(t: Tensor) {
  return { ptr: t.buf.ptr, h: t.h, w: t.w, c: t.c };
}
