// The CAM + implicit-function kernel against the scalar reference
// (tests/reference/cam.ts) and against train/model.py's ImplicitDecoder.query
// (tests/fixtures/cam_small.json, from train/make_cam_fixture.py), on both
// builds; and the logit -> probability kernels.
import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { BUILDS, randomFloats, setupKernels } from "../helpers/kernels.ts";
import type { Arena, KernelInstance } from "../helpers/kernels.ts";
import {
  axisSupport,
  type DecoderTensors,
  implicitQueryRef,
  sigmoidRef,
} from "../reference/cam.ts";
import {
  implicitParamsFloats,
  type ImplicitParamsRef,
  implicitQuery,
  implicitScratchFloats,
  logitToProb,
  packImplicitParams,
  sigmoidToU8,
  supportCells,
  uploadImplicitParams,
} from "../../src/engine/kernels/cam.ts";

/**
 * Largest |a - e| / (|e| + s), s = the mean |e|: relative error for logits of
 * typical size, scaled by the typical size for logits near zero (where the
 * sum of many terms cancels and a relative error means nothing).
 */
function maxErr(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert(actual.length === expected.length, `length ${actual.length} vs ${expected.length}`);
  let s = 0;
  for (let i = 0; i < expected.length; i++) s += Math.abs(expected[i]) / expected.length;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.abs(actual[i] - expected[i]) / (Math.abs(expected[i]) + s);
    worst = Number.isNaN(e) ? Infinity : Math.max(worst, e);
  }
  return worst;
}

/** Random decoder tensors for `widths` (uniform, scaled by 1/sqrt(fan-in) as PyTorch's init). */
function randomDecoder(widths: number[], seed: number, posDims: 6 | 7 = 6): DecoderTensors {
  const u = (n: number, fanIn: number, s: number) =>
    randomFloats(n, s, -1 / Math.sqrt(fanIn), 1 / Math.sqrt(fanIn));
  const hidden = [];
  for (let l = 1; l < widths.length; l++) {
    hidden.push({
      weight: u(widths[l] * widths[l - 1], widths[l - 1], seed + 10 * l),
      bias: u(widths[l], widths[l - 1], seed + 10 * l + 1),
    });
  }
  const last = widths[widths.length - 1];
  return {
    widths,
    pos: randomFloats(widths[0] * posDims, seed, -1, 1),
    posDims,
    hidden,
    outW: u(last, last, seed + 1000),
    outB: u(1, last, seed + 1001)[0],
  };
}

/** The decoder's tensors under their safetensors names. */
function lookup(t: DecoderTensors): (name: string) => Float32Array | undefined {
  const named: Record<string, Float32Array> = {
    "mlp.pos.weight": t.pos,
    "mlp.out.weight": t.outW,
    "mlp.out.bias": new Float32Array([t.outB]),
  };
  t.hidden.forEach((l, i) => {
    named[`mlp.hidden${i}.weight`] = l.weight;
    named[`mlp.hidden${i}.bias`] = l.bias;
  });
  return (name) => named[name];
}

/** A query problem: decoder, grids and the full proj grid [Hf][Wf][w0]. */
interface Problem {
  t: DecoderTensors;
  Hf: number;
  Wf: number;
  Ht: number;
  Wt: number;
  proj: Float32Array;
}

function problem(
  widths: number[],
  Hf: number,
  Wf: number,
  Ht: number,
  Wt: number,
  seed: number,
): Problem {
  return {
    t: randomDecoder(widths, seed),
    Hf,
    Wf,
    Ht,
    Wt,
    proj: randomFloats(Hf * Wf * widths[0], seed + 7, -1, 1),
  };
}

interface Options {
  /** the proj window handed to the kernel (default: the support cells only) */
  projWin?: [number, number, number, number];
  /** floats per proj cell (default w0) */
  projStride?: number;
  /** logit row stride (default the window width) */
  rowStride?: number;
  /** the prior of the window [h][w] (7-input decoders), laid out with `priorStride` */
  prior?: Float32Array;
  /** floats from one prior row to the next (default the window width) */
  priorStride?: number;
}

/** Runs the kernel on window `win` of the target grid; returns the h x w logits. */
function query(
  k: KernelInstance,
  arena: Arena,
  p: Problem,
  params: ImplicitParamsRef,
  win: [number, number, number, number],
  opt: Options = {},
): Float32Array {
  const [ty0, tx0, th, tw] = win;
  const C0 = p.t.widths[0];
  const [r0, r1] = supportCells(p.Ht, p.Hf, ty0, th);
  const [c0, c1] = supportCells(p.Wt, p.Wf, tx0, tw);
  const [fy0, fx0, fh, fw] = opt.projWin ?? [r0, c0, r1 - r0, c1 - c0];
  const stride = opt.projStride ?? C0;
  const rowStride = opt.rowStride ?? tw;
  const mark = arena.mark();
  // copy the window out of the full grid, with NaN in any padding channels
  const buf = arena.f32(fh * fw * stride);
  const view = arena.view(buf).fill(NaN);
  for (let r = 0; r < fh; r++) {
    for (let c = 0; c < fw; c++) {
      const from = ((fy0 + r) * p.Wf + fx0 + c) * C0;
      view.set(p.proj.subarray(from, from + C0), (r * fw + c) * stride);
    }
  }
  const out = arena.f32(th * rowStride);
  arena.view(out).fill(-123);
  const scratch = arena.f32(implicitScratchFloats(p.t.widths));
  arena.view(scratch).fill(NaN); // the kernel must not read scratch it did not write
  let prior: { ptr: number; rowStride: number } | undefined;
  if (opt.prior) {
    const ps = opt.priorStride ?? tw;
    const pb = arena.f32((th - 1) * ps + tw);
    const pv = arena.view(pb).fill(NaN); // nor the prior's padding
    for (let y = 0; y < th; y++) pv.set(opt.prior.subarray(y * tw, (y + 1) * tw), y * ps);
    prior = { ptr: pb.ptr, rowStride: ps };
  }
  implicitQuery(
    k,
    { ptr: buf.ptr, stride, gridH: p.Hf, gridW: p.Wf, y0: fy0, x0: fx0, h: fh, w: fw },
    { gridH: p.Ht, gridW: p.Wt, y0: ty0, x0: tx0, h: th, w: tw },
    params,
    { ptr: out.ptr, rowStride },
    scratch.ptr,
    prior,
  );
  const plane = arena.view(out);
  const res = new Float32Array(th * tw);
  for (let y = 0; y < th; y++) {
    res.set(plane.subarray(y * rowStride, y * rowStride + tw), y * tw);
    for (let x = tw; x < rowStride; x++) {
      assert(plane[y * rowStride + x] === -123, "wrote past the row");
    }
  }
  arena.release(mark);
  return res;
}

/** Window [y0, x0, h, w] of a full h x w plane. */
function crop(full: Float32Array, W: number, [y0, x0, h, w]: number[]): Float32Array {
  const out = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    out.set(full.subarray((y0 + y) * W + x0, (y0 + y) * W + x0 + w), y * w);
  }
  return out;
}

// --------------------------------------------------------------------------
// golden fixture from PyTorch

interface CamFixture {
  Hf: number;
  Wf: number;
  Ht: number;
  Wt: number;
  widths: number[];
  window: [number, number, number, number];
  proj: number[];
  tensors: Record<string, number[]>;
  axes: Record<
    "y" | "x",
    { lo: number[]; hi: number[]; relLo: number[]; relHi: number[]; coord: number[] }
  >;
  logits: number[];
  windowLogits: number[];
}
const fx: CamFixture = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/cam_small.json", import.meta.url)),
);
const fxGet = (name: string) => (fx.tensors[name] ? new Float32Array(fx.tensors[name]) : undefined);

function fixtureDecoder(): DecoderTensors {
  const w = fx.widths;
  return {
    widths: w,
    pos: fxGet("mlp.pos.weight")!,
    hidden: w.slice(1).map((_, i) => ({
      weight: fxGet(`mlp.hidden${i}.weight`)!,
      bias: fxGet(`mlp.hidden${i}.bias`)!,
    })),
    outW: fxGet("mlp.out.weight")!,
    outB: fxGet("mlp.out.bias")![0],
  };
}
const fxProblem = (): Problem => ({
  t: fixtureDecoder(),
  Hf: fx.Hf,
  Wf: fx.Wf,
  Ht: fx.Ht,
  Wt: fx.Wt,
  proj: new Float32Array(fx.proj),
});

Deno.test("CAM reference: support cells and positions bit-exact with axis_support", () => {
  for (const [axis, nt, nf] of [["y", fx.Ht, fx.Hf], ["x", fx.Wt, fx.Wf]] as const) {
    const got = axisSupport(nt, nf, 0, nt);
    const want = fx.axes[axis];
    assertEquals(Array.from(got.lo), want.lo);
    assertEquals(Array.from(got.hi), want.hi);
    const f32 = (xs: number[]) => xs.map(Math.fround); // the fixture holds shortest decimals
    assertEquals(Array.from(got.relLo), f32(want.relLo));
    assertEquals(Array.from(got.relHi), f32(want.relHi));
    assertEquals(Array.from(got.coord), f32(want.coord));
  }
});

Deno.test("CAM reference matches ImplicitDecoder.query", () => {
  const p = fxProblem();
  const full = implicitQueryRef(p.proj, p.Hf, p.Wf, p.t, p.Ht, p.Wt);
  const errFull = maxErr(full, fx.logits);
  assert(errFull < 1e-6, `full grid: err ${errFull}`);
  const win = implicitQueryRef(p.proj, p.Hf, p.Wf, p.t, p.Ht, p.Wt, fx.window);
  const errWin = maxErr(win, fx.windowLogits);
  assert(errWin < 1e-6, `window: err ${errWin}`);
});

for (const build of BUILDS) {
  Deno.test(`implicitQuery matches ImplicitDecoder.query (${build})`, async () => {
    const { k, arena } = await setupKernels(build);
    const p = fxProblem();
    const params = uploadImplicitParams(arena, fx.widths, fxGet);
    const full = query(k, arena, p, params, [0, 0, fx.Ht, fx.Wt]);
    const errFull = maxErr(full, fx.logits);
    assert(errFull < 1e-5, `full grid: err ${errFull}`);
    const win = query(k, arena, p, params, fx.window);
    const errWin = maxErr(win, fx.windowLogits);
    assert(errWin < 1e-5, `window: err ${errWin}`);
  });

  Deno.test(`implicitQuery matches the reference on odd grids and widths (${build})`, async () => {
    const { k, arena } = await setupKernels(build);
    // [Hf, Wf, Ht, Wt]: integer, non-integer (2.37x), downscaled and equal grids
    const grids: [number, number, number, number][] = [
      [5, 7, 12, 16],
      [9, 11, 21, 26],
      [17, 13, 40, 31], // 2.35x / 2.38x
      [6, 5, 24, 20], // 4x
      [10, 9, 7, 4], // queried below the feature resolution
      [6, 7, 6, 7], // same resolution
      [1, 3, 5, 9], // a single feature row
    ];
    let seed = 100;
    for (const widths of [[8], [32, 32, 32], [12, 20], [16, 12, 8], [4, 28, 8, 36]]) {
      for (const [Hf, Wf, Ht, Wt] of grids) {
        const p = problem(widths, Hf, Wf, Ht, Wt, seed += 17);
        const mark = arena.mark();
        const params = uploadImplicitParams(arena, widths, lookup(p.t));
        const got = query(k, arena, p, params, [0, 0, Ht, Wt]);
        arena.release(mark);
        const err = maxErr(got, implicitQueryRef(p.proj, Hf, Wf, p.t, Ht, Wt));
        assert(err < 1e-5, `widths [${widths}] ${Hf}x${Wf} -> ${Ht}x${Wt}: err ${err}`);
      }
    }
  });

  Deno.test(`implicitQuery windows, splits and strides are bit-identical to the full grid (${build})`, async () => {
    const { k, arena } = await setupKernels(build);
    const widths = [12, 20];
    const p = problem(widths, 17, 13, 40, 31, 5);
    const params = uploadImplicitParams(arena, widths, lookup(p.t));
    const full = query(k, arena, p, params, [0, 0, 40, 31]);
    const same = (got: Float32Array, want: Float32Array, what: string) => {
      for (let i = 0; i < want.length; i++) {
        assert(Object.is(got[i], want[i]), `${what}: value ${i}`);
      }
    };
    // windows at every border and inside, proj cut to their support cells
    for (
      const win of [[0, 0, 5, 7], [35, 24, 5, 7], [0, 20, 9, 11], [33, 0, 7, 3], [13, 9, 11, 10], [
        39,
        30,
        1,
        1,
      ]]
    ) {
      same(
        query(k, arena, p, params, win as [number, number, number, number]),
        crop(full, 31, win),
        `window ${win}`,
      );
    }
    // a proj window larger than needed, padded cells and a wider logit plane
    const win: [number, number, number, number] = [13, 9, 11, 10];
    same(
      query(k, arena, p, params, win, { projWin: [2, 1, 14, 11], projStride: 20, rowStride: 17 }),
      crop(full, 31, win),
      "padded",
    );
    // rows split into pieces
    const rows = [0, 1, 13, 14, 27, 40];
    const pieces = new Float32Array(40 * 31);
    for (let i = 0; i + 1 < rows.length; i++) {
      pieces.set(query(k, arena, p, params, [rows[i], 0, rows[i + 1] - rows[i], 31]), rows[i] * 31);
    }
    same(pieces, full, "row split");
    const err = maxErr(full, implicitQueryRef(p.proj, 17, 13, p.t, 40, 31));
    assert(err < 1e-5, `err ${err}`);
  });

  Deno.test(`implicitQuery with the prior matches the reference; windows are bit-identical (${build})`, async () => {
    const { k, arena } = await setupKernels(build);
    let seed = 400;
    for (const widths of [[8], [32, 32, 32], [12, 20]]) {
      for (const [Hf, Wf, Ht, Wt] of [[9, 11, 21, 26], [17, 13, 40, 31], [6, 7, 6, 7]]) {
        const p = {
          ...problem(widths, Hf, Wf, Ht, Wt, seed += 13),
          t: randomDecoder(widths, seed, 7),
        };
        const prior = randomFloats(Ht * Wt, seed + 3, 0, 1);
        const mark = arena.mark();
        const params = uploadImplicitParams(arena, widths, lookup(p.t), 7);
        const full = query(k, arena, p, params, [0, 0, Ht, Wt], { prior });
        const want = implicitQueryRef(p.proj, Hf, Wf, p.t, Ht, Wt, undefined, undefined, prior);
        const err = maxErr(full, want);
        assert(err < 1e-5, `prior, widths [${widths}] ${Hf}x${Wf} -> ${Ht}x${Wt}: err ${err}`);
        // the prior moves the logits: a model that ignored it would fail here
        const flat = query(k, arena, p, params, [0, 0, Ht, Wt], { prior: prior.map((v) => 1 - v) });
        assert(maxErr(flat, full) > 1e-3, "the prior makes no difference");
        // a window with a padded prior plane gives the full grid's values bit for bit
        const win: [number, number, number, number] = [2, 1, Ht - 3, Wt - 2];
        const got = query(k, arena, p, params, win, {
          prior: crop(prior, Wt, win),
          priorStride: Wt + 3,
          rowStride: Wt,
        });
        const ref = crop(full, Wt, win);
        for (let i = 0; i < ref.length; i++) assert(Object.is(got[i], ref[i]), `window value ${i}`);
        arena.release(mark);
      }
    }
  });

  Deno.test(`implicitQuery on 6K-sized grids (${build})`, async () => {
    const { k, arena } = await setupKernels(build);
    const widths = [8, 12];
    const t = randomDecoder(widths, 77);
    const params = uploadImplicitParams(arena, widths, lookup(t));
    // [Hf, Wf, Ht, Wt] and target windows at the far ends and inside
    const cases: [number[], [number, number, number, number]][] = [
      [[1499, 2011, 5997, 8000], [5990, 7993, 7, 7]],
      [[1499, 2011, 5997, 8000], [0, 0, 5, 6]],
      [[1500, 2000, 6000, 8000], [3001, 4093, 6, 9]],
      [[3000, 4000, 6000, 8000], [5994, 2, 6, 5]],
    ];
    for (const [[Hf, Wf, Ht, Wt], win] of cases) {
      const [r0, r1] = supportCells(Ht, Hf, win[0], win[2]);
      const [c0, c1] = supportCells(Wt, Wf, win[1], win[3]);
      const projWin: [number, number, number, number] = [r0, c0, r1 - r0, c1 - c0];
      const proj = randomFloats((r1 - r0) * (c1 - c0) * widths[0], r0 + c0, -1, 1);
      const buf = arena.upload(proj);
      const out = arena.f32(win[2] * win[3]);
      const scratch = arena.f32(implicitScratchFloats(widths));
      implicitQuery(
        k,
        { ptr: buf.ptr, gridH: Hf, gridW: Wf, y0: r0, x0: c0, h: r1 - r0, w: c1 - c0 },
        { gridH: Ht, gridW: Wt, y0: win[0], x0: win[1], h: win[2], w: win[3] },
        params,
        { ptr: out.ptr },
        scratch.ptr,
      );
      const want = implicitQueryRef(proj, Hf, Wf, t, Ht, Wt, win, projWin);
      const err = maxErr(arena.view(out), want);
      assert(err < 1e-5, `${Hf}x${Wf} -> ${Ht}x${Wt} window ${win}: err ${err}`);
    }
  });

  Deno.test(`implicitQuery checks its arguments (${build})`, async () => {
    const { k, arena } = await setupKernels(build);
    const widths = [8, 12];
    const p = problem(widths, 6, 8, 13, 17, 9);
    const params = uploadImplicitParams(arena, widths, lookup(p.t));
    const proj = arena.upload(p.proj);
    const out = arena.f32(13 * 17);
    const scratch = arena.f32(implicitScratchFloats(widths));
    const pw = { ptr: proj.ptr, gridH: 6, gridW: 8, y0: 0, x0: 0, h: 6, w: 8 };
    const tw = { gridH: 13, gridW: 17, y0: 0, x0: 0, h: 13, w: 17 };
    const call = (
      over: { proj?: object; target?: object; params?: object; out?: object; scratch?: number },
    ) =>
      implicitQuery(
        k,
        { ...pw, ...over.proj },
        { ...tw, ...over.target },
        { ...params, ...over.params },
        { ptr: out.ptr, ...over.out },
        over.scratch ?? scratch.ptr,
      );
    call({}); // valid
    // a window of the grid that misses support cells of the target rows / columns
    throws(() => call({ proj: { y0: 1, h: 5, ptr: proj.ptr + 8 * 8 * 4 } }), /do not cover/);
    throws(() => call({ proj: { w: 7 } }), /do not cover/);
    throws(() => call({ target: { y0: 10, h: 3 }, proj: { y0: 0, h: 4 } }), /do not cover/);
    throws(() => call({ target: { h: 14 } }), RangeError); // beyond the target grid
    throws(() => call({ target: { x0: -1 } }), RangeError);
    throws(() => call({ proj: { gridH: 5 } }), RangeError); // window beyond the grid
    throws(() => call({ proj: { stride: 4 } }), RangeError); // stride below C0
    throws(() => call({ out: { rowStride: 16 } }), RangeError);
    throws(() => call({ params: { widths: [8, 10] } }), RangeError); // not a multiple of 4
    throws(() => call({ params: { widths: [8, 16] } }), /differ/);
    throws(() => call({ scratch: k.memory.buffer.byteLength - 16 }), RangeError);
    throws(() => call({ out: { ptr: out.ptr + 2 } }), RangeError);
    throws(() => call({ out: { ptr: k.memory.buffer.byteLength - 64 } }), RangeError);
    throws(() => call({ proj: { ptr: 0 } }), RangeError);
    // the prior: required by 7-input parameters, refused by 6-input ones, checked for room
    const prior = arena.upload(randomFloats(13 * 17, 4, 0, 1));
    throws(
      () => implicitQuery(k, pw, tw, params, { ptr: out.ptr }, scratch.ptr, { ptr: prior.ptr }),
      /6 positional inputs/,
    );
    const t7 = randomDecoder(widths, 10, 7);
    const params7 = uploadImplicitParams(arena, widths, lookup(t7), 7);
    implicitQuery(k, pw, tw, params7, { ptr: out.ptr }, scratch.ptr, { ptr: prior.ptr }); // valid
    throws(
      () => implicitQuery(k, pw, tw, params7, { ptr: out.ptr }, scratch.ptr),
      /reads the prior/,
    );
    throws(
      () =>
        implicitQuery(k, pw, tw, params7, { ptr: out.ptr }, scratch.ptr, {
          ptr: prior.ptr,
          rowStride: 16,
        }),
      RangeError,
    );
    throws(
      () =>
        implicitQuery(k, pw, tw, params7, { ptr: out.ptr }, scratch.ptr, {
          ptr: k.memory.buffer.byteLength - 64,
        }),
      RangeError,
    );
    throws(() => call({ params: { posDims: 5 } }), /6 or 7/);
    throws(() => packImplicitParams(widths, lookup(t7)), /values, expected/); // 7-input tensors as 6
    assertEquals(packImplicitParams(widths, lookup(t7), 7).length, implicitParamsFloats(widths, 7));
    // the packer checks tensors
    const get = lookup(p.t);
    throws(
      () => packImplicitParams(widths, (n) => (n === "mlp.out.bias" ? undefined : get(n))),
      /missing/,
    );
    throws(() => packImplicitParams([8, 16], get), /values, expected/);
    assertEquals(packImplicitParams(widths, get).length, implicitParamsFloats(widths));
  });

  Deno.test(`logitToProb and sigmoidToU8 (${build})`, async () => {
    const { k, arena } = await setupKernels(build);
    const special = [0, -0, 1e-8, -1e-8, 20, -20, 88, -88, 100, -100, 1e30, -1e30];
    // the logit of every 8-bit rounding boundary, nudged both ways
    for (let q = 0; q < 255; q++) {
      const b = Math.log((q + 0.5) / (254.5 - q));
      special.push(b * (1 + 1e-4) + 1e-4, b * (1 - 1e-4) - 1e-4);
    }
    const x = new Float32Array([...special, ...randomFloats(1003, 3, -12, 12)]);
    for (const n of [x.length, 1, 2, 3, 4, 5, 17, 31]) {
      const mark = arena.mark();
      const src = arena.upload(x.subarray(0, n));
      const prob = arena.f32(n);
      logitToProb(k, src.ptr, prob.ptr, n);
      const bytes = arena.bytes(n + 16);
      new Uint8Array(k.memory.buffer, bytes, n + 16).fill(77);
      sigmoidToU8(k, src.ptr, bytes, n);
      const p = arena.view(prob), u8 = new Uint8Array(k.memory.buffer, bytes, n + 16);
      for (let i = 0; i < n; i++) {
        const want = sigmoidRef(x[i]);
        assert(Math.abs(p[i] - want) <= 2e-7 * want + 1e-30, `prob of ${x[i]}: ${p[i]} vs ${want}`);
        // round(255 p); within 1e-4 of a rounding boundary float32 may go either way
        const v = 255 / (1 + Math.exp(-x[i])) + 0.5;
        const ok = u8[i] === Math.floor(v) ||
          Math.abs(v - Math.round(v)) < 1e-4 && Math.abs(u8[i] + 0.5 - v) < 1;
        assert(ok, `byte of ${x[i]}: ${u8[i]} for ${v - 0.5}`);
      }
      for (let i = n; i < n + 16; i++) assertEquals(u8[i], 77, "wrote past the end");
      arena.release(mark);
    }
    throws(() => logitToProb(k, 0, 16, 4), RangeError);
    throws(() => sigmoidToU8(k, 16, k.memory.buffer.byteLength - 2, 4), RangeError);
  });
}
