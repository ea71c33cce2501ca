/**
 * A stage's probability on its target grid, the mask of the next stage.
 *
 * Dense stages store every value. A sparse stage stores only the tiles it
 * computed: a skipped tile is by definition the previous plane upsampled
 * (bilinear, as `resize`), so it is computed when read, and it is known to
 * be confidently 0 or 1 without reading it (that is why it was skipped). At
 * 6K this keeps a few percent of a full-size float plane instead of 96 MB,
 * and a skipped tile costs nothing until a later stage's unit or fill
 * reads it.
 *
 * @module
 */

import { bilinearSourceRange } from "../engine/kernels/window.ts";
import { bilinearRow } from "../engine/kernels/resize.ts";
import type { Rect, StageGeometry } from "./plan.ts";

/** A tile's state: skipped with every value below the low threshold, run, skipped above the high one. */
export const LOW = 0, RUN = 1, HIGH = 2;
export type TileState = typeof LOW | typeof RUN | typeof HIGH;

/** Which target tiles run the network, and the class of the skipped ones. */
export interface TileMap {
  tile: number;
  rows: number;
  cols: number;
  /** rows * cols states, row-major */
  state: Uint8Array;
}

/** Probabilities on an h x w grid. */
export interface ProbPlane {
  readonly h: number;
  readonly w: number;
  /** The values of rectangle `r`, row-major. */
  read(r: Rect): Float32Array;
  /** LOW when every value of `r` is below `low`, HIGH when every one is above `high`, else RUN. */
  classify(r: Rect, low: number, high: number): TileState;
}

/** Every value stored. */
export class DensePlane implements ProbPlane {
  constructor(readonly h: number, readonly w: number, readonly data: Float32Array) {
    if (data.length !== h * w) {
      throw new RangeError(`plane of ${h}x${w} holds ${data.length} values`);
    }
  }

  read(r: Rect): Float32Array {
    const out = new Float32Array(r.h * r.w);
    for (let y = 0; y < r.h; y++) {
      const from = (r.y0 + y) * this.w + r.x0;
      out.set(this.data.subarray(from, from + r.w), y * r.w);
    }
    return out;
  }

  classify(r: Rect, low: number, high: number): TileState {
    let lo = 0, hi = 0;
    for (let y = r.y0; y < r.y0 + r.h; y++) {
      const row = y * this.w;
      for (let x = row + r.x0; x < row + r.x0 + r.w; x++) {
        const p = this.data[x];
        if (p < low) lo++;
        else if (p > high) hi++;
      }
    }
    const n = r.h * r.w;
    return lo === n ? LOW : hi === n ? HIGH : RUN;
  }
}

/** The tiles a sparse stage computed; skipped tiles read through to the upsampled previous plane. */
export class SparsePlane implements ProbPlane {
  readonly h: number;
  readonly w: number;
  #tiles: (Float32Array | null)[];

  /** `base`: the previous plane on `geo.size`; this plane is on `geo.target`. */
  constructor(readonly base: ProbPlane, readonly geo: StageGeometry, readonly map: TileMap) {
    [this.h, this.w] = geo.target;
    this.#tiles = Array.from(map.state, () => null);
  }

  /** Stores computed values: rectangle `r` (run tiles only) of a `pitch`-wide buffer starting at `offset`. */
  put(r: Rect, data: Float32Array, pitch: number, offset: number): void {
    const T = this.map.tile;
    for (let ti = Math.floor(r.y0 / T); ti * T < r.y0 + r.h; ti++) {
      for (let tj = Math.floor(r.x0 / T); tj * T < r.x0 + r.w; tj++) {
        const k = ti * this.map.cols + tj;
        if (this.map.state[k] !== RUN) {
          throw new RangeError(`tile ${ti},${tj} was skipped, not computed`);
        }
        const t = this.#tileRect(ti, tj);
        const tile = this.#tiles[k] ??= new Float32Array(t.h * t.w);
        const y0 = Math.max(t.y0, r.y0), y1 = Math.min(t.y0 + t.h, r.y0 + r.h);
        const x0 = Math.max(t.x0, r.x0), x1 = Math.min(t.x0 + t.w, r.x0 + r.w);
        for (let y = y0; y < y1; y++) {
          const from = offset + (y - r.y0) * pitch + (x0 - r.x0);
          tile.set(data.subarray(from, from + x1 - x0), (y - t.y0) * t.w + (x0 - t.x0));
        }
      }
    }
  }

  read(r: Rect): Float32Array {
    const out = new Float32Array(r.h * r.w);
    const place = (piece: Rect, v: Float32Array, pitch: number, offset: number) => {
      for (let y = 0; y < piece.h; y++) {
        const from = offset + y * pitch;
        out.set(v.subarray(from, from + piece.w), (piece.y0 - r.y0 + y) * r.w + (piece.x0 - r.x0));
      }
    };
    // per tile row: computed tiles are copied, each run of skipped tiles is upsampled at once
    this.#eachRow(r, (band, tiles) => {
      let i = 0;
      while (i < tiles.length) {
        const [k, piece] = tiles[i];
        if (this.map.state[k] === RUN) {
          const tile = this.#tiles[k];
          if (!tile) throw new Error("a computed tile was read before its unit finished");
          const t = this.#tileRect(...this.#rc(k));
          place(piece, tile, t.w, (piece.y0 - t.y0) * t.w + (piece.x0 - t.x0));
          i++;
          continue;
        }
        let j = i;
        while (j + 1 < tiles.length && this.map.state[tiles[j + 1][0]] !== RUN) j++;
        const run = {
          y0: band.y0,
          x0: piece.x0,
          h: band.h,
          w: tiles[j][1].x0 + tiles[j][1].w - piece.x0,
        };
        place(run, upsample(this.base, this.geo, run), run.w, 0);
        i = j + 1;
      }
    });
    return out;
  }

  classify(r: Rect, low: number, high: number): TileState {
    let seen = -1;
    let mixed = false;
    this.#eachPiece(r, (piece, k) => {
      if (mixed) return;
      const s = this.map.state[k];
      const c = s !== RUN ? s : new DensePlane(piece.h, piece.w, this.read(piece)).classify(
        { y0: 0, x0: 0, h: piece.h, w: piece.w },
        low,
        high,
      );
      if (c === RUN || (seen >= 0 && c !== seen)) mixed = true;
      seen = c;
    });
    return mixed ? RUN : seen as TileState;
  }

  /** Calls `f` per tile row `r` overlaps: the row's part of `r`, and each tile's index and part. */
  #eachRow(r: Rect, f: (band: Rect, tiles: [number, Rect][]) => void): void {
    const T = this.map.tile;
    for (let ti = Math.floor(r.y0 / T); ti * T < r.y0 + r.h; ti++) {
      const y0 = Math.max(ti * T, r.y0), y1 = Math.min((ti + 1) * T, r.y0 + r.h, this.h);
      const tiles: [number, Rect][] = [];
      for (let tj = Math.floor(r.x0 / T); tj * T < r.x0 + r.w; tj++) {
        const x0 = Math.max(tj * T, r.x0), x1 = Math.min((tj + 1) * T, r.x0 + r.w, this.w);
        tiles.push([ti * this.map.cols + tj, { y0, x0, h: y1 - y0, w: x1 - x0 }]);
      }
      f({ y0, x0: r.x0, h: y1 - y0, w: r.w }, tiles);
    }
  }

  /** Calls `f` with the intersection of `r` and each tile it overlaps (tile index k). */
  #eachPiece(r: Rect, f: (piece: Rect, k: number) => void): void {
    const T = this.map.tile;
    for (let ti = Math.floor(r.y0 / T); ti * T < r.y0 + r.h; ti++) {
      for (let tj = Math.floor(r.x0 / T); tj * T < r.x0 + r.w; tj++) {
        const t = this.#tileRect(ti, tj);
        const y0 = Math.max(t.y0, r.y0), x0 = Math.max(t.x0, r.x0);
        f({
          y0,
          x0,
          h: Math.min(t.y0 + t.h, r.y0 + r.h) - y0,
          w: Math.min(t.x0 + t.w, r.x0 + r.w) - x0,
        }, ti * this.map.cols + tj);
      }
    }
  }

  #rc(k: number): [number, number] {
    return [Math.floor(k / this.map.cols), k % this.map.cols];
  }

  #tileRect(ti: number, tj: number): Rect {
    const T = this.map.tile;
    return {
      y0: ti * T,
      x0: tj * T,
      h: Math.min(this.h, (ti + 1) * T) - ti * T,
      w: Math.min(this.w, (tj + 1) * T) - tj * T,
    };
  }
}

/**
 * Rectangle `r` of `base` (on `geo.size`) upsampled to `geo.target` with
 * PyTorch's bilinear convention, bit for bit as the resize kernels compute it.
 * Only `base.read` is used, so a crop of a plane serves as well as a plane.
 */
export function upsample(base: Pick<ProbPlane, "read">, geo: StageGeometry, r: Rect): Float32Array {
  const [Hs, Ws] = geo.size, [Ht, Wt] = geo.target;
  if (Hs === Ht && Ws === Wt) return base.read(r);
  const [r0, r1] = bilinearSourceRange(Hs, Ht, r.y0, r.y0 + r.h);
  const [c0, c1] = bilinearSourceRange(Ws, Wt, r.x0, r.x0 + r.w);
  const src = base.read({ y0: r0, x0: c0, h: r1 - r0, w: c1 - c0 });
  const sw = c1 - c0;
  const xs = axisTable(Ws, Wt, r.x0, r.w, c0);
  const out = new Float32Array(r.h * r.w);
  for (let y = 0; y < r.h; y++) {
    const [ya, yb, h0, h1] = axisAt(Hs, Ht, r.y0 + y);
    const a = (ya - r0) * sw, b = (yb - r0) * sw, o = y * r.w;
    for (let i = 0; i < r.w; i++) {
      const xa = xs.lo[i], xb = xs.hi[i], w0 = xs.w0[i], w1 = xs.w1[i];
      // fma(p00, w0, p01 * w1) along each source row, then fma(top, h0, bottom * h1): the kernel's order
      const top = Math.fround(src[a + xa] * w0 + Math.fround(src[a + xb] * w1));
      const bottom = Math.fround(src[b + xa] * w0 + Math.fround(src[b + xb] * w1));
      out[o + i] = Math.fround(top * h0 + Math.fround(bottom * h1));
    }
  }
  return out;
}

/** Source indices and weights of output index `o` along one axis (PyTorch's bilinear, half-pixel centres). */
function axisAt(inSize: number, outSize: number, o: number): [number, number, number, number] {
  const lo = bilinearRow(inSize, outSize, o);
  const scale = Math.fround(inSize / outSize);
  const pos = Math.max(scale * (o + 0.5) - 0.5, 0);
  const lambda = Math.fround(Math.min(Math.max(pos - lo, 0), 1));
  return [lo, lo < inSize - 1 ? lo + 1 : lo, Math.fround(1 - lambda), lambda];
}

/** `axisAt` for n outputs from o0, indices relative to `first`. */
function axisTable(inSize: number, outSize: number, o0: number, n: number, first: number) {
  const t = {
    lo: new Int32Array(n),
    hi: new Int32Array(n),
    w0: new Float32Array(n),
    w1: new Float32Array(n),
  };
  for (let i = 0; i < n; i++) {
    const [lo, hi, w0, w1] = axisAt(inSize, outSize, o0 + i);
    t.lo[i] = lo - first;
    t.hi[i] = hi - first;
    t.w0[i] = w0;
    t.w1[i] = w1;
  }
  return t;
}
