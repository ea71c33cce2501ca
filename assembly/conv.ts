// 2-D convolution (NHWC float32) as an "indirect" packed GEMM.
//
// out[pixel, o] = bias[o] + sum over k = (ky, kx, c) of in[tap(pixel, ky, kx), c] * W[o, k]
//
// The micro-kernel computes a tile of 6 output pixels x 8 output channels in 12
// v128 accumulators: per input channel it splats one input float per pixel (6
// load32_splat) and loads 8 packed weights (2 v128), then does 12 multiply-adds.
// 12 accumulators + 2 weight vectors + 1 splat = 15 registers, which is what V8
// can allocate on x64 (xmm15 is its scratch), and 12 independent FMA chains hide
// the FMA latency (4 cycles x 2 pipes = 8 chains needed). Measured on Zen 4 /
// V8 (L1-resident peak, both builds): 4-, 5- and 7-pixel tiles were all slower.
//
// "Indirect": instead of an im2col copy, each tile gets a table of 6 input-pixel
// pointers per tap (a pointer to a zero row where the tap falls in the padding),
// built once per tile and reused for every 8-channel panel. Channels of one
// input pixel are contiguous, so the K loop within a tap is a unit-stride walk;
// where a whole kernel row is inside a dense input, its taps merge into one
// longer walk (see buildSegments), which lifted the 4-channel stem from about
// 22 to 33 GFLOP/s.
//
// Tiles run over the flattened pixels of rows [oy0, oy1); every output value is
// computed by the same sequence of operations whichever tile it falls in, so any
// row split gives bit-identical results.

import { madd } from "./simd";

/** Output channels per packed panel (two v128 of f32). */
const NR: i32 = 8;
/** Output pixels per micro-kernel tile. */
const MR: i32 = 6;
/** u32 per segment of the pointer table: K length + one pointer per pixel. */
const SEG: i32 = MR + 1;

/**
 * Floats needed for the packed weights of a cout x cin x kh x kw convolution:
 * cout rounded up to a multiple of 8, times K = kh * kw * cin.
 */
export function packedConvFloats(cout: i32, cin: i32, kh: i32, kw: i32): i32 {
  return ((cout + NR - 1) / NR) * NR * kh * kw * cin;
}

/**
 * Packs PyTorch OIHW weights (src) into panels of 8 output channels (dst):
 * panel p holds, for each k = (ky, kx, c) in that order, the 8 weights
 * W[8p .. 8p+7, c, ky, kx] contiguously; missing channels of the last panel are 0.
 */
export function packConv(srcPtr: usize, cout: i32, cin: i32, kh: i32, kw: i32, dstPtr: usize): void {
  const panels = (cout + NR - 1) / NR;
  let d = dstPtr;
  for (let p = 0; p < panels; p++) {
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++) {
        for (let c = 0; c < cin; c++) {
          for (let j = 0; j < NR; j++) {
            const o = p * NR + j;
            let v: f32 = 0;
            if (o < cout) v = load<f32>(srcPtr + ((<usize>(((o * cin + c) * kh + ky) * kw + kx)) << 2));
            store<f32>(d, v);
            d += 4;
          }
        }
      }
    }
  }
}

/**
 * Floats of scratch conv2d needs: a zero row of inC floats (rounded up to a
 * vector), the tile's window coordinates (2 per pixel) and its segment table
 * (at most one segment per tap).
 */
export function convScratchFloats(inC: i32, kh: i32, kw: i32): i32 {
  return ((inC + 3) & ~3) + 2 * MR + SEG * kh * kw;
}

// Loads the first n (1..8) floats at p as two vectors; lanes past n are 0.
// @ts-ignore: decorator
@inline
function loadLanes(p: usize, n: i32): v128 {
  if (n >= 4) return v128.load(p);
  let v = f32x4.splat(0);
  if (n >= 1) v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (n >= 2) v = f32x4.replace_lane(v, 1, load<f32>(p, 4));
  if (n >= 3) v = f32x4.replace_lane(v, 2, load<f32>(p, 8));
  return v;
}

// Stores the first n lanes of v at p (all four when n >= 4).
// @ts-ignore: decorator
@inline
function storeLanes(p: usize, v: v128, n: i32): void {
  if (n >= 4) {
    v128.store(p, v);
    return;
  }
  if (n >= 1) store<f32>(p, f32x4.extract_lane(v, 0));
  if (n >= 2) store<f32>(p, f32x4.extract_lane(v, 1), 4);
  if (n >= 3) store<f32>(p, f32x4.extract_lane(v, 2), 8);
}

// Epilogue of one pixel: + residual, ReLU, store n (1..8) channels.
// The residual is added before the ReLU, as in a ResNet BasicBlock.
// @ts-ignore: decorator
@inline
function finish(outP: usize, resP: usize, a0: v128, a1: v128, n: i32, relu: i32): void {
  if (n == NR) {
    if (resP != 0) {
      a0 = f32x4.add(a0, v128.load(resP));
      a1 = f32x4.add(a1, v128.load(resP, 16));
    }
    if (relu != 0) {
      const z = f32x4.splat(0);
      a0 = f32x4.max(a0, z);
      a1 = f32x4.max(a1, z);
    }
    v128.store(outP, a0);
    v128.store(outP, a1, 16);
    return;
  }
  if (resP != 0) {
    a0 = f32x4.add(a0, loadLanes(resP, n));
    if (n > 4) a1 = f32x4.add(a1, loadLanes(resP + 16, n - 4));
  }
  if (relu != 0) {
    const z = f32x4.splat(0);
    a0 = f32x4.max(a0, z);
    a1 = f32x4.max(a1, z);
  }
  storeLanes(outP, a0, n);
  if (n > 4) storeLanes(outP + 16, a1, n - 4);
}

/**
 * The 6 x 8 micro-kernel. seg: nseg segments of SEG u32 each, [length in
 * floats, 6 input-pixel pointers]; segment after segment they walk K in
 * (ky, kx, c) order. w: this panel's packed weights (K * 8 floats); bias: the
 * panel's first bias (nCh valid). Writes nPix pixels x nCh channels at out
 * (pixBytes apart), adding res (same layout) when res != 0.
 */
function kernel6x8(
  seg: usize, nseg: i32, w: usize, bias: usize,
  out: usize, res: usize, pixBytes: usize, nPix: i32, nCh: i32, relu: i32,
): void {
  const b0 = loadLanes(bias, nCh);
  const b1 = nCh > 4 ? loadLanes(bias + 16, nCh - 4) : f32x4.splat(0);
  let c00 = b0, c01 = b1, c10 = b0, c11 = b1, c20 = b0, c21 = b1;
  let c30 = b0, c31 = b1, c40 = b0, c41 = b1, c50 = b0, c51 = b1;
  for (let t = 0; t < nseg; t++) {
    const tp = seg + <usize>(t * SEG * 4);
    const len = load<i32>(tp), len4 = len & ~3;
    let p0 = load<u32>(tp, 4), p1 = load<u32>(tp, 8), p2 = load<u32>(tp, 12);
    let p3 = load<u32>(tp, 16), p4 = load<u32>(tp, 20), p5 = load<u32>(tp, 24);
    let c = 0;
    // four input channels per iteration: constant offsets, fewer pointer bumps
    for (; c < len4; c += 4) {
      let w0 = v128.load(w), w1 = v128.load(w, 16);
      let a = v128.load32_splat(p0);
      c00 = madd(a, w0, c00); c01 = madd(a, w1, c01);
      a = v128.load32_splat(p1);
      c10 = madd(a, w0, c10); c11 = madd(a, w1, c11);
      a = v128.load32_splat(p2);
      c20 = madd(a, w0, c20); c21 = madd(a, w1, c21);
      a = v128.load32_splat(p3);
      c30 = madd(a, w0, c30); c31 = madd(a, w1, c31);
      a = v128.load32_splat(p4);
      c40 = madd(a, w0, c40); c41 = madd(a, w1, c41);
      a = v128.load32_splat(p5);
      c50 = madd(a, w0, c50); c51 = madd(a, w1, c51);

      w0 = v128.load(w, 32); w1 = v128.load(w, 48);
      a = v128.load32_splat(p0, 4);
      c00 = madd(a, w0, c00); c01 = madd(a, w1, c01);
      a = v128.load32_splat(p1, 4);
      c10 = madd(a, w0, c10); c11 = madd(a, w1, c11);
      a = v128.load32_splat(p2, 4);
      c20 = madd(a, w0, c20); c21 = madd(a, w1, c21);
      a = v128.load32_splat(p3, 4);
      c30 = madd(a, w0, c30); c31 = madd(a, w1, c31);
      a = v128.load32_splat(p4, 4);
      c40 = madd(a, w0, c40); c41 = madd(a, w1, c41);
      a = v128.load32_splat(p5, 4);
      c50 = madd(a, w0, c50); c51 = madd(a, w1, c51);

      w0 = v128.load(w, 64); w1 = v128.load(w, 80);
      a = v128.load32_splat(p0, 8);
      c00 = madd(a, w0, c00); c01 = madd(a, w1, c01);
      a = v128.load32_splat(p1, 8);
      c10 = madd(a, w0, c10); c11 = madd(a, w1, c11);
      a = v128.load32_splat(p2, 8);
      c20 = madd(a, w0, c20); c21 = madd(a, w1, c21);
      a = v128.load32_splat(p3, 8);
      c30 = madd(a, w0, c30); c31 = madd(a, w1, c31);
      a = v128.load32_splat(p4, 8);
      c40 = madd(a, w0, c40); c41 = madd(a, w1, c41);
      a = v128.load32_splat(p5, 8);
      c50 = madd(a, w0, c50); c51 = madd(a, w1, c51);

      w0 = v128.load(w, 96); w1 = v128.load(w, 112);
      a = v128.load32_splat(p0, 12);
      c00 = madd(a, w0, c00); c01 = madd(a, w1, c01);
      a = v128.load32_splat(p1, 12);
      c10 = madd(a, w0, c10); c11 = madd(a, w1, c11);
      a = v128.load32_splat(p2, 12);
      c20 = madd(a, w0, c20); c21 = madd(a, w1, c21);
      a = v128.load32_splat(p3, 12);
      c30 = madd(a, w0, c30); c31 = madd(a, w1, c31);
      a = v128.load32_splat(p4, 12);
      c40 = madd(a, w0, c40); c41 = madd(a, w1, c41);
      a = v128.load32_splat(p5, 12);
      c50 = madd(a, w0, c50); c51 = madd(a, w1, c51);

      p0 += 16; p1 += 16; p2 += 16; p3 += 16; p4 += 16; p5 += 16;
      w += 128;
    }
    for (; c < len; c++) {
      const w0 = v128.load(w), w1 = v128.load(w, 16);
      let a = v128.load32_splat(p0);
      c00 = madd(a, w0, c00); c01 = madd(a, w1, c01);
      a = v128.load32_splat(p1);
      c10 = madd(a, w0, c10); c11 = madd(a, w1, c11);
      a = v128.load32_splat(p2);
      c20 = madd(a, w0, c20); c21 = madd(a, w1, c21);
      a = v128.load32_splat(p3);
      c30 = madd(a, w0, c30); c31 = madd(a, w1, c31);
      a = v128.load32_splat(p4);
      c40 = madd(a, w0, c40); c41 = madd(a, w1, c41);
      a = v128.load32_splat(p5);
      c50 = madd(a, w0, c50); c51 = madd(a, w1, c51);
      p0 += 4; p1 += 4; p2 += 4; p3 += 4; p4 += 4; p5 += 4;
      w += 32;
    }
  }
  const r = res;
  finish(out, r, c00, c01, nCh, relu);
  if (nPix > 1) finish(out + pixBytes, r != 0 ? r + pixBytes : 0, c10, c11, nCh, relu);
  if (nPix > 2) finish(out + 2 * pixBytes, r != 0 ? r + 2 * pixBytes : 0, c20, c21, nCh, relu);
  if (nPix > 3) finish(out + 3 * pixBytes, r != 0 ? r + 3 * pixBytes : 0, c30, c31, nCh, relu);
  if (nPix > 4) finish(out + 4 * pixBytes, r != 0 ? r + 4 * pixBytes : 0, c40, c41, nCh, relu);
  if (nPix > 5) finish(out + 5 * pixBytes, r != 0 ? r + 5 * pixBytes : 0, c50, c51, nCh, relu);
}

/**
 * Builds the segment table of the tile of pixels [q0, q0 + 6) (pixels past qEnd
 * repeat the last one: computed, never stored) and returns the segment count.
 * A segment is one tap (cin floats per pixel, or the zero row in the padding),
 * or, when the input is dense (inStride == inC, dilation 1) and every pixel's
 * whole kernel row is inside the image, the kw taps of one kernel row merged
 * into kw * cin contiguous floats: fewer, longer K loops for few channels (the
 * 4-channel 7x7 stem). Both forms walk the same K in the same order, so the
 * results do not depend on which one a tile gets.
 */
function buildSegments(
  seg: usize, coords: usize, zero: usize, q0: i32, qEnd: i32, outW: i32,
  inPtr: usize, inH: i32, inW: i32, inC: i32, inPixBytes: usize,
  kh: i32, kw: i32, stride: i32, dilation: i32, padTop: i32, padLeft: i32, dense: bool,
): i32 {
  // top-left input coordinate of each pixel's window
  let xLo = i32.MAX_VALUE, xHi = i32.MIN_VALUE;
  for (let i = 0; i < MR; i++) {
    const q = min(q0 + i, qEnd - 1);
    const oy = q / outW;
    const ix0 = (q - oy * outW) * stride - padLeft;
    store<i32>(coords + (<usize>i << 3), oy * stride - padTop);
    store<i32>(coords + (<usize>i << 3), ix0, 4);
    xLo = min(xLo, ix0);
    xHi = max(xHi, ix0);
  }
  const rowsInside = dense && xLo >= 0 && xHi + kw <= inW;
  let n = 0;
  for (let ky = 0; ky < kh; ky++) {
    let merge = rowsInside;
    for (let i = 0; i < MR && merge; i++) {
      merge = <u32>(load<i32>(coords + (<usize>i << 3)) + ky * dilation) < <u32>inH;
    }
    const taps = merge ? 1 : kw;
    for (let kx = 0; kx < taps; kx++) {
      const s = seg + <usize>(n * SEG * 4);
      store<i32>(s, merge ? kw * inC : inC);
      for (let i = 0; i < MR; i++) {
        const iy = load<i32>(coords + (<usize>i << 3)) + ky * dilation;
        const ix = load<i32>(coords + (<usize>i << 3), 4) + kx * dilation;
        const inside = <u32>iy < <u32>inH && <u32>ix < <u32>inW;
        const p = inside ? inPtr + (<usize>(iy * inW + ix)) * inPixBytes : zero;
        store<u32>(s + (<usize>(i + 1) << 2), <u32>p);
      }
      n++;
    }
  }
  return n;
}

/**
 * Convolution of output rows [oy0, oy1) (_outH, the full height, is checked by
 * the caller): NHWC input (inStride floats per pixel, inC used) to NHWC output
 * (outStride floats per pixel, outC written), zero padding,
 * out = conv + bias (+ res) then ReLU when relu != 0.
 * wPtr: weights packed by packConv; scratchPtr: convScratchFloats(inC, kh, kw)
 * floats this call may overwrite (nothing need be initialised).
 */
export function conv2d(
  inPtr: usize, inH: i32, inW: i32, inC: i32, inStride: i32,
  outPtr: usize, _outH: i32, outW: i32, outC: i32, outStride: i32,
  wPtr: usize, biasPtr: usize, kh: i32, kw: i32, stride: i32, dilation: i32,
  padTop: i32, padLeft: i32, relu: i32, resPtr: usize, oy0: i32, oy1: i32,
  scratchPtr: usize,
): void {
  const zero = scratchPtr;
  const zeroFloats = (inC + 3) & ~3;
  for (let i = 0; i < zeroFloats; i += 4) v128.store(zero + (<usize>i << 2), f32x4.splat(0));
  const coords = zero + (<usize>zeroFloats << 2);
  const seg = coords + (<usize>(2 * MR) << 2);
  const dense = inStride == inC && dilation == 1;
  const panels = (outC + NR - 1) / NR;
  const panelBytes = <usize>(kh * kw * inC * NR) << 2;
  const pixBytes = <usize>outStride << 2;
  const inPixBytes = <usize>inStride << 2;
  const qEnd = oy1 * outW;
  for (let q0 = oy0 * outW; q0 < qEnd; q0 += MR) {
    const nPix = min(MR, qEnd - q0);
    const nseg = buildSegments(
      seg, coords, zero, q0, qEnd, outW, inPtr, inH, inW, inC, inPixBytes,
      kh, kw, stride, dilation, padTop, padLeft, dense,
    );
    const out = outPtr + <usize>q0 * pixBytes;
    const res = resPtr != 0 ? resPtr + <usize>q0 * pixBytes : 0;
    for (let p = 0; p < panels; p++) {
      const nCh = min(NR, outC - p * NR);
      const chBytes = <usize>(p * NR) << 2;
      kernel6x8(
        seg, nseg, wPtr + <usize>p * panelBytes, biasPtr + chBytes,
        out + chBytes, res != 0 ? res + chBytes : 0, pixBytes, nPix, nCh, relu,
      );
    }
  }
}

/**
 * Micro-kernel throughput probe: runs the 6 x 8 kernel `reps` times on 6
 * pixels of `cin` contiguous floats at inPtr and one packed panel at wPtr
 * (cin * 8 floats), all L1-resident for cin <= 256. Writes 6 x 8 floats at
 * outPtr; scratchPtr needs 7 floats. FLOPs = reps * 6 * 8 * cin * 2.
 */
export function gemmPeak(
  inPtr: usize, cin: i32, wPtr: usize, biasPtr: usize, outPtr: usize, scratchPtr: usize, reps: i32,
): void {
  store<i32>(scratchPtr, cin);
  for (let i = 0; i < MR; i++) {
    store<u32>(scratchPtr + (<usize>(i + 1) << 2), <u32>(inPtr + (<usize>(i * cin) << 2)));
  }
  for (let r = 0; r < reps; r++) {
    kernel6x8(scratchPtr, 1, wPtr, biasPtr, outPtr, 0, NR << 2, MR, NR, 0);
  }
}
