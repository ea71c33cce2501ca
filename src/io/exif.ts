/**
 * Reads the EXIF orientation tag (0x0112) of a JPEG file.
 *
 * Cameras store pixels as the sensor read them and record in EXIF how to turn
 * them upright; viewers and browsers apply it. Only this one tag is needed, so
 * a dedicated ~50-line reader replaces a general EXIF library.
 *
 * @module
 */

import { segments } from "./jpeg_segments.ts";

/** An EXIF orientation: 1 is upright; 2..8 are the flips and rotations of the EXIF specification. */
export type Orientation = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8;

const ORIENTATION_TAG = 0x0112;

/**
 * The orientation recorded in the first EXIF (APP1) segment, or 1 when
 * there is none or it is malformed: a broken EXIF block never stops a decode.
 */
export function jpegOrientation(bytes: Uint8Array): Orientation {
  try {
    for (const s of segments(bytes)) {
      if (s.marker === 0xe1 && isExifHeader(s.data)) return tiffOrientation(s.data.subarray(6));
    }
  } catch {
    // headers unreadable: the decoder reports that; orientation defaults to upright
  }
  return 1;
}

/** "Exif\0\0", the identifier of an EXIF APP1 segment. */
function isExifHeader(d: Uint8Array): boolean {
  return d.length >= 6 && d[0] === 0x45 && d[1] === 0x78 && d[2] === 0x69 && d[3] === 0x66 &&
    d[4] === 0 && d[5] === 0;
}

/** Looks the tag up in IFD0 of a TIFF structure (either byte order). */
function tiffOrientation(tiff: Uint8Array): Orientation {
  if (tiff.length < 8) return 1;
  const view = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const order = view.getUint16(0);
  if (order !== 0x4949 && order !== 0x4d4d) return 1; // "II" little, "MM" big endian
  const le = order === 0x4949;
  if (view.getUint16(2, le) !== 42) return 1;
  const ifd = view.getUint32(4, le);
  if (ifd + 2 > tiff.length) return 1;
  const count = view.getUint16(ifd, le);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > tiff.length) return 1;
    if (view.getUint16(entry, le) !== ORIENTATION_TAG) continue;
    const type = view.getUint16(entry + 2, le); // 3 = SHORT, stored in the value field
    const value = view.getUint16(entry + 8, le);
    return type === 3 && value >= 1 && value <= 8 ? value as Orientation : 1;
  }
  return 1;
}
