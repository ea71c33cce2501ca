/**
 * Comparison panels for people to look at: one RGB image per evaluated
 * image, tiles left to right
 *
 *     photo | coarse | refined | ground truth | zoom: coarse errors | zoom: refined errors
 *
 * The first four are scaled to one height. The photo carries a yellow frame
 * around the zoom window: the square where the refined mask and the ground
 * truth disagree most (the "worst boundary region"). The two zoom tiles show
 * that window of the photo magnified, with the errors of the coarse and of the
 * refined mask tinted: red = foreground that should be background (false
 * positive), blue = missed foreground (false negative); the ground truth's
 * outline is green. Ignored ground-truth pixels (GrabCut's 128) show as the
 * mid-grey they are in the ground-truth tile and are never tinted.
 *
 * @module
 */

import type { Mask, RgbImage } from "../src/types.ts";

/** What one panel shows. */
export interface PanelInput {
  image: RgbImage;
  coarse: Mask;
  refined: Mask;
  gt: Mask;
  /** ground-truth value that counts for nothing (GrabCut: 128) */
  ignoreValue?: number;
}

/** Options of {@link renderPanel}. */
export interface PanelOptions {
  /** height of every tile in pixels (default 320) */
  tileHeight?: number;
}

/** A square window of an image. */
export interface Window {
  x: number;
  y: number;
  size: number;
}

const GAP = 4;
const GAP_RGB = [40, 40, 40];

/** Side of the zoom window for a w x h image: (w + h) / 20, within [48, min(w, h)]. */
export function zoomSize(width: number, height: number): number {
  return Math.max(
    1,
    Math.min(Math.min(width, height), Math.max(48, Math.round((width + height) / 20))),
  );
}

/**
 * The `size` x `size` window where `pred` and `gt` (binarised at 128) disagree
 * on the most pixels, ignored pixels not counting; searched on a grid of
 * step size / 4 with a summed-area table. With no disagreement at all, the
 * centre of the image.
 */
export function worstWindow(pred: Mask, gt: Mask, size: number, ignoreValue?: number): Window {
  const { width: w, height: h } = gt;
  const s = Math.min(size, w, h);
  const sat = new Int32Array((w + 1) * (h + 1)); // summed-area table of disagreement
  for (let y = 0; y < h; y++) {
    let row = 0;
    for (let x = 0; x < w; x++) {
      const i = y * w + x, g = gt.data[i];
      if (g !== ignoreValue && (pred.data[i] >= 128) !== (g >= 128)) row++;
      sat[(y + 1) * (w + 1) + x + 1] = sat[y * (w + 1) + x + 1] + row;
    }
  }
  const step = Math.max(1, s >> 2);
  let best = { x: (w - s) >> 1, y: (h - s) >> 1, size: s }, most = 0;
  for (const y of gridStarts(h, s, step)) {
    for (const x of gridStarts(w, s, step)) {
      const c = sat[(y + s) * (w + 1) + x + s] - sat[y * (w + 1) + x + s] -
        sat[(y + s) * (w + 1) + x] +
        sat[y * (w + 1) + x];
      if (c > most) {
        most = c;
        best = { x, y, size: s };
      }
    }
  }
  return best;
}

/** Window starts 0, step, 2·step, … and the last position n - s. */
function gridStarts(n: number, s: number, step: number): number[] {
  const out: number[] = [];
  for (let v = 0; v < n - s; v += step) out.push(v);
  out.push(n - s);
  return out;
}

/** An RGB canvas. */
function canvas(width: number, height: number): RgbImage {
  return { width, height, channels: 3, data: new Uint8Array(width * height * 3) };
}

/** RGB of pixel (x, y) of an image or a mask. */
function rgbAt(src: RgbImage | Mask, x: number, y: number, out: number[]): void {
  if ("channels" in src) {
    const i = (y * src.width + x) * src.channels;
    out[0] = src.data[i];
    out[1] = src.data[i + 1];
    out[2] = src.data[i + 2];
  } else {
    out[0] = out[1] = out[2] = src.data[y * src.width + x];
  }
}

/**
 * Draws `src` scaled to `tw` x `th` at (ox, oy) of `dst`: the mean of each
 * output pixel's footprint when shrinking, the nearest pixel when enlarging.
 */
function blitScaled(
  dst: RgbImage,
  ox: number,
  oy: number,
  tw: number,
  th: number,
  src: RgbImage | Mask,
): void {
  const sx = src.width / tw, sy = src.height / th, px = [0, 0, 0];
  for (let y = 0; y < th; y++) {
    const y0 = Math.floor(y * sy), y1 = Math.max(y0 + 1, Math.floor((y + 1) * sy));
    for (let x = 0; x < tw; x++) {
      const x0 = Math.floor(x * sx), x1 = Math.max(x0 + 1, Math.floor((x + 1) * sx));
      let r = 0, g = 0, b = 0, n = 0;
      for (let yy = y0; yy < Math.min(y1, src.height); yy++) {
        for (let xx = x0; xx < Math.min(x1, src.width); xx++) {
          rgbAt(src, xx, yy, px);
          r += px[0];
          g += px[1];
          b += px[2];
          n++;
        }
      }
      const o = ((oy + y) * dst.width + ox + x) * 3;
      dst.data[o] = r / n;
      dst.data[o + 1] = g / n;
      dst.data[o + 2] = b / n;
    }
  }
}

/** The window of the photo with `pred`'s errors tinted and the ground truth's outline drawn. */
function errorCrop(input: PanelInput, pred: Mask, win: Window): RgbImage {
  const { image, gt, ignoreValue } = input;
  const out = canvas(win.size, win.size), px = [0, 0, 0];
  const fg = (x: number, y: number) => gt.data[y * gt.width + x] >= 128;
  for (let y = 0; y < win.size; y++) {
    for (let x = 0; x < win.size; x++) {
      const gx = win.x + x, gy = win.y + y, i = gy * gt.width + gx;
      rgbAt(image, gx, gy, px);
      const g = gt.data[i], p = pred.data[i] >= 128;
      let tint: number[] | null = null;
      if (g !== ignoreValue && p !== g >= 128) tint = p ? [255, 0, 0] : [0, 80, 255];
      const edge = (gx + 1 < gt.width && fg(gx + 1, gy) !== fg(gx, gy)) ||
        (gy + 1 < gt.height && fg(gx, gy + 1) !== fg(gx, gy));
      if (edge) tint = [0, 255, 0];
      const a = edge ? 1 : tint ? 0.55 : 0;
      const o = (y * win.size + x) * 3;
      for (let c = 0; c < 3; c++) out.data[o + c] = tint ? px[c] * (1 - a) + tint[c] * a : px[c];
    }
  }
  return out;
}

/** Draws a `t` px frame around the window (given in source pixels) on the scaled photo tile. */
function frame(dst: RgbImage, ox: number, oy: number, scale: number, win: Window, t: number): void {
  const x0 = ox + Math.floor(win.x * scale), y0 = oy + Math.floor(win.y * scale);
  const x1 = ox + Math.ceil((win.x + win.size) * scale) - 1,
    y1 = oy + Math.ceil((win.y + win.size) * scale) - 1;
  const put = (x: number, y: number) => {
    if (x < 0 || y < 0 || x >= dst.width || y >= dst.height) return;
    dst.data.set([255, 220, 0], (y * dst.width + x) * 3);
  };
  for (let k = 0; k < t; k++) {
    for (let x = x0; x <= x1; x++) {
      put(x, y0 + k);
      put(x, y1 - k);
    }
    for (let y = y0; y <= y1; y++) {
      put(x0 + k, y);
      put(x1 - k, y);
    }
  }
}

/** The panel of one image (see the module doc), as an RGB image. */
export function renderPanel(input: PanelInput, options: PanelOptions = {}): RgbImage {
  const th = options.tileHeight ?? 320;
  const { image } = input;
  const tw = Math.max(1, Math.round((image.width * th) / image.height));
  const win = worstWindow(
    input.refined,
    input.gt,
    zoomSize(image.width, image.height),
    input.ignoreValue,
  );
  const tiles: Array<{ w: number; src: RgbImage | Mask }> = [
    { w: tw, src: image },
    { w: tw, src: input.coarse },
    { w: tw, src: input.refined },
    { w: tw, src: input.gt },
    { w: th, src: errorCrop(input, input.coarse, win) },
    { w: th, src: errorCrop(input, input.refined, win) },
  ];
  const width = tiles.reduce((s, t) => s + t.w, 0) + GAP * (tiles.length + 1);
  const out = canvas(width, th + 2 * GAP);
  for (let i = 0; i < out.data.length; i += 3) out.data.set(GAP_RGB, i);
  let x = GAP;
  for (const t of tiles) {
    blitScaled(out, x, GAP, t.w, th, t.src);
    x += t.w + GAP;
  }
  frame(out, GAP, GAP, th / image.height, win, 2);
  return out;
}
