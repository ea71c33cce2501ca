// Kernels over WINDOWS of global grids, for row strips and tiles.
//
// A window buffer holds rows [y0, y0 + h) x columns [x0, x0 + w) of a global
// grid (gridH x gridW); pixel (gy, gx) of the grid lives at
// ptr + (((gy - y0) * w + (gx - x0)) * stride) * 4. Every output value is
// computed from GLOBAL coordinates with exactly the operations of the
// whole-image kernels (assembly/resize.ts, assembly/pool.ts), so a window
// gives bit-identical values to the same pixels of a whole-image call. The
// caller (src/engine/kernels/window.ts) guarantees that every source pixel a
// window reads lies inside the source window.

import {
  bilinearScalar,
  bilinearVec,
  binEnd,
  binStart,
  srcIndex,
  srcLambda,
} from "./sampling";

// --------------------------------------------------------------------------
// bilinear (half-pixel centres), PyTorch's convention as in resize.ts

/**
 * Bilinear resize of an inH x inW grid to an outH x outW grid, for the output
 * window (oy0, ox0, oh, ow). Source window: (iy0, ix0), row pitch inWinW
 * pixels of inStride floats; output window row pitch ow pixels of outStride
 * floats (a channel slice when outStride > C). C >= 4 runs 4 channels at a
 * time (the last vector overlaps), fewer channels run the scalar formula:
 * the same split as resize.ts.
 */
export function resizeBilinearWindow(
  inPtr: usize, inH: i32, inW: i32, C: i32, inStride: i32, iy0: i32, ix0: i32, inWinW: i32,
  outPtr: usize, outH: i32, outW: i32, outStride: i32, oy0: i32, ox0: i32, oh: i32, ow: i32,
): void {
  const sy: f32 = <f32> inH / <f32> outH;
  const sx: f32 = <f32> inW / <f32> outW;
  const inPix = <usize> inStride << 2;
  const inRow = <usize> inWinW * inPix;
  const outPix = <usize> outStride << 2;
  for (let r = 0; r < oh; r++) {
    const oy = oy0 + r;
    const y0 = srcIndex(sy, oy, inH);
    const ly: f32 = srcLambda(sy, oy, y0);
    const rowA = inPtr + <usize> (y0 - iy0) * inRow;
    const rowB = y0 < inH - 1 ? rowA + inRow : rowA;
    const outRow = outPtr + <usize> r * <usize> ow * outPix;
    for (let c = 0; c < ow; c++) {
      const ox = ox0 + c;
      const x0 = srcIndex(sx, ox, inW);
      const lx: f32 = srcLambda(sx, ox, x0);
      const dx: usize = x0 < inW - 1 ? inPix : 0;
      const a = rowA + <usize> (x0 - ix0) * inPix;
      const b = rowB + <usize> (x0 - ix0) * inPix;
      const o = outRow + <usize> c * outPix;
      if (C >= 4) bilinearVec(a, a + dx, b, b + dx, o, C, <f32> 1 - lx, lx, <f32> 1 - ly, ly);
      else bilinearScalar(a, a + dx, b, b + dx, o, C, <f32> 1 - lx, lx, <f32> 1 - ly, ly);
    }
  }
}

// --------------------------------------------------------------------------
// 3x3 / 2 max-pool, padding 1 (padding never wins), as pool.ts

/**
 * Max-pool of an inH x inW x C grid (contiguous channels) for the output
 * window (oy0, ox0, oh, ow); source window (iy0, ix0) with row pitch inWinW.
 * Only taps inside the GLOBAL grid are compared, so a window's values equal
 * the whole-image pool's.
 */
export function maxPoolWindow(
  inPtr: usize, inH: i32, inW: i32, C: i32, iy0: i32, ix0: i32, inWinW: i32,
  outPtr: usize, oy0: i32, ox0: i32, oh: i32, ow: i32,
): void {
  const pix = <usize> C << 2;
  const inRow = <usize> inWinW * pix;
  for (let r = 0; r < oh; r++) {
    const cy = (oy0 + r) << 1;
    const ya = max(cy - 1, 0), yb = min(cy + 1, inH - 1);
    for (let c = 0; c < ow; c++) {
      const cx = (ox0 + c) << 1;
      const xa = max(cx - 1, 0), xb = min(cx + 1, inW - 1);
      const centre = inPtr + <usize> (cy - iy0) * inRow + <usize> (cx - ix0) * pix;
      const out = outPtr + (<usize> r * <usize> ow + <usize> c) * pix;
      const C4 = C & ~3;
      let ch = 0;
      for (; ch < C4; ch += 4) {
        const off = <usize> ch << 2;
        let m = v128.load(centre + off);
        for (let y = ya; y <= yb; y++) {
          const row = inPtr + <usize> (y - iy0) * inRow + off;
          for (let x = xa; x <= xb; x++) m = f32x4.max(m, v128.load(row + <usize> (x - ix0) * pix));
        }
        v128.store(out + off, m);
      }
      for (; ch < C; ch++) {
        const off = <usize> ch << 2;
        let m = load<f32>(centre + off);
        for (let y = ya; y <= yb; y++) {
          const row = inPtr + <usize> (y - iy0) * inRow + off;
          for (let x = xa; x <= xb; x++) m = max(m, load<f32>(row + <usize> (x - ix0) * pix));
        }
        store<f32>(out + off, m);
      }
    }
  }
}

// --------------------------------------------------------------------------
// area resize from 8-bit samples

// Convention: a sample x becomes x/255 in float32 first (a 256-entry table
// holding float32(x / 255), which equals PyTorch's float32 division x / 255.0
// for every byte), then bins are averaged exactly as resize.ts's area kernel
// (sum row by row from 0, then / bin height / bin width). So the result is
// bit-identical to area-resizing the float image image/255 — PyTorch's order
// (train/model.py divides by 255 before resizing) — without a float copy of
// the full-size image. Averaging bytes first and dividing after would differ
// in the last bits.

/**
 * Area resize (adaptive average pooling) of C channels of 8-bit pixels
 * (inPix bytes apart: 1 for a mask, 3 or 4 for RGB(A)) of an inH x inW grid
 * to an outH x outW grid, output window (oy0, ox0, oh, ow) of float32 with
 * outStride floats per pixel (channels 0..C-1 written). Source window
 * (iy0, ix0) with row pitch inWinW pixels. lut: 256 floats, lut[x] = x / 255.
 */
export function resizeAreaU8Window(
  inPtr: usize, inH: i32, inW: i32, C: i32, inPix: i32, iy0: i32, ix0: i32, inWinW: i32,
  lut: usize,
  outPtr: usize, outH: i32, outW: i32, outStride: i32, oy0: i32, ox0: i32, oh: i32, ow: i32,
): void {
  const inRow = <usize> inWinW * <usize> inPix;
  for (let r = 0; r < oh; r++) {
    const oy = oy0 + r;
    const h0 = binStart(oy, inH, outH);
    const kh = binEnd(oy, inH, outH) - h0;
    const outRow = outPtr + ((<usize> r * <usize> ow * <usize> outStride) << 2);
    for (let c = 0; c < ow; c++) {
      const ox = ox0 + c;
      const w0 = binStart(ox, inW, outW);
      const kw = binEnd(ox, inW, outW) - w0;
      const src = inPtr + <usize> (h0 - iy0) * inRow + <usize> (w0 - ix0) * <usize> inPix;
      const o = outRow + ((<usize> c * <usize> outStride) << 2);
      for (let ch = 0; ch < C; ch++) {
        let sum: f32 = 0;
        let row = src + <usize> ch;
        for (let i = 0; i < kh; i++, row += inRow) {
          let p = row;
          for (let j = 0; j < kw; j++, p += <usize> inPix) {
            sum += load<f32>(lut + (<usize> load<u8>(p) << 2));
          }
        }
        store<f32>(o + (<usize> ch << 2), sum / <f32> kh / <f32> kw);
      }
    }
  }
}

// --------------------------------------------------------------------------
// encoder input

/**
 * In place over n pixels of 4 floats (RGB in [0, 1], channel 3 ignored):
 * channel c = (v - mean[c]) / std[c], channel 3 = mask * 2 - 1, each step
 * rounded to float32 as train/model.py's `encoder_input`.
 * params: mean[3], std[3] as floats.
 */
export function normalizeEncoderInput(ptr: usize, maskPtr: usize, n: i32, params: usize): void {
  const m0 = load<f32>(params), m1 = load<f32>(params, 4), m2 = load<f32>(params, 8);
  const s0 = load<f32>(params, 12), s1 = load<f32>(params, 16), s2 = load<f32>(params, 20);
  for (let i = 0; i < n; i++) {
    const p = ptr + (<usize> i << 4);
    store<f32>(p, (load<f32>(p) - m0) / s0);
    store<f32>(p, (load<f32>(p, 4) - m1) / s1, 4);
    store<f32>(p, (load<f32>(p, 8) - m2) / s2, 8);
    const t: f32 = load<f32>(maskPtr + (<usize> i << 2)) * <f32> 2;
    store<f32>(p, t - <f32> 1, 12);
  }
}
