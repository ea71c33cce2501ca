/**
 * The CRM-lite encoder as data: a list of operations over named tensors,
 * derived from the architecture config in the weights' metadata.
 *
 * Keeping "what the network is" apart from "how it runs" (src/model/encoder.ts)
 * means a wider or narrower model needs no code change, and the same graph
 * serves the whole-image run, row strips and tiles.
 *
 * Mirrors train/model.py's `Encoder` + `ImplicitDecoder.feat_proj`.
 *
 * @module
 */

import type { ModelConfig } from "../weights/model_config.ts";

/** A tensor of the graph: channels and its stride relative to the encoder input. */
export interface TensorSpec {
  name: string;
  channels: number;
  /** how the spatial size derives from the producer's input size */
  stride: 1 | 2 | 4 | 8;
}

/** A convolution (BatchNorm folded into its bias). */
export interface ConvOp {
  kind: "conv";
  /** weight name prefix in the safetensors file (`<weights>.weight`, `<weights>.bias`) */
  weights: string;
  input: string;
  output: string;
  /** write into channels [outOffset, outOffset + cout) of `output` (concatenation) */
  outOffset: number;
  cin: number;
  cout: number;
  kernel: number;
  stride: number;
  dilation: number;
  relu: boolean;
  /** tensor added before the ReLU (residual connection) */
  residual?: string;
}

/** 3x3 max-pool, stride 2, padding 1. */
export interface MaxPoolOp {
  kind: "maxpool";
  input: string;
  output: string;
}

/** Bilinear upsampling to another tensor's size, into a channel slice. */
export interface UpsampleOp {
  kind: "upsample";
  input: string;
  output: string;
  outOffset: number;
}

/** One step of the encoder. */
export type EncoderOp = ConvOp | MaxPoolOp | UpsampleOp;

/** The encoder: its tensors in creation order and its operations in run order. */
export interface EncoderGraph {
  tensors: Map<string, TensorSpec>;
  ops: EncoderOp[];
  /** the output: the per-cell first-layer term of the implicit function */
  output: "proj";
  /** the latent grid's stride relative to the encoder input */
  outputStride: 2;
}

/** Builds the encoder graph for `cfg`. */
export function buildEncoderGraph(cfg: ModelConfig): EncoderGraph {
  const tensors = new Map<string, TensorSpec>();
  const ops: EncoderOp[] = [];
  const tensor = (name: string, channels: number, stride: TensorSpec["stride"]) => {
    tensors.set(name, { name, channels, stride });
    return name;
  };
  const conv = (o: Omit<ConvOp, "kind" | "outOffset"> & { outOffset?: number }) =>
    ops.push({ kind: "conv", outOffset: 0, ...o });

  tensor("input", cfg.in_channels, 1);
  tensor("stem", cfg.stem, 2);
  conv({ weights: "stem", input: "input", output: "stem", cin: cfg.in_channels, cout: cfg.stem, kernel: 7, stride: 2, dilation: 1, relu: true });
  tensor("pool", cfg.stem, 4);
  ops.push({ kind: "maxpool", input: "stem", output: "pool" });

  let x = "pool";
  let cin = cfg.stem;
  let stride: TensorSpec["stride"] = 4;
  cfg.stages.forEach((st, i) => {
    for (let j = 0; j < st.blocks; j++) {
      const s = j === 0 ? st.stride : 1;
      const outStride = (stride * s) as TensorSpec["stride"];
      const p = `stage${i}.${j}`;
      const mid = tensor(`${p}.mid`, st.width, outStride);
      conv({ weights: `${p}.conv1`, input: x, output: mid, cin, cout: st.width, kernel: 3, stride: s, dilation: st.dilation, relu: true });
      let skip = x;
      if (s !== 1 || cin !== st.width) {
        skip = tensor(`${p}.skip`, st.width, outStride);
        conv({ weights: `${p}.down`, input: x, output: skip, cin, cout: st.width, kernel: 1, stride: s, dilation: 1, relu: false });
      }
      const out = tensor(j === st.blocks - 1 ? `stage${i}` : `${p}.out`, st.width, outStride);
      conv({ weights: `${p}.conv2`, input: mid, output: out, cin: st.width, cout: st.width, kernel: 3, stride: 1, dilation: st.dilation, relu: true, residual: skip });
      x = out;
      cin = st.width;
      stride = outStride;
    }
  });

  const [p2, p4, p8] = cfg.proj;
  const last = `stage${cfg.stages.length - 1}`;
  tensor("cat", p2 + p4 + p8, 2);
  conv({ weights: "proj2", input: "stem", output: "cat", outOffset: 0, cin: cfg.stem, cout: p2, kernel: 1, stride: 1, dilation: 1, relu: true });
  tensor("proj4", p4, tensors.get("stage0")!.stride);
  conv({ weights: "proj4", input: "stage0", output: "proj4", cin: cfg.stages[0].width, cout: p4, kernel: 1, stride: 1, dilation: 1, relu: true });
  ops.push({ kind: "upsample", input: "proj4", output: "cat", outOffset: p2 });
  tensor("proj8", p8, stride);
  conv({ weights: "proj8", input: last, output: "proj8", cin, cout: p8, kernel: 1, stride: 1, dilation: 1, relu: true });
  ops.push({ kind: "upsample", input: "proj8", output: "cat", outOffset: p2 + p4 });
  tensor("latent", cfg.latent, 2);
  conv({ weights: "fuse", input: "cat", output: "latent", cin: p2 + p4 + p8, cout: cfg.latent, kernel: 3, stride: 1, dilation: 1, relu: true });
  tensor("proj", cfg.mlp[0], 2);
  conv({ weights: "mlp.feat", input: "latent", output: "proj", cin: cfg.latent, cout: cfg.mlp[0], kernel: 1, stride: 1, dilation: 1, relu: false });
  return { tensors, ops, output: "proj", outputStride: 2 };
}

/** Output size of a convolution along one axis (PyTorch's formula, symmetric padding). */
export function convOutSize(n: number, kernel: number, stride: number, dilation: number): number {
  const pad = (dilation * (kernel - 1)) >> 1;
  return Math.floor((n + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1;
}

/** Spatial size of every tensor for an encoder input of `h` x `w`. */
export function tensorSizes(graph: EncoderGraph, h: number, w: number): Map<string, [number, number]> {
  const sizes = new Map<string, [number, number]>([["input", [h, w]]]);
  for (const op of graph.ops) {
    const [ih, iw] = sizes.get(op.input)!;
    if (sizes.has(op.output)) continue; // a slice of an existing tensor (concatenation)
    if (op.kind === "conv") {
      sizes.set(op.output, [
        convOutSize(ih, op.kernel, op.stride, op.dilation),
        convOutSize(iw, op.kernel, op.stride, op.dilation),
      ]);
    } else if (op.kind === "maxpool") {
      sizes.set(op.output, [convOutSize(ih, 3, 2, 1), convOutSize(iw, 3, 2, 1)]);
    } else {
      throw new Error(`upsample into ${op.output} before its size is known`);
    }
  }
  // the concatenation lives at the stem's (stride-2) size
  sizes.set("cat", sizes.get("stem")!);
  return sizes;
}
