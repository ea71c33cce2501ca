/**
 * PNG codec: decodes every PNG colour type and bit depth into an 8-bit
 * `Raster`, and encodes 8-bit gray, RGB or RGBA rasters.
 *
 * Built on `fast-png` (pure JavaScript, zlib through `fflate`), so it runs
 * unchanged in Deno, Node, browsers and edge runtimes; see
 * docs/dependencies.md for the measurements behind the choice.
 *
 * @module
 */

import { convertIndexedToRgb, decode, type DecodedPng, encode } from "fast-png";
import type { Raster } from "./raster.ts";

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** True when `bytes` start with the PNG signature. */
export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && SIGNATURE.every((b, i) => bytes[i] === b);
}

/**
 * Width and height from the IHDR chunk, read without decoding, so that an
 * over-limit image is refused before its pixels are allocated.
 */
export function pngSize(bytes: Uint8Array): { width: number; height: number } {
  const ihdr = String.fromCharCode(...bytes.subarray(12, 16));
  if (bytes.length < 24 || ihdr !== "IHDR") throw new Error("IHDR chunk missing or truncated");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/**
 * Decodes a PNG into an 8-bit raster: 16-bit samples are scaled with
 * rounding, 1/2/4-bit gray is stretched to 0..255, palettes are expanded to
 * RGB (RGBA when the palette has transparency). A colour-key tRNS on a gray or
 * RGB image is ignored (the image's alpha is not used, and a mask keeps its
 * gray). Throws on a truncated or corrupt file (chunk CRCs are checked).
 */
export function decodePng(bytes: Uint8Array): Raster {
  const png = parse(bytes);
  const { width, height } = png;
  if (png.palette) return paletteRaster(png);
  const channels = png.channels as Raster["channels"];
  if (channels < 1 || channels > 4) {
    throw new Error(`unsupported PNG with ${png.channels} channels`);
  }
  const n = width * height * channels;
  let data: Uint8Array;
  if (png.depth === 16) data = from16(png.data as Uint16Array, n);
  else if (png.depth === 8) data = png.data as Uint8Array;
  else data = unpackGray(png.data as Uint8Array, width, height, png.depth);
  if (data.length < n) throw new Error("the image data is truncated");
  return { width, height, channels, data: data.length === n ? data : data.subarray(0, n) };
}

/** fast-png's decode with its errors reworded: running off the end of the buffer means truncation. */
function parse(bytes: Uint8Array): DecodedPng {
  try {
    return decode(bytes, { checkCrc: true });
  } catch (err) {
    if (err instanceof RangeError && /outside the bounds/.test(err.message)) {
      throw new Error("the file is truncated", { cause: err });
    }
    const cause = (err as Error).cause as Error | undefined;
    const detail = cause?.message ? ` ${cause.message}` : "";
    throw new Error(`${(err as Error).message}${detail}`, { cause: err });
  }
}

/** Encodes an 8-bit gray (1), RGB (3) or RGBA (4) raster as a PNG file. */
export function encodePng(r: Raster): Uint8Array {
  if (r.channels === 2) throw new Error("encodePng: gray+alpha output is not supported");
  const data = r.data instanceof Uint8Array
    ? r.data
    : new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.length);
  return encode({ width: r.width, height: r.height, data, channels: r.channels, depth: 8 });
}

function paletteRaster(png: DecodedPng): Raster {
  const rgb = convertIndexedToRgb(png);
  const channels = png.palette![0].length === 4 ? 4 : 3;
  if (rgb.length !== png.width * png.height * channels) {
    throw new Error("the palette image data is truncated");
  }
  return { width: png.width, height: png.height, channels, data: rgb };
}

/** 16-bit to 8-bit with rounding: round(v * 255 / 65535), through a table. */
function from16(src: Uint16Array, n: number): Uint8Array {
  const table = roundingTable();
  const out = new Uint8Array(Math.min(n, src.length));
  for (let i = 0; i < out.length; i++) out[i] = table[src[i]];
  return out;
}

let table16: Uint8Array | null = null;
function roundingTable(): Uint8Array {
  if (!table16) {
    table16 = new Uint8Array(65536);
    for (let v = 0; v < 65536; v++) table16[v] = Math.floor((v * 255 + 32767) / 65535);
  }
  return table16;
}

/** Unpacks 1/2/4-bit gray rows (each row starts on a byte) into 0..255 samples. */
function unpackGray(src: Uint8Array, width: number, height: number, depth: number): Uint8Array {
  const rowBytes = Math.ceil((width * depth) / 8), max = (1 << depth) - 1, scale = 255 / max;
  const out = new Uint8Array(width * height);
  if (src.length < rowBytes * height) return out.subarray(0, 0); // caller reports truncation
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const bit = x * depth, byte = src[y * rowBytes + (bit >> 3)];
      out[y * width + x] = ((byte >> (8 - depth - (bit & 7))) & max) * scale;
    }
  }
  return out;
}
