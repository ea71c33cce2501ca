/**
 * The pixel types of crispmask's public API.
 *
 * @module
 */

/** An 8-bit RGB or RGBA image, row-major, interleaved (`data.length === width * height * channels`). */
export interface RgbImage {
  /** width in pixels */
  width: number;
  /** height in pixels */
  height: number;
  /** 3 (RGB) or 4 (RGBA; alpha is ignored) */
  channels: 3 | 4;
  /** interleaved samples, 0..255 */
  data: Uint8Array | Uint8ClampedArray;
}

/**
 * An 8-bit single-channel mask, row-major (`data.length === width * height`):
 * 0 is background, 255 foreground; values between are soft (probability x 255).
 * Foreground where >= 128.
 */
export interface Mask {
  /** width in pixels */
  width: number;
  /** height in pixels */
  height: number;
  /** one byte per pixel */
  data: Uint8Array;
}

/** Throws a TypeError unless `image` is a well-formed RgbImage. */
export function checkImage(image: RgbImage, what = "image"): void {
  checkSize(image.width, image.height, what);
  if (image.channels !== 3 && image.channels !== 4) {
    throw new TypeError(`${what}: channels must be 3 or 4, got ${image.channels}`);
  }
  const want = image.width * image.height * image.channels;
  if (!image.data || image.data.length !== want) {
    throw new TypeError(`${what}: data holds ${image.data?.length} bytes, ${image.width}x${image.height}x${image.channels} needs ${want}`);
  }
}

/** Throws a TypeError unless `mask` is a well-formed Mask. */
export function checkMask(mask: Mask, what = "mask"): void {
  checkSize(mask.width, mask.height, what);
  const want = mask.width * mask.height;
  if (!mask.data || mask.data.length !== want) {
    throw new TypeError(`${what}: data holds ${mask.data?.length} bytes, ${mask.width}x${mask.height} needs ${want}`);
  }
}

function checkSize(width: number, height: number, what: string): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new TypeError(`${what}: size must be positive integers, got ${width}x${height}`);
  }
}
