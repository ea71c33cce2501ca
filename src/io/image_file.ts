/**
 * Image files to and from crispmask's pixel types: the one place that picks
 * a codec (by magic bytes, never by file name), applies EXIF orientation,
 * enforces the pixel limit before decoding, and turns codec failures into
 * `CrispmaskError("bad-input")` naming the file.
 *
 * Works on bytes only, so it runs in any runtime; reading and writing files
 * is the caller's business.
 *
 * @module
 */

import { CrispmaskError } from "../errors.ts";
import type { Mask, RgbImage } from "../types.ts";
import { jpegOrientation, type Orientation } from "./exif.ts";
import { decodeJpeg, isJpeg, jpegSize } from "./jpeg.ts";
import { applyOrientation } from "./orientation.ts";
import { decodePng, encodePng, isPng, pngSize } from "./png.ts";
import { maskSource, type Raster, toMask, toRgbImage } from "./raster.ts";

export type { Orientation } from "./exif.ts";
export { initJpegDecoder } from "./jpeg.ts";

/** The file formats crispmask reads. */
export type ImageFormat = "png" | "jpeg";

/** Options of `decodeImage` and `decodeMask`. */
export interface DecodeOptions {
  /** refuse files with more pixels than this, before decoding (default 100 megapixels) */
  maxPixels?: number;
  /** "apply" (default) turns EXIF-rotated JPEGs upright; "ignore" keeps the stored pixel order */
  orientation?: "apply" | "ignore";
}

/** What was decoded, and how. */
export interface DecodeInfo {
  /** the detected format */
  format: ImageFormat;
  /** the EXIF orientation found (1 when none, always 1 for PNG) */
  orientation: Orientation;
  /** whether it was applied to the pixels */
  oriented: boolean;
  /** width and height as stored in the file, before orientation */
  storedWidth: number;
  storedHeight: number;
}

/** A decoded image with its `DecodeInfo`. */
export interface DecodedImage extends DecodeInfo {
  image: RgbImage;
}

/** A decoded mask with its `DecodeInfo` and the channel the mask came from. */
export interface DecodedMask extends DecodeInfo {
  mask: Mask;
  /** "gray", "red" (first channel of a colour file) or "alpha" (see raster.ts for the rule) */
  source: "gray" | "red" | "alpha";
}

const DEFAULT_MAX_PIXELS = 100_000_000;

/** The format of `bytes` by their magic number, or null when crispmask cannot read it. */
export function sniffFormat(bytes: Uint8Array): ImageFormat | null {
  if (isPng(bytes)) return "png";
  if (isJpeg(bytes)) return "jpeg";
  return null;
}

/** Decodes a PNG or JPEG photo into an 8-bit RGB or RGBA image, upright. `name` labels errors. */
export async function decodeImage(
  bytes: Uint8Array,
  name: string,
  options: DecodeOptions = {},
): Promise<DecodedImage> {
  const { raster, info } = await decodeRaster(bytes, name, options);
  return { ...info, image: toRgbImage(raster) };
}

/**
 * Decodes a PNG or JPEG mask into an 8-bit single-channel mask: the first
 * channel, or the alpha when it varies (raster.ts). 16-bit files are scaled
 * with rounding.
 */
export async function decodeMask(
  bytes: Uint8Array,
  name: string,
  options: DecodeOptions = {},
): Promise<DecodedMask> {
  const { raster, info } = await decodeRaster(bytes, name, options);
  return { ...info, mask: toMask(raster), source: maskSource(raster) };
}

/** Encodes a mask as an 8-bit grayscale PNG. */
export function encodeMaskPng(mask: Mask): Uint8Array {
  return encodePng({ width: mask.width, height: mask.height, channels: 1, data: mask.data });
}

/** Encodes an image as an 8-bit RGB (or RGBA, when it has 4 channels) PNG. */
export function encodeImagePng(image: RgbImage): Uint8Array {
  return encodePng({
    width: image.width,
    height: image.height,
    channels: image.channels,
    data: image.data,
  });
}

async function decodeRaster(
  bytes: Uint8Array,
  name: string,
  options: DecodeOptions,
): Promise<{ raster: Raster; info: DecodeInfo }> {
  const format = sniffFormat(bytes);
  if (!format) throw new CrispmaskError("bad-input", `${name}: ${unknownFormat(bytes)}`);
  const size = readSize(bytes, format, name);
  checkPixels(size.width, size.height, options.maxPixels ?? DEFAULT_MAX_PIXELS, name);
  let raster: Raster;
  try {
    raster = format === "png" ? decodePng(bytes) : await decodeJpeg(bytes);
  } catch (err) {
    throw new CrispmaskError(
      "bad-input",
      `${name}: cannot decode ${format.toUpperCase()}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const orientation = format === "jpeg" ? jpegOrientation(bytes) : 1;
  const oriented = orientation !== 1 && options.orientation !== "ignore";
  const info = {
    format,
    orientation,
    oriented,
    storedWidth: raster.width,
    storedHeight: raster.height,
  };
  return { raster: oriented ? applyOrientation(raster, orientation) : raster, info };
}

function readSize(
  bytes: Uint8Array,
  format: ImageFormat,
  name: string,
): { width: number; height: number } {
  try {
    const size = format === "png" ? pngSize(bytes) : jpegSize(bytes);
    if (size.width < 1 || size.height < 1) {
      throw new Error(`invalid size ${size.width}x${size.height}`);
    }
    return size;
  } catch (err) {
    throw new CrispmaskError(
      "bad-input",
      `${name}: cannot read ${format.toUpperCase()} header: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

function checkPixels(width: number, height: number, maxPixels: number, name: string): void {
  const pixels = width * height;
  if (pixels <= maxPixels) return;
  throw new CrispmaskError(
    "too-large",
    `${name}: ${width}x${height} is ${megapixels(pixels)}, over the limit of ${
      megapixels(maxPixels)
    }`,
  );
}

/** "24.0 MP", or an exact pixel count where one decimal of a megapixel would read 0.0. */
function megapixels(n: number): string {
  return n >= 100_000 ? `${(n / 1e6).toFixed(1)} MP` : `${n} pixels`;
}

/** A message naming what the file seems to be, for formats crispmask does not read. */
function unknownFormat(bytes: Uint8Array): string {
  if (bytes.length === 0) return "the file is empty";
  const head = String.fromCharCode(...bytes.subarray(0, 12));
  const known: [RegExp, string][] = [
    [/^GIF8/, "GIF"],
    [/^RIFF....WEBP/s, "WebP"],
    [/^....ftyp(avif|avis|heic|heix|mif1)/s, "AVIF/HEIF"],
    [/^BM/, "BMP"],
    [/^(II\*\0|MM\0\*)/, "TIFF"],
  ];
  const hit = known.find(([re]) => re.test(head));
  const what = hit ? `${hit[1]} files are not supported` : "not a PNG or JPEG file";
  return `${what} (crispmask reads PNG and JPEG; convert it first)`;
}
