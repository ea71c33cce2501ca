/**
 * A strict reader of the safetensors format.
 *
 * Layout: an 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON,
 * then the data region. The JSON maps each tensor name to
 * `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to the first
 * byte after the header) and may hold `__metadata__`, a string -> string map.
 *
 * Weights decide every pixel of the output, so a damaged file must fail loudly
 * here rather than produce a subtly wrong mask later: every field is checked,
 * the tensors must tile the data region exactly (no overlap, no hole, no
 * trailing bytes), and every problem is reported as a {@link WeightsError}
 * naming the file problem or the tensor.
 *
 * @module
 */

/**
 * The error every weights problem is reported with: a malformed file, an
 * invalid config, a missing or misshapen tensor, a non-finite value.
 */
export class WeightsError extends Error {
  /** The tensor the problem concerns, when it concerns one. */
  readonly tensor?: string;

  /**
   * @param message what is wrong, naming the tensor (if any) and the problem
   * @param tensor the tensor's name, when the problem concerns one tensor
   */
  constructor(message: string, tensor?: string) {
    super(message);
    this.name = "WeightsError";
    if (tensor !== undefined) this.tensor = tensor;
  }
}

/** Element types this reader decodes. Both are returned as Float32Array. */
export type Dtype = "F32" | "F16";

/** Bytes per element of each supported dtype. */
const DTYPE_SIZE: Readonly<Record<Dtype, number>> = { F32: 4, F16: 2 };

/**
 * Largest header accepted. Real headers are a few kB; a larger length almost
 * certainly means the bytes are not a safetensors file (or are corrupted), and
 * refusing early avoids decoding a huge bogus string.
 */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** Where one tensor lies in the file and how to read it. */
export interface TensorInfo {
  /** The tensor's name in the header. */
  readonly name: string;
  /** Element type stored in the file (decoded to float32 on read). */
  readonly dtype: Dtype;
  /** Dimensions, outermost first (row-major); `[]` is a scalar. */
  readonly shape: readonly number[];
  /** Number of elements: the product of `shape` (1 for a scalar). */
  readonly size: number;
  /** `[begin, end)` byte offsets relative to the start of the data region. */
  readonly dataOffsets: readonly [number, number];
}

/** A decoded tensor: its description plus a private float32 copy of its values. */
export interface Tensor extends TensorInfo {
  /** The values, row-major, as float32 (F16 decoded exactly). Owned by the caller. */
  readonly data: Float32Array;
}

/** A parsed, fully validated safetensors file. */
export interface SafetensorsFile {
  /** The `__metadata__` strings (empty when the header has none). */
  readonly metadata: ReadonlyMap<string, string>;
  /** Every tensor's description, in header order. */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** True when the file holds a tensor of that name. */
  has(name: string): boolean;
  /**
   * Decodes one tensor into a fresh Float32Array (each call copies, so the
   * result is 16-byte aligned and independent of the file's bytes).
   * @throws {WeightsError} when the file holds no tensor of that name
   */
  getTensor(name: string): Tensor;
}

/** Header keys of a tensor entry; anything else is rejected, not ignored. */
const ENTRY_KEYS = new Set(["dtype", "shape", "data_offsets"]);

/**
 * Parses and validates a safetensors file held in memory.
 *
 * The returned object keeps a reference to `bytes` and decodes tensors from it
 * on demand, so `bytes` must not be modified afterwards.
 *
 * @param bytes the whole file
 * @param source a name for the file in error messages (e.g. its path)
 * @throws {WeightsError} for any structural problem, naming it
 */
export function parseSafetensors(
  bytes: Uint8Array,
  source = "safetensors file",
): SafetensorsFile {
  const fail = (problem: string, tensor?: string): never => {
    throw new WeightsError(`${source}: ${problem}`, tensor);
  };
  if (bytes.byteLength < 8) {
    fail(`file is ${bytes.byteLength} bytes, shorter than the 8-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength === 0n) fail("header length is 0; not a safetensors file");
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    fail(
      `header length ${headerLength} is absurd (limit ${MAX_HEADER_BYTES} bytes); ` +
        "not a safetensors file or corrupted",
    );
  }
  const n = Number(headerLength);
  if (8 + n > bytes.byteLength) {
    fail(
      `header length ${n} runs past the end of the file (${bytes.byteLength} bytes); ` +
        "file truncated?",
    );
  }
  const header = decodeHeader(bytes.subarray(8, 8 + n), fail);
  const dataStart = 8 + n;
  const dataLength = bytes.byteLength - dataStart;

  const metadata = new Map<string, string>();
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") {
      readMetadata(entry, metadata, fail);
    } else {
      tensors.set(name, readEntry(name, entry, dataLength, fail));
    }
  }
  checkTiling([...tensors.values()], dataLength, fail);

  const get = (name: string): TensorInfo => {
    const info = tensors.get(name);
    if (info === undefined) {
      const known = tensors.size === 0 ? "it holds none" : `it holds ${tensors.size}`;
      return fail(`no tensor named "${name}" (${known})`, name);
    }
    return info;
  };
  return {
    metadata,
    tensors,
    has: (name) => tensors.has(name),
    getTensor(name) {
      const info = get(name);
      const begin = dataStart + info.dataOffsets[0];
      const data = info.dtype === "F32"
        ? decodeF32(bytes, begin, info.size)
        : decodeF16(bytes, begin, info.size);
      return { ...info, data };
    },
  };
}

type Fail = (problem: string, tensor?: string) => never;

/** UTF-8 and JSON decoding of the header, which must be a JSON object. */
function decodeHeader(raw: Uint8Array, fail: Fail): Record<string, unknown> {
  let text: string;
  try {
    // fatal: a lone invalid byte must be an error, not a silent U+FFFD
    text = new TextDecoder("utf-8", { fatal: true }).decode(raw);
  } catch {
    return fail("header is not valid UTF-8");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(parsed)) {
    return fail(`header is not a JSON object but ${describe(parsed)}`);
  }
  return parsed;
}

function readMetadata(entry: unknown, out: Map<string, string>, fail: Fail): void {
  if (!isPlainObject(entry)) {
    fail(`__metadata__ is not an object of strings but ${describe(entry)}`);
  }
  for (const [key, value] of Object.entries(entry as Record<string, unknown>)) {
    if (typeof value !== "string") {
      fail(`__metadata__.${key} is ${describe(value)}, but metadata values must be strings`);
    }
    out.set(key, value as string);
  }
}

/** Checks one tensor entry's fields, types, dtype and byte length. */
function readEntry(name: string, entry: unknown, dataLength: number, fail: Fail): TensorInfo {
  const bad = (problem: string): never => fail(`tensor "${name}": ${problem}`, name);
  if (!isPlainObject(entry)) return bad(`entry is ${describe(entry)}, not an object`);
  for (const key of ENTRY_KEYS) {
    if (!Object.hasOwn(entry, key)) bad(`entry is missing "${key}"`);
  }
  for (const key of Object.keys(entry)) {
    if (!ENTRY_KEYS.has(key)) bad(`entry has unknown field "${key}"`);
  }
  const { dtype, shape, data_offsets: offsets } = entry;
  if (typeof dtype !== "string") return bad(`dtype is ${describe(dtype)}, not a string`);
  if (!Object.hasOwn(DTYPE_SIZE, dtype)) {
    return bad(`unsupported dtype ${dtype} (supported: ${Object.keys(DTYPE_SIZE).join(", ")})`);
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    return bad(`shape ${JSON.stringify(shape)} is not an array of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    return bad(
      `data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`,
    );
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) bad(`data_offsets [${begin}, ${end}] are out of order (begin > end)`);
  if (end > dataLength) {
    bad(
      `data_offsets [${begin}, ${end}] run past the end of the data (${dataLength} bytes); ` +
        "file truncated?",
    );
  }
  const elementSize = DTYPE_SIZE[dtype as Dtype];
  const size = elementCount(shape as number[]);
  const expected = size * elementSize;
  if (expected !== end - begin) {
    const what = Number.isSafeInteger(expected) ? `${expected} bytes` : "too many bytes to address";
    bad(
      `byte length ${end - begin} does not match shape [${shape.join(", ")}] of ${dtype} ` +
        `(${what})`,
    );
  }
  return {
    name,
    dtype: dtype as Dtype,
    shape: Object.freeze([...shape as number[]]),
    size,
    dataOffsets: Object.freeze([begin, end] as [number, number]),
  };
}

/**
 * The tensors must cover the data region exactly once. An overlap would let
 * two tensors share bytes; a hole or trailing bytes mean the header does not
 * describe the data it came with (e.g. a concatenation or a stale header).
 */
function checkTiling(infos: TensorInfo[], dataLength: number, fail: Fail): void {
  // empty tensors occupy no bytes and cannot overlap anything
  const sorted = infos.filter((t) => t.size > 0).sort((a, b) =>
    a.dataOffsets[0] - b.dataOffsets[0]
  );
  let cursor = 0;
  let previous: TensorInfo | undefined;
  for (const t of sorted) {
    const [begin, end] = t.dataOffsets;
    if (begin < cursor) {
      fail(
        `tensor "${t.name}" data_offsets [${begin}, ${end}] overlap tensor ` +
          `"${previous!.name}" [${previous!.dataOffsets.join(", ")}]`,
        t.name,
      );
    }
    if (begin > cursor) {
      fail(
        `tensor "${t.name}" starts at byte ${begin} of the data, leaving a hole of ` +
          `${begin - cursor} unreferenced bytes after ${
            previous ? `tensor "${previous.name}"` : "the header"
          } (total size of the tensors does not match the data)`,
        t.name,
      );
    }
    cursor = end;
    previous = t;
  }
  if (cursor !== dataLength) {
    fail(
      `data region is ${dataLength} bytes but the tensors' total size is ${cursor} bytes ` +
        `(${dataLength - cursor} trailing unreferenced bytes)`,
    );
  }
}

/** True on little-endian hosts (all mainstream ones), where a plain byte copy decodes F32. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function decodeF32(bytes: Uint8Array, begin: number, size: number): Float32Array {
  const out = new Float32Array(size);
  if (LITTLE_ENDIAN) {
    // copying bytes (not viewing them) both aligns the data and detaches it from the file
    new Uint8Array(out.buffer).set(bytes.subarray(begin, begin + 4 * size));
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset + begin, 4 * size);
    for (let i = 0; i < size; i++) out[i] = view.getFloat32(4 * i, true);
  }
  return out;
}

function decodeF16(bytes: Uint8Array, begin: number, size: number): Float32Array {
  const out = new Float32Array(size);
  // writing float32 bit patterns makes the conversion exact by construction
  const bits = new Uint32Array(out.buffer);
  for (let i = 0, p = begin; i < size; i++, p += 2) {
    bits[i] = f16BitsToF32Bits(bytes[p] | (bytes[p + 1] << 8));
  }
  return out;
}

/**
 * Converts IEEE half-precision bits to the single-precision bits of the same
 * value. Every half value (subnormals, ±0, ±inf, NaN payloads) is exactly
 * representable in single precision, so this is lossless.
 */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf, NaN
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0; // 127 - 15 = 112
  if (mant === 0) return sign >>> 0; // ±0
  // subnormal half: mant * 2^-24; shift the leading 1 into the implicit bit
  let e = 113; // exponent of 2^-14 (the smallest normal half) in single precision
  while ((mant & 0x400) === 0) {
    mant <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
}

/**
 * Product of the dimensions; Infinity when it exceeds the safe-integer range
 * (such a shape can never match real bytes, and must not wrap into a match).
 */
function elementCount(shape: readonly number[]): number {
  if (shape.includes(0)) return 0;
  let size = 1;
  for (const d of shape) {
    size *= d;
    if (!Number.isSafeInteger(size)) return Infinity;
  }
  return size;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function isCount(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

/** A short description of a JSON value's kind, for messages. */
export function describe(x: unknown): string {
  if (x === null) return "null";
  if (Array.isArray(x)) return "an array";
  if (typeof x === "object") return "an object";
  if (typeof x === "string") return `the string ${JSON.stringify(x)}`;
  return `${typeof x} ${String(x)}`;
}
