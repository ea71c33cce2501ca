/**
 * A tiny safetensors writer for tests: builds valid files from tensors, and
 * gives the pieces (header JSON, header length, data) separately so tests can
 * build every kind of corrupted file too. Not used by the library.
 *
 * @module
 */

/** One tensor to write. Exactly one of `data` (encoded as F32) or `raw` is given. */
export interface TensorSpec {
  /** Name in the header. */
  name: string;
  /** Shape written to the header (need not match the data, to build bad files). */
  shape: number[];
  /** Values, written as little-endian float32. */
  data?: ArrayLike<number>;
  /** Bytes written verbatim (for F16 or deliberately wrong lengths). */
  raw?: Uint8Array;
  /** Dtype written to the header; defaults to "F32". */
  dtype?: string;
}

/** Little-endian float32 bytes of `values`. */
export function f32Bytes(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(4 * values.length);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(4 * i, values[i], true);
  return out;
}

/** Little-endian bytes of 16-bit patterns (e.g. float16 bits). */
export function u16Bytes(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(2 * values.length);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setUint16(2 * i, values[i], true);
  return out;
}

/**
 * Builds a header object and data region from tensors, laid out in the order
 * given, back to back (as train/export.py does).
 */
export function layout(
  tensors: TensorSpec[],
  metadata?: Record<string, string>,
): { header: Record<string, unknown>; data: Uint8Array } {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header.__metadata__ = metadata;
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.raw ?? f32Bytes(t.data ?? []);
    header[t.name] = {
      dtype: t.dtype ?? "F32",
      shape: t.shape,
      data_offsets: [offset, offset + bytes.length],
    };
    blobs.push(bytes);
    offset += bytes.length;
  }
  return { header, data: concat(blobs) };
}

/**
 * Assembles a file from its parts. `header` is serialised with JSON.stringify
 * unless it is already a string or bytes (for malformed headers);
 * `headerLength` overrides the length field (for lying lengths).
 */
export function assemble(
  header: unknown,
  data: Uint8Array = new Uint8Array(0),
  options: { headerLength?: bigint; padTo?: number } = {},
): Uint8Array {
  let headerBytes = header instanceof Uint8Array
    ? header
    : new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const padTo = options.padTo ?? 1;
  if (headerBytes.length % padTo !== 0) {
    // spaces are JSON whitespace: padding keeps the header valid (export.py pads to 8)
    const pad = new Uint8Array(padTo - (headerBytes.length % padTo)).fill(0x20);
    headerBytes = concat([headerBytes, pad]);
  }
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(
    0,
    options.headerLength ?? BigInt(headerBytes.length),
    true,
  );
  return concat([prefix, headerBytes, data]);
}

/** A valid safetensors file holding `tensors` and `metadata`. */
export function writeSafetensors(
  tensors: TensorSpec[],
  metadata?: Record<string, string>,
  options: { padTo?: number } = {},
): Uint8Array {
  const { header, data } = layout(tensors, metadata);
  return assemble(header, data, options);
}

/**
 * Re-writes a valid file's header through `edit` (which may mutate the parsed
 * header or return a replacement), keeping its data bytes unchanged.
 */
export function editHeader(
  file: Uint8Array,
  edit: (header: Record<string, unknown>) => unknown,
): Uint8Array {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n)));
  const replaced = edit(header);
  return assemble(replaced === undefined ? header : replaced, file.subarray(8 + n));
}

/**
 * `n` fresh random float32 values in [-1, 1), never zero, so a reader that
 * drops, zeroes or shifts data cannot pass by accident.
 */
export function randomFloats(n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let v = 0;
    while (v === 0) v = Math.fround(Math.random() * 2 - 1);
    out[i] = v;
  }
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
