/**
 * Turns a raster upright according to its EXIF orientation: the pixels are
 * rotated or flipped so they read as viewers show the photo.
 *
 * @module
 */

import type { Orientation } from "./exif.ts";
import type { Raster } from "./raster.ts";

/** True when the orientation swaps width and height (the 90-degree cases 5..8). */
export function swapsAxes(o: Orientation): boolean {
  return o >= 5;
}

/**
 * A new raster holding `r` as displayed under orientation `o` (`r` itself for 1).
 *
 * With W x H the stored size, the displayed pixel (x, y) is read from stored
 * pixel `start(y) + x * step`: every orientation walks the stored image along
 * a row or a column, forwards or backwards (the EXIF table: 2 mirror,
 * 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise, 7 transverse,
 * 8 rotate 90 counter-clockwise).
 */
export function applyOrientation(r: Raster, o: Orientation): Raster {
  if (o === 1) return r;
  const W = r.width, H = r.height;
  const [ow, oh] = swapsAxes(o) ? [H, W] : [W, H];
  const walk = walkOf(o, W, H);
  const out = { width: ow, height: oh, channels: r.channels, data: new Uint8Array(r.data.length) };
  if (r.channels === 4 && r.data.byteOffset % 4 === 0) {
    // one 32-bit move per RGBA pixel instead of four byte moves
    const src = new Uint32Array(r.data.buffer, r.data.byteOffset, W * H);
    remap(src, new Uint32Array(out.data.buffer), ow, oh, walk, 1);
  } else {
    remap(r.data, out.data, ow, oh, walk, r.channels);
  }
  return out;
}

/** Stored index of displayed pixel (0, y), and the index step per displayed x. */
interface Walk {
  start: (y: number) => number;
  step: number;
}

function walkOf(o: Orientation, W: number, H: number): Walk {
  switch (o) {
    case 2:
      return { start: (y) => y * W + W - 1, step: -1 };
    case 3:
      return { start: (y) => (H - 1 - y) * W + W - 1, step: -1 };
    case 4:
      return { start: (y) => (H - 1 - y) * W, step: 1 };
    case 5:
      return { start: (y) => y, step: W };
    case 6:
      return { start: (y) => (H - 1) * W + y, step: -W };
    case 7:
      return { start: (y) => (H - 1) * W + W - 1 - y, step: -W };
    case 8:
      return { start: (y) => W - 1 - y, step: W };
    default:
      return { start: (y) => y * W, step: 1 };
  }
}

function remap(
  src: Uint8Array | Uint8ClampedArray | Uint32Array,
  dst: Uint8Array | Uint32Array,
  ow: number,
  oh: number,
  walk: Walk,
  channels: number,
): void {
  const step = walk.step * channels;
  for (let y = 0; y < oh; y++) {
    let s = walk.start(y) * channels, d = y * ow * channels;
    for (let x = 0; x < ow; x++, s += step) {
      for (let c = 0; c < channels; c++) dst[d++] = src[s + c];
    }
  }
}
