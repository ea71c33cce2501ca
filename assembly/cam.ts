// The Continuous Alignment Module + implicit function (train/model.py's
// `axis_support` and `ImplicitDecoder.query`), and the logit -> probability
// output stage.
//
// `proj` is the per-cell first-layer term feat_proj(latent) (it already holds
// W1f·F + b1), so per target pixel and support cell the kernel adds only the
// positional part W1p·[rel_y, rel_x, cell_y, cell_x, coord_y, coord_x (, prior)], applies
// ReLU, runs the hidden layers and the output layer, and blends the four
// predictions with the opposite-area weights.
//
// Work goes in blocks of BLOCK target pixels along a row: their 4 support
// cells each form a (4*BLOCK)-row activation matrix, pushed through each
// layer by a register-tiled GEMM with weights packed input-major (6 or 4 rows
// x 8 outputs per tile, see denseRelu): each weight vector loaded feeds 6 (4)
// multiply-adds, each broadcast activation 2. Wider tiles (4 x 12: 12
// accumulators + 3 weight vectors + the broadcast) need 16 vector registers,
// more than V8 leaves on x64: they spilled and ran 25% slower. The y-support,
// rel_y, coord_y and cell terms are hoisted per row (rowTerms); the x ones
// are computed per pixel (a per-call column table was 9% faster without
// hidden layers but made no measurable difference with them, so the scratch
// stays independent of the window). bench/README.md has the measurements. Each row of the GEMM accumulates in the
// same order whatever tile computes it, and each pixel depends only on its
// own global coordinates, so any split of the target window gives
// bit-identical results.

import { madd } from "./simd";

/** Target pixels per block: 4 x BLOCK activation rows go through each layer together. */
const BLOCK: i32 = 3;

// --------------------------------------------------------------------------
// Parameter block (float32, built by src/engine/kernels/cam.ts's
// packImplicitParams; widths w[0..n] with n = nHidden, all multiples of 4):
//   pos      [nPos][w0]       pos weights transposed: row i = input i's weights
//                             (rel_y, rel_x, cell_y, cell_x, coord_y, coord_x
//                             and, when nPos is 7, the prior)
//   for each hidden layer l = 0..n-1 (K = w[l] inputs, N = w[l+1] outputs):
//     weight [K][N]           transposed: row k = input k's weight to each output
//     bias   [N]
//   outW     [w[n]]           output-layer weights
//   outB     [4]              output bias, then 3 zeros (keeps 16-byte alignment)
//
// Scratch (floats): 2*w0 (row terms of the two y-supports) + 8 (rel_x of a
// block) + 2 * 4*BLOCK * max(w) (two activation buffers) = 2*w0 + 8 + 24*max(w).

// --------------------------------------------------------------------------
// support cells, in integers and float32 exactly as axis_support()

/** floor(((2j+1)*nf - nt) / (2*nt)): the lower support cell, before clamping. */
// @ts-ignore: decorator
@inline
function supportLo(j: i32, nf: i32, nt: i32): i32 {
  const num: i64 = ((<i64>j << 1) + 1) * <i64>nf - <i64>nt;
  const den: i64 = <i64>nt << 1;
  let q = num / den; // truncates toward zero: fix up negatives to floor
  if (num < 0 && q * den != num) q -= 1;
  return <i32>q;
}

// @ts-ignore: decorator
@inline
function clampCell(i: i32, nf: i32): i32 {
  return i < 0 ? 0 : (i > nf - 1 ? nf - 1 : i);
}

/** 2u = (2j+1)*nf / nt in float32 (the pixel centre in half-cell units). */
// @ts-ignore: decorator
@inline
function twoU(j: i32, nf: i32, nt: i32): f32 {
  return <f32>(((<i64>j << 1) + 1) * <i64>nf) / <f32>nt;
}

/** rel = 2u - (2i + 1): offset from cell i's centre, in cell units. */
// @ts-ignore: decorator
@inline
function relOf(two_u: f32, i: i32): f32 {
  return two_u - <f32>((i << 1) + 1);
}

/** coord = (2j+1)/nt - 1: the pixel centre in [-1, 1]. */
// @ts-ignore: decorator
@inline
function coordOf(j: i32, nt: i32): f32 {
  return <f32>((j << 1) + 1) / <f32>nt - <f32>1;
}

// --------------------------------------------------------------------------
// the query

/**
 * Logits of the target window (ty0, tx0, th, tw) of an Ht x Wt grid over the
 * extent of an Hf x Wf feature grid.
 *
 * proj: window (fy0, fx0, fh, fw) of the per-cell first-layer grid, cell
 * (r, c) at projPtr + ((r * fw + c) * projStride) * 4, C0 = widths[0]
 * channels; it must hold every support cell of the target window (the
 * TypeScript wrapper checks; fh is not read). Output: th x tw floats, pixel
 * (y, x) at outPtr + (y * outStride + x) * 4. widthsPtr: nHidden + 1 i32 widths.
 * nPos: 6 positional inputs, or 7 with the prior: the stage's mask upsampled
 * to the target window, a probability p per pixel at priorPtr + (y *
 * priorStride + x) * 4 (not read when nPos is 6), entering as 2p - 1.
 */
export function implicitQuery(
  projPtr: usize, projStride: i32, fy0: i32, fx0: i32, fh: i32, fw: i32,
  Hf: i32, Wf: i32, C0: i32, Ht: i32, Wt: i32,
  ty0: i32, tx0: i32, th: i32, tw: i32,
  paramsPtr: usize, nPos: i32, nHidden: i32, widthsPtr: usize,
  priorPtr: usize, priorStride: i32,
  outPtr: usize, outStride: i32, scratchPtr: usize,
): void {
  let maxW = C0;
  for (let l = 1; l <= nHidden; l++) maxW = max(maxW, load<i32>(widthsPtr + (<usize>l << 2)));
  const rowT = scratchPtr; // [2][C0]
  const relX = rowT + (<usize>C0 << 3); // [BLOCK][2]: rel_x lo, hi (8 floats)
  const bufA = relX + 32;
  const bufB = bufA + ((<usize>(4 * BLOCK) * <usize>maxW) << 2);
  const cellY: f32 = <f32>(Hf << 1) / <f32>Ht;
  const cellX: f32 = <f32>(Wf << 1) / <f32>Wt;
  const cellBytes = <usize>projStride << 2;
  const projRow = <usize>fw * cellBytes;
  const K = load<i32>(widthsPtr + (<usize>nHidden << 2)); // inputs of the output layer
  const outW = paramsPtr + (<usize>implicitHiddenFloats(C0, nPos, nHidden, widthsPtr) << 2);
  const hasPrior = nPos == 7;
  for (let y = 0; y < th; y++) {
    const j = ty0 + y;
    const lo = supportLo(j, Hf, Ht);
    const ylo = clampCell(lo, Hf), yhi = clampCell(lo + 1, Hf);
    const tu = twoU(j, Hf, Ht);
    const ryLo = relOf(tu, ylo), ryHi = relOf(tu, yhi);
    rowTerms(paramsPtr, C0, ryLo, ryHi, coordOf(j, Ht), cellY, cellX, rowT);
    const rowLo = projPtr + <usize>(ylo - fy0) * projRow;
    const rowHi = projPtr + <usize>(yhi - fy0) * projRow;
    const out = outPtr + ((<usize>y * <usize>outStride) << 2);
    const priorRow = priorPtr + ((<usize>y * <usize>priorStride) << 2);
    for (let x0 = 0; x0 < tw; x0 += BLOCK) {
      const n = min(BLOCK, tw - x0);
      for (let q = 0; q < n; q++) {
        const i = tx0 + x0 + q;
        const lx = supportLo(i, Wf, Wt);
        const xlo = clampCell(lx, Wf), xhi = clampCell(lx + 1, Wf);
        const tv = twoU(i, Wf, Wt);
        const rxLo = relOf(tv, xlo), rxHi = relOf(tv, xhi);
        store<f32>(relX + (<usize>q << 3), rxLo);
        store<f32>(relX + (<usize>q << 3), rxHi, 4);
        const cLo = <usize>(xlo - fx0) * cellBytes, cHi = <usize>(xhi - fx0) * cellBytes;
        const prior: f32 = hasPrior ? <f32>2 * load<f32>(priorRow + (<usize>(x0 + q) << 2)) - <f32>1 : 0;
        firstLayer(
          rowLo + cLo, rowLo + cHi, rowHi + cLo, rowHi + cHi, rowT, paramsPtr, C0,
          rxLo, rxHi, coordOf(i, Wt), hasPrior, prior, bufA + <usize>q * (<usize>C0 << 4),
        );
      }
      const last = hiddenLayers(bufA, bufB, n << 2, paramsPtr, C0, nPos, nHidden, widthsPtr);
      for (let q = 0; q < n; q++) {
        const preds = outLayer4(last + <usize>q * (<usize>K << 4), K, outW);
        const rx = relX + (<usize>q << 3);
        store<f32>(out + (<usize>(x0 + q) << 2), blend(preds, ryLo, ryHi, load<f32>(rx), load<f32>(rx, 4)));
      }
    }
  }
}

/** Floats of the parameter block before the output layer (pos + hidden layers). */
function implicitHiddenFloats(C0: i32, nPos: i32, nHidden: i32, widthsPtr: usize): i32 {
  let n = nPos * C0;
  for (let l = 1; l <= nHidden; l++) {
    const K = load<i32>(widthsPtr + (<usize>(l - 1) << 2)), N = load<i32>(widthsPtr + (<usize>l << 2));
    n += K * N + N;
  }
  return n;
}

/**
 * The hidden layers over M rows of first-layer activations in `a`,
 * ping-ponging between `a` and `b`; returns the buffer holding the last.
 */
function hiddenLayers(
  a: usize, b: usize, M: i32, params: usize, C0: i32, nPos: i32, nHidden: i32, widthsPtr: usize,
): usize {
  let w = params + (<usize>(nPos * C0) << 2);
  let K = C0;
  for (let l = 1; l <= nHidden; l++) {
    const N = load<i32>(widthsPtr + (<usize>l << 2));
    const bias = w + (<usize>(K * N) << 2);
    denseRelu(a, M, K, w, bias, N, b);
    w = bias + (<usize>N << 2);
    K = N;
    const t = a;
    a = b;
    b = t;
  }
  return a;
}

/**
 * Per-row part of the first layer for the two y-supports:
 * rowT[s] = Wp_cell_y*cell_y + Wp_cell_x*cell_x + Wp_rel_y*rel_y[s] + Wp_coord_y*coord_y.
 */
function rowTerms(
  pos: usize, C0: i32, ryLo: f32, ryHi: f32, cy: f32, cellY: f32, cellX: f32, rowT: usize,
): void {
  const n = <usize>C0 << 2;
  const vLo = f32x4.splat(ryLo), vHi = f32x4.splat(ryHi), vcy = f32x4.splat(cy);
  const vcellY = f32x4.splat(cellY), vcellX = f32x4.splat(cellX);
  for (let c: usize = 0; c < n; c += 16) {
    const cell = madd(v128.load(pos + 3 * n + c), vcellX, f32x4.mul(v128.load(pos + 2 * n + c), vcellY));
    const base = madd(v128.load(pos + 4 * n + c), vcy, cell);
    const wr = v128.load(pos + c);
    v128.store(rowT + c, madd(wr, vLo, base));
    v128.store(rowT + n + c, madd(wr, vHi, base));
  }
}

/**
 * The 4 first-layer activation rows of one pixel, in support order
 * (lo,lo), (lo,hi), (hi,lo), (hi,hi): ReLU(proj[cell] + rowT[y-support] + column term).
 * The prior's term (pixel-wide, like coord_x) joins the column term.
 */
// @ts-ignore: decorator
@inline
function firstLayer(
  p00: usize, p01: usize, p10: usize, p11: usize, rowT: usize, pos: usize, C0: i32,
  rxLo: f32, rxHi: f32, cx: f32, hasPrior: bool, prior: f32, z: usize,
): void {
  const n = <usize>C0 << 2;
  const zero = f32x4.splat(0);
  const vLo = f32x4.splat(rxLo), vHi = f32x4.splat(rxHi), vcx = f32x4.splat(cx);
  const vp = f32x4.splat(prior);
  for (let c: usize = 0; c < n; c += 16) {
    let base = f32x4.mul(v128.load(pos + 5 * n + c), vcx);
    if (hasPrior) base = madd(v128.load(pos + 6 * n + c), vp, base);
    const wr = v128.load(pos + n + c);
    const colLo = madd(wr, vLo, base), colHi = madd(wr, vHi, base);
    const rLo = v128.load(rowT + c), rHi = v128.load(rowT + n + c);
    v128.store(z + c, f32x4.pmax(zero, f32x4.add(v128.load(p00 + c), f32x4.add(rLo, colLo))));
    v128.store(z + n + c, f32x4.pmax(zero, f32x4.add(v128.load(p01 + c), f32x4.add(rLo, colHi))));
    v128.store(z + 2 * n + c, f32x4.pmax(zero, f32x4.add(v128.load(p10 + c), f32x4.add(rHi, colLo))));
    v128.store(z + 3 * n + c, f32x4.pmax(zero, f32x4.add(v128.load(p11 + c), f32x4.add(rHi, colHi))));
  }
}

/**
 * dst[r][o] = ReLU(bias[o] + sum_k src[r][k] * w[k][o]) for M rows (M even).
 * The relaxed build runs 6-row tiles (12 accumulators + 2 weight vectors +
 * the broadcast: 15 registers); the plain build's separate multiply needs one
 * more, which spills, so it stays at 4 rows (measured: 6 rows are 10% faster
 * relaxed, 8% slower plain).
 */
function denseRelu(src: usize, M: i32, K: i32, w: usize, bias: usize, N: i32, dst: usize): void {
  const nb = <usize>N << 2;
  const kb = <usize>K << 2;
  let r = 0;
  if (ASC_FEATURE_RELAXED_SIMD) {
    for (; r + 6 <= M; r += 6) rows6(src + <usize>r * kb, kb, K, w, bias, nb, dst + <usize>r * nb);
  }
  for (; r + 4 <= M; r += 4) rows4(src + <usize>r * kb, kb, K, w, bias, nb, dst + <usize>r * nb);
  if (r < M) rows2(src + <usize>r * kb, kb, K, w, bias, nb, dst + <usize>r * nb);
}

/** 6 rows of a layer: tiles of 8 outputs, then one of 4 when N % 8 == 4. */
function rows6(src: usize, kb: usize, K: i32, w: usize, bias: usize, nb: usize, dst: usize): void {
  let o: usize = 0;
  for (; o + 32 <= nb; o += 32) tile6x2(src, kb, K, w + o, nb, bias + o, dst + o);
  if (o < nb) tile6x1(src, kb, K, w + o, nb, bias + o, dst + o);
}

/** 4 rows of a layer. */
function rows4(src: usize, kb: usize, K: i32, w: usize, bias: usize, nb: usize, dst: usize): void {
  let o: usize = 0;
  for (; o + 32 <= nb; o += 32) tile4x2(src, kb, K, w + o, nb, bias + o, dst + o);
  if (o < nb) tile4x1(src, kb, K, w + o, nb, bias + o, dst + o);
}

/** 2 rows of a layer. */
function rows2(src: usize, kb: usize, K: i32, w: usize, bias: usize, nb: usize, dst: usize): void {
  let o: usize = 0;
  for (; o + 32 <= nb; o += 32) tile2x2(src, kb, K, w + o, nb, bias + o, dst + o);
  if (o < nb) tile2x1(src, kb, K, w + o, nb, bias + o, dst + o);
}

// The tiles: 6, 4 or 2 rows (row stride kb bytes in src, nb in dst and w's
// k-stride) x 1 or 2 output vectors. Each output accumulates bias + sum over k in order,
// whatever tile computes it.

// @ts-ignore: decorator
@inline
function tile4x2(src: usize, kb: usize, K: i32, w: usize, nb: usize, bias: usize, dst: usize): void {
  const b0 = v128.load(bias), b1 = v128.load(bias, 16);
  let a00 = b0, a01 = b1, a10 = b0, a11 = b1, a20 = b0, a21 = b1, a30 = b0, a31 = b1;
  let s = src;
  const end = src + (<usize>K << 2);
  for (; s < end; s += 4, w += nb) {
    const w0 = v128.load(w), w1 = v128.load(w, 16);
    let x = v128.load32_splat(s);
    a00 = madd(x, w0, a00); a01 = madd(x, w1, a01);
    x = v128.load32_splat(s + kb);
    a10 = madd(x, w0, a10); a11 = madd(x, w1, a11);
    x = v128.load32_splat(s + 2 * kb);
    a20 = madd(x, w0, a20); a21 = madd(x, w1, a21);
    x = v128.load32_splat(s + 3 * kb);
    a30 = madd(x, w0, a30); a31 = madd(x, w1, a31);
  }
  const zero = f32x4.splat(0);
  v128.store(dst, f32x4.pmax(zero, a00));
  v128.store(dst, f32x4.pmax(zero, a01), 16);
  v128.store(dst + nb, f32x4.pmax(zero, a10));
  v128.store(dst + nb, f32x4.pmax(zero, a11), 16);
  v128.store(dst + 2 * nb, f32x4.pmax(zero, a20));
  v128.store(dst + 2 * nb, f32x4.pmax(zero, a21), 16);
  v128.store(dst + 3 * nb, f32x4.pmax(zero, a30));
  v128.store(dst + 3 * nb, f32x4.pmax(zero, a31), 16);
}

// @ts-ignore: decorator
@inline
function tile4x1(src: usize, kb: usize, K: i32, w: usize, nb: usize, bias: usize, dst: usize): void {
  const b0 = v128.load(bias);
  let a0 = b0, a1 = b0, a2 = b0, a3 = b0;
  let s = src;
  const end = src + (<usize>K << 2);
  for (; s < end; s += 4, w += nb) {
    const w0 = v128.load(w);
    a0 = madd(v128.load32_splat(s), w0, a0);
    a1 = madd(v128.load32_splat(s + kb), w0, a1);
    a2 = madd(v128.load32_splat(s + 2 * kb), w0, a2);
    a3 = madd(v128.load32_splat(s + 3 * kb), w0, a3);
  }
  const zero = f32x4.splat(0);
  v128.store(dst, f32x4.pmax(zero, a0));
  v128.store(dst + nb, f32x4.pmax(zero, a1));
  v128.store(dst + 2 * nb, f32x4.pmax(zero, a2));
  v128.store(dst + 3 * nb, f32x4.pmax(zero, a3));
}

// @ts-ignore: decorator
@inline
function tile6x2(src: usize, kb: usize, K: i32, w: usize, nb: usize, bias: usize, dst: usize): void {
  const b0 = v128.load(bias), b1 = v128.load(bias, 16);
  let a00 = b0, a01 = b1, a10 = b0, a11 = b1, a20 = b0, a21 = b1;
  let a30 = b0, a31 = b1, a40 = b0, a41 = b1, a50 = b0, a51 = b1;
  let s = src;
  const end = src + (<usize>K << 2);
  for (; s < end; s += 4, w += nb) {
    const w0 = v128.load(w), w1 = v128.load(w, 16);
    let x = v128.load32_splat(s);
    a00 = madd(x, w0, a00); a01 = madd(x, w1, a01);
    x = v128.load32_splat(s + kb);
    a10 = madd(x, w0, a10); a11 = madd(x, w1, a11);
    x = v128.load32_splat(s + 2 * kb);
    a20 = madd(x, w0, a20); a21 = madd(x, w1, a21);
    x = v128.load32_splat(s + 3 * kb);
    a30 = madd(x, w0, a30); a31 = madd(x, w1, a31);
    x = v128.load32_splat(s + 4 * kb);
    a40 = madd(x, w0, a40); a41 = madd(x, w1, a41);
    x = v128.load32_splat(s + 5 * kb);
    a50 = madd(x, w0, a50); a51 = madd(x, w1, a51);
  }
  const zero = f32x4.splat(0);
  v128.store(dst, f32x4.pmax(zero, a00));
  v128.store(dst, f32x4.pmax(zero, a01), 16);
  v128.store(dst + nb, f32x4.pmax(zero, a10));
  v128.store(dst + nb, f32x4.pmax(zero, a11), 16);
  v128.store(dst + 2 * nb, f32x4.pmax(zero, a20));
  v128.store(dst + 2 * nb, f32x4.pmax(zero, a21), 16);
  v128.store(dst + 3 * nb, f32x4.pmax(zero, a30));
  v128.store(dst + 3 * nb, f32x4.pmax(zero, a31), 16);
  v128.store(dst + 4 * nb, f32x4.pmax(zero, a40));
  v128.store(dst + 4 * nb, f32x4.pmax(zero, a41), 16);
  v128.store(dst + 5 * nb, f32x4.pmax(zero, a50));
  v128.store(dst + 5 * nb, f32x4.pmax(zero, a51), 16);
}

// @ts-ignore: decorator
@inline
function tile6x1(src: usize, kb: usize, K: i32, w: usize, nb: usize, bias: usize, dst: usize): void {
  const b0 = v128.load(bias);
  let a0 = b0, a1 = b0, a2 = b0, a3 = b0, a4 = b0, a5 = b0;
  let s = src;
  const end = src + (<usize>K << 2);
  for (; s < end; s += 4, w += nb) {
    const w0 = v128.load(w);
    a0 = madd(v128.load32_splat(s), w0, a0);
    a1 = madd(v128.load32_splat(s + kb), w0, a1);
    a2 = madd(v128.load32_splat(s + 2 * kb), w0, a2);
    a3 = madd(v128.load32_splat(s + 3 * kb), w0, a3);
    a4 = madd(v128.load32_splat(s + 4 * kb), w0, a4);
    a5 = madd(v128.load32_splat(s + 5 * kb), w0, a5);
  }
  const zero = f32x4.splat(0);
  v128.store(dst, f32x4.pmax(zero, a0));
  v128.store(dst + nb, f32x4.pmax(zero, a1));
  v128.store(dst + 2 * nb, f32x4.pmax(zero, a2));
  v128.store(dst + 3 * nb, f32x4.pmax(zero, a3));
  v128.store(dst + 4 * nb, f32x4.pmax(zero, a4));
  v128.store(dst + 5 * nb, f32x4.pmax(zero, a5));
}

// @ts-ignore: decorator
@inline
function tile2x2(src: usize, kb: usize, K: i32, w: usize, nb: usize, bias: usize, dst: usize): void {
  const b0 = v128.load(bias), b1 = v128.load(bias, 16);
  let a00 = b0, a01 = b1, a10 = b0, a11 = b1;
  let s = src;
  const end = src + (<usize>K << 2);
  for (; s < end; s += 4, w += nb) {
    const w0 = v128.load(w), w1 = v128.load(w, 16);
    let x = v128.load32_splat(s);
    a00 = madd(x, w0, a00); a01 = madd(x, w1, a01);
    x = v128.load32_splat(s + kb);
    a10 = madd(x, w0, a10); a11 = madd(x, w1, a11);
  }
  const zero = f32x4.splat(0);
  v128.store(dst, f32x4.pmax(zero, a00));
  v128.store(dst, f32x4.pmax(zero, a01), 16);
  v128.store(dst + nb, f32x4.pmax(zero, a10));
  v128.store(dst + nb, f32x4.pmax(zero, a11), 16);
}

// @ts-ignore: decorator
@inline
function tile2x1(src: usize, kb: usize, K: i32, w: usize, nb: usize, bias: usize, dst: usize): void {
  const b0 = v128.load(bias);
  let a0 = b0, a1 = b0;
  let s = src;
  const end = src + (<usize>K << 2);
  for (; s < end; s += 4, w += nb) {
    const w0 = v128.load(w);
    a0 = madd(v128.load32_splat(s), w0, a0);
    a1 = madd(v128.load32_splat(s + kb), w0, a1);
  }
  const zero = f32x4.splat(0);
  v128.store(dst, f32x4.pmax(zero, a0));
  v128.store(dst + nb, f32x4.pmax(zero, a1));
}

/** The output layer for 4 rows of K activations: [bias + w·src[r]] for r = 0..3. */
// @ts-ignore: decorator
@inline
function outLayer4(src: usize, K: i32, w: usize): v128 {
  const kb = <usize>K << 2;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (let k: usize = 0; k < kb; k += 16) {
    const wk = v128.load(w + k);
    a0 = madd(v128.load(src + k), wk, a0);
    a1 = madd(v128.load(src + kb + k), wk, a1);
    a2 = madd(v128.load(src + 2 * kb + k), wk, a2);
    a3 = madd(v128.load(src + 3 * kb + k), wk, a3);
  }
  return f32x4.add(hsum4(a0, a1, a2, a3), v128.load32_splat(w + kb));
}

/** [sum(a), sum(b), sum(c), sum(d)]. */
// @ts-ignore: decorator
@inline
function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(f32x4.shuffle(a, b, 0, 1, 4, 5), f32x4.shuffle(a, b, 2, 3, 6, 7));
  const cd = f32x4.add(f32x4.shuffle(c, d, 0, 1, 4, 5), f32x4.shuffle(c, d, 2, 3, 6, 7));
  return f32x4.add(f32x4.shuffle(ab, cd, 0, 2, 4, 6), f32x4.shuffle(ab, cd, 1, 3, 5, 7));
}

/**
 * Area-weighted blend of the 4 support predictions: each weighs the area
 * |rel_y * rel_x| + 1e-9 of the diagonally opposite support, normalised.
 */
// @ts-ignore: decorator
@inline
function blend(p: v128, ryLo: f32, ryHi: f32, rxLo: f32, rxHi: f32): f32 {
  const eps: f32 = 1e-9;
  const a0 = abs<f32>(ryLo * rxLo) + eps, a1 = abs<f32>(ryLo * rxHi) + eps;
  const a2 = abs<f32>(ryHi * rxLo) + eps, a3 = abs<f32>(ryHi * rxHi) + eps;
  const num = f32x4.extract_lane(p, 0) * a3 + f32x4.extract_lane(p, 1) * a2 +
    f32x4.extract_lane(p, 2) * a1 + f32x4.extract_lane(p, 3) * a0;
  return num / (a0 + a1 + a2 + a3);
}

// --------------------------------------------------------------------------
// logits -> probabilities

// sigmoid(x) = 1 / (1 + e^-x) = e^x / (1 + e^x); with t = e^-|x| in (0, 1]
// both tails are free of cancellation: x >= 0 -> 1/(1+t), x < 0 -> t/(1+t).
// e^y for y in [-87, 0]: y = n ln2 + r with |r| <= ln2/2, e^r by its Taylor
// polynomial to degree 7 (relative error < 1e-8 before float32 rounding),
// 2^n built in the exponent bits. Identical on every lane and in every tail.

// @ts-ignore: decorator
@inline
function expNeg(y: v128): v128 {
  y = f32x4.max(y, f32x4.splat(-87));
  const n = f32x4.nearest(f32x4.mul(y, f32x4.splat(1.4426950408889634)));
  let r = madd(n, f32x4.splat(-0.693145751953125), y); // ln2 high part (exact n*hi)
  r = madd(n, f32x4.splat(-1.4286068203094173e-6), r); // ln2 low part
  let p = f32x4.splat(1.0 / 5040.0);
  p = madd(p, r, f32x4.splat(1.0 / 720.0));
  p = madd(p, r, f32x4.splat(1.0 / 120.0));
  p = madd(p, r, f32x4.splat(1.0 / 24.0));
  p = madd(p, r, f32x4.splat(1.0 / 6.0));
  p = madd(p, r, f32x4.splat(0.5));
  p = madd(p, r, f32x4.splat(1));
  p = madd(p, r, f32x4.splat(1));
  const scale = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return f32x4.mul(p, scale);
}

// @ts-ignore: decorator
@inline
function sigmoid4(x: v128): v128 {
  const t = expNeg(f32x4.neg(f32x4.abs(x)));
  const d = f32x4.add(f32x4.splat(1), t);
  const pos = f32x4.div(f32x4.splat(1), d);
  const neg = f32x4.div(t, d);
  return v128.bitselect(pos, neg, f32x4.ge(x, f32x4.splat(0)));
}

/** Vector of the (up to 4) floats at p; lanes past n are 0 (nothing past n is read). */
// @ts-ignore: decorator
@inline
function loadPartial(p: usize, n: i32): v128 {
  let v = f32x4.splat(0);
  if (n > 0) v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (n > 1) v = f32x4.replace_lane(v, 1, load<f32>(p, 4));
  if (n > 2) v = f32x4.replace_lane(v, 2, load<f32>(p, 8));
  if (n > 3) v = f32x4.replace_lane(v, 3, load<f32>(p, 12));
  return v;
}

/** out[i] = sigmoid(in[i]) for n floats (in place allowed). */
export function logitToProb(inPtr: usize, outPtr: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const off = <usize>i << 2;
    v128.store(outPtr + off, sigmoid4(v128.load(inPtr + off)));
  }
  if (i < n) {
    const off = <usize>i << 2;
    const v = sigmoid4(loadPartial(inPtr + off, n - i));
    store<f32>(outPtr + off, f32x4.extract_lane(v, 0));
    if (n - i > 1) store<f32>(outPtr + off, f32x4.extract_lane(v, 1), 4);
    if (n - i > 2) store<f32>(outPtr + off, f32x4.extract_lane(v, 2), 8);
  }
}

/** round(255 * sigmoid(x)) as 4 i32 lanes (half rounds up). */
// @ts-ignore: decorator
@inline
function toByte4(x: v128): v128 {
  const s = madd(sigmoid4(x), f32x4.splat(255), f32x4.splat(0.5));
  return i32x4.trunc_sat_f32x4_s(s);
}

/** out[i] = round(255 * sigmoid(in[i])) as bytes, for n floats (outPtr: byte offset). */
export function sigmoidToU8(inPtr: usize, outPtr: usize, n: i32): void {
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const p = inPtr + (<usize>i << 2);
    const lo = i16x8.narrow_i32x4_u(toByte4(v128.load(p)), toByte4(v128.load(p, 16)));
    const hi = i16x8.narrow_i32x4_u(toByte4(v128.load(p, 32)), toByte4(v128.load(p, 48)));
    v128.store(outPtr + <usize>i, i8x16.narrow_i16x8_u(lo, hi));
  }
  for (; i < n; i += 4) {
    const m = min(4, n - i);
    const b = toByte4(loadPartial(inPtr + (<usize>i << 2), m));
    const o = outPtr + <usize>i;
    store<u8>(o, <u8>i32x4.extract_lane(b, 0));
    if (m > 1) store<u8>(o, <u8>i32x4.extract_lane(b, 1), 1);
    if (m > 2) store<u8>(o, <u8>i32x4.extract_lane(b, 2), 2);
    if (m > 3) store<u8>(o, <u8>i32x4.extract_lane(b, 3), 3);
  }
}
