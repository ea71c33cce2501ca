// The window kernels (assembly/window.ts) against the whole-image kernels:
// every window of a grid, cut anywhere, gives the whole-image values bit for
// bit; the 8-bit area resize equals the float area resize of x / 255; the
// encoder-input normalisation equals src/model/layout.ts's. Both builds.
import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { BUILDS, mulberry32, randomFloats, setupKernels } from "../helpers/kernels.ts";
import type { Arena } from "../helpers/kernels.ts";
import { resizeArea, resizeBilinear } from "../../src/engine/kernels/resize.ts";
import { maxPool3x3s2 } from "../../src/engine/kernels/pool.ts";
import {
  type GridWindow,
  maxPoolWindow,
  normalizeEncoderInput,
  resizeAreaU8Window,
  resizeBilinearWindow,
  unitTable,
} from "../../src/engine/kernels/window.ts";
import { encoderInputFromUnit } from "../../src/model/layout.ts";

/** Copies rows/columns of a dense h x w x c grid into a new arena buffer; returns its window. */
function upload(
  arena: Arena,
  x: Float32Array,
  h: number,
  w: number,
  c: number,
  y0: number,
  x0: number,
  wh: number,
  ww: number,
): GridWindow {
  const out = new Float32Array(wh * ww * c);
  for (let r = 0; r < wh; r++) {
    out.set(x.subarray(((y0 + r) * w + x0) * c, ((y0 + r) * w + x0 + ww) * c), r * ww * c);
  }
  return { ptr: arena.upload(out).ptr, gridH: h, gridW: w, y0, x0, h: wh, w: ww, channels: c };
}

/** Rows/columns of a dense grid as a new array. */
function crop(
  x: Float32Array,
  w: number,
  c: number,
  y0: number,
  x0: number,
  wh: number,
  ww: number,
): Float32Array {
  const out = new Float32Array(wh * ww * c);
  for (let r = 0; r < wh; r++) {
    out.set(x.subarray(((y0 + r) * w + x0) * c, ((y0 + r) * w + x0 + ww) * c), r * ww * c);
  }
  return out;
}

function whole(
  arena: Arena,
  f: (src: number, dst: number) => void,
  x: Float32Array,
  n: number,
): Float32Array {
  const mark = arena.mark();
  const src = arena.upload(x), dst = arena.f32(n);
  f(src.ptr, dst.ptr);
  const out = arena.view(dst).slice();
  arena.release(mark);
  return out;
}

/** Random output windows of an h x w grid, with the window at each border among them. */
function windows(h: number, w: number, seed: number): [number, number, number, number][] {
  const rand = mulberry32(seed);
  const out: [number, number, number, number][] = [[0, 0, h, w], [0, 0, 1, 1], [
    h - 1,
    w - 1,
    1,
    1,
  ]];
  for (let i = 0; i < 12; i++) {
    const y0 = Math.floor(rand() * h), x0 = Math.floor(rand() * w);
    out.push([y0, x0, 1 + Math.floor(rand() * (h - y0)), 1 + Math.floor(rand() * (w - x0))]);
  }
  return out;
}

for (const build of BUILDS) {
  const { k, arena } = await setupKernels(build);

  Deno.test(`[${build}] resizeBilinearWindow equals resizeBilinear on every window`, () => {
    for (
      const [ih, iw, oh, ow, c] of [[13, 17, 50, 33, 16], [25, 49, 49, 97, 4], [7, 9, 30, 20, 1], [
        5,
        6,
        10,
        12,
        3,
      ]]
    ) {
      const x = randomFloats(ih * iw * c, ih * 31 + c);
      const ref = whole(
        arena,
        (s, d) =>
          resizeBilinear(k, { ptr: s, h: ih, w: iw, channels: c }, {
            ptr: d,
            h: oh,
            w: ow,
            channels: c,
          }),
        x,
        oh * ow * c,
      );
      for (const [y0, x0, wh, ww] of windows(oh, ow, oh + c)) {
        const mark = arena.mark();
        const src = upload(arena, x, ih, iw, c, 0, 0, ih, iw);
        const dst = arena.f32(wh * ww * c);
        resizeBilinearWindow(k, src, {
          ptr: dst.ptr,
          gridH: oh,
          gridW: ow,
          y0,
          x0,
          h: wh,
          w: ww,
          channels: c,
        });
        assertEquals(
          arena.view(dst),
          crop(ref, ow, c, y0, x0, wh, ww),
          `${ih}x${iw}->${oh}x${ow} window ${[y0, x0, wh, ww]}`,
        );
        arena.release(mark);
      }
    }
  });

  Deno.test(`[${build}] resizeBilinearWindow reads only the source window it is given`, () => {
    const [ih, iw, oh, ow, c] = [20, 20, 40, 40, 4];
    const x = randomFloats(ih * iw * c, 5);
    const ref = whole(
      arena,
      (s, d) =>
        resizeBilinear(k, { ptr: s, h: ih, w: iw, channels: c }, {
          ptr: d,
          h: oh,
          w: ow,
          channels: c,
        }),
      x,
      oh * ow * c,
    );
    const mark = arena.mark();
    const src = upload(arena, x, ih, iw, c, 5, 6, 8, 9); // rows 5..12, columns 6..14
    const dst = arena.f32(10 * 12 * c);
    const out = { ptr: dst.ptr, gridH: oh, gridW: ow, y0: 12, x0: 14, h: 10, w: 12, channels: c };
    resizeBilinearWindow(k, src, out);
    assertEquals(arena.view(dst), crop(ref, ow, c, 12, 14, 10, 12));
    throws(() => resizeBilinearWindow(k, src, { ...out, y0: 8 }), /does not hold/);
    arena.release(mark);
  });

  Deno.test(`[${build}] maxPoolWindow equals maxPool3x3s2 on every window`, () => {
    for (const [ih, iw, c] of [[15, 22, 32], [16, 9, 5]]) {
      const x = randomFloats(ih * iw * c, ih + c);
      const oh = Math.floor((ih - 1) / 2) + 1, ow = Math.floor((iw - 1) / 2) + 1;
      const ref = whole(
        arena,
        (s, d) =>
          maxPool3x3s2(k, {
            input: { ptr: s, h: ih, w: iw, c },
            output: { ptr: d, h: oh, w: ow, c },
          }),
        x,
        oh * ow * c,
      );
      for (const [y0, x0, wh, ww] of windows(oh, ow, ih)) {
        const mark = arena.mark();
        const r0 = Math.max(2 * y0 - 1, 0), r1 = Math.min(2 * (y0 + wh), ih);
        const c0 = Math.max(2 * x0 - 1, 0), c1 = Math.min(2 * (x0 + ww), iw);
        const src = upload(arena, x, ih, iw, c, r0, c0, r1 - r0, c1 - c0);
        const dst = arena.f32(wh * ww * c);
        maxPoolWindow(k, src, {
          ptr: dst.ptr,
          gridH: oh,
          gridW: ow,
          y0,
          x0,
          h: wh,
          w: ww,
          channels: c,
        });
        assertEquals(arena.view(dst), crop(ref, ow, c, y0, x0, wh, ww));
        arena.release(mark);
      }
    }
  });

  Deno.test(`[${build}] resizeAreaU8Window equals the float area resize of x / 255, bit for bit`, () => {
    const rand = mulberry32(9);
    for (
      const [ih, iw, oh, ow, px, c] of [[97, 131, 24, 33, 3, 3], [61, 83, 61, 40, 4, 3], [
        50,
        70,
        13,
        17,
        1,
        1,
      ], [40, 40, 40, 40, 3, 3]]
    ) {
      const bytes = Uint8Array.from({ length: ih * iw * px }, () => Math.floor(rand() * 256));
      const lut = unitTable();
      const unit = new Float32Array(ih * iw * c);
      for (let i = 0; i < ih * iw; i++) {
        for (let ch = 0; ch < c; ch++) unit[i * c + ch] = bytes[i * px + ch] / 255;
      }
      const ref = whole(
        arena,
        (s, d) =>
          resizeArea(k, { ptr: s, h: ih, w: iw, channels: c }, {
            ptr: d,
            h: oh,
            w: ow,
            channels: c,
          }),
        unit,
        oh * ow * c,
      );
      const mark = arena.mark();
      const lutBuf = arena.upload(lut);
      const src = arena.bytes(bytes.length);
      new Uint8Array(k.memory.buffer, src, bytes.length).set(bytes);
      for (const [y0, x0, wh, ww] of windows(oh, ow, ih + px)) {
        const m = arena.mark();
        const dst = arena.f32(wh * ww * 4);
        resizeAreaU8Window(
          k,
          {
            ptr: src,
            gridH: ih,
            gridW: iw,
            y0: 0,
            x0: 0,
            h: ih,
            w: iw,
            pixelBytes: px,
            channels: c,
          },
          lutBuf.ptr,
          { ptr: dst.ptr, gridH: oh, gridW: ow, y0, x0, h: wh, w: ww, channels: c, stride: 4 },
        );
        const got = arena.view(dst).filter((_, i) => i % 4 < c);
        assertEquals(
          got,
          crop(ref, ow, c, y0, x0, wh, ww),
          `${ih}x${iw}x${px}->${oh}x${ow} window ${[y0, x0, wh, ww]}`,
        );
        arena.release(m);
      }
      arena.release(mark);
    }
  });

  Deno.test(`[${build}] normalizeEncoderInput equals layout.ts's encoder input`, () => {
    const n = 257, cfg = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } as const;
    const rgb = randomFloats(n * 3, 3, 0, 1), mask = randomFloats(n, 4, 0, 1);
    const want = new Float32Array(n * 4);
    encoderInputFromUnit(rgb, mask, n, cfg, want);
    const mark = arena.mark();
    const buf = arena.f32(n * 4),
      m = arena.upload(mask),
      params = arena.upload(Float32Array.from([...cfg.mean, ...cfg.std]));
    const v = arena.view(buf);
    for (let i = 0; i < n; i++) v.set(rgb.subarray(3 * i, 3 * i + 3), 4 * i);
    normalizeEncoderInput(k, buf.ptr, m.ptr, n, params.ptr);
    assertEquals(arena.view(buf), want);
    arena.release(mark);
  });
}
