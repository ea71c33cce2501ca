/**
 * A walker over a JPEG file's marker segments (the headers before the first
 * scan), shared by the size probe, the completeness check and the EXIF reader.
 *
 * @module
 */

/** One marker segment: its marker byte and its payload (without the length field). */
export interface Segment {
  /** the byte after 0xFF, e.g. 0xE1 for APP1, 0xC0 for SOF0, 0xDA for SOS */
  marker: number;
  /** offset of the marker's 0xFF in the file */
  offset: number;
  /** the segment's payload */
  data: Uint8Array;
}

/** True when `bytes` start with a JPEG start-of-image marker followed by another marker. */
export function isJpeg(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

/**
 * Yields the segments from SOI up to and including the first SOS (start of
 * scan), after which entropy-coded data follows. Throws when a segment runs
 * past the end of the file.
 */
export function* segments(bytes: Uint8Array): Generator<Segment> {
  let pos = 2; // after SOI
  while (pos < bytes.length) {
    if (bytes[pos] !== 0xff) throw new Error(`marker expected at byte ${pos}`);
    const marker = bytes[pos + 1];
    if (marker === 0xff) { // fill bytes may pad before a marker
      pos++;
      continue;
    }
    if (marker === 0xd9) return; // EOI before any scan
    if (isStandalone(marker)) {
      pos += 2;
      continue;
    }
    if (pos + 4 > bytes.length) break;
    const length = (bytes[pos + 2] << 8) | bytes[pos + 3];
    const end = pos + 2 + length;
    if (length < 2 || end > bytes.length) break;
    yield { marker, offset: pos, data: bytes.subarray(pos + 4, end) };
    if (marker === 0xda) return;
    pos = end;
  }
  throw new Error("the headers are truncated");
}

/** Markers without a length field: TEM and RST0..7 (SOI/EOI are handled by the walker). */
function isStandalone(marker: number): boolean {
  return marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7);
}

/** True for the start-of-frame markers that carry the image size (SOF0..15 but DHT, JPG, DAC). */
export function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}
