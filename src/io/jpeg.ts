/**
 * JPEG codec (decode only): baseline, progressive and arithmetic-coded
 * JPEGs, gray or colour, through MozJPEG compiled to WebAssembly
 * (`@jsquash/jpeg`, Squoosh's decoder), 6-8x faster than pure-JavaScript
 * decoders on 24-megapixel photos (docs/dependencies.md).
 *
 * The decoder's .wasm file is found per runtime: Deno imports it as a module
 * (no file permission needed), Node reads it from node_modules, browsers
 * fetch it beside the package's script; elsewhere call `initJpegDecoder`.
 *
 * @module
 */

import decodeMozJpeg, { init as initMozJpeg } from "@jsquash/jpeg/decode.js";
import { isStartOfFrame, segments } from "./jpeg_segments.ts";
import type { Raster } from "./raster.ts";

export { isJpeg } from "./jpeg_segments.ts";

let ready: Promise<void> | null = null;
/** The compiled decoder, kept so that a fresh instance costs no compilation. */
let compiled: WebAssembly.Module | undefined;

/**
 * The decoder's last message. libjpeg reports errors and warnings by writing
 * to stderr; captured here, a failure becomes part of the thrown error instead
 * of a stray line on the console.
 */
let lastMessage = "";

/**
 * Prepares the decoder. Called implicitly by `decodeJpeg`; call it first with
 * a compiled `mozjpeg_dec.wasm` module where the default lookup cannot work
 * (edge runtimes that forbid compiling fetched bytes, custom bundles).
 */
export function initJpegDecoder(module?: WebAssembly.Module): Promise<void> {
  ready ??= (async () => {
    const wasm = module ?? (compiled ??= await defaultModule());
    // @jsquash/jpeg's types omit the (module) overload that its code accepts
    const init = initMozJpeg as unknown as (
      m: WebAssembly.Module | undefined,
      o: object,
    ) => Promise<void>;
    const capture = (msg: string) => (lastMessage = msg);
    await init(wasm, { print: capture, printErr: capture });
  })();
  ready.catch(() => (ready = null)); // a failed start may be retried
  return ready;
}

/** The decoder module for this runtime, or undefined to let the package fetch it. */
async function defaultModule(): Promise<WebAssembly.Module | undefined> {
  if (typeof Deno !== "undefined") return (await import("./jpeg_wasm_deno.js")).default;
  const proc = (globalThis as { process?: NodeProcessLike }).process;
  if (proc?.versions?.node) {
    return await WebAssembly.compile(await readNodeModuleFile(proc) as BufferSource);
  }
  return undefined;
}

interface NodeProcessLike {
  versions?: { node?: string };
  getBuiltinModule?: (id: string) => unknown;
}

type ReadFile = (url: URL) => Promise<Uint8Array>;

/** Reads the .wasm in Node without a static `node:` import, which would break browser bundles. */
async function readNodeModuleFile(proc: NodeProcessLike): Promise<Uint8Array> {
  const url = new URL(import.meta.resolve("@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm"));
  const fsp = (proc.getBuiltinModule?.("node:fs/promises") ??
    await import(["node", "fs/promises"].join(":"))) as { readFile: ReadFile };
  return await fsp.readFile(url);
}

/** Width, height and component count from the frame header, without decoding. */
export function jpegSize(bytes: Uint8Array): { width: number; height: number; components: number } {
  for (const s of segments(bytes)) {
    if (!isStartOfFrame(s.marker)) continue;
    if (s.data.length < 6) break;
    const d = s.data;
    return { height: (d[1] << 8) | d[2], width: (d[3] << 8) | d[4], components: d[5] };
  }
  throw new Error("frame header (SOF) missing");
}

/**
 * True when the file ends its last scan with an EOI marker. libjpeg treats a
 * truncated file as a warning and fills the missing rows with gray; a
 * refinement of half an image is useless, so crispmask refuses it instead.
 * Entropy-coded data never contains 0xFF 0xD9, so the last one found after
 * the first scan header is the real end of image.
 */
export function jpegIsComplete(bytes: Uint8Array): boolean {
  let scanStart = -1;
  for (const s of segments(bytes)) if (s.marker === 0xda) scanStart = s.offset;
  for (
    let i = bytes.lastIndexOf(0xd9);
    i > scanStart && i > 0;
    i = bytes.lastIndexOf(0xd9, i - 1)
  ) {
    if (bytes[i - 1] === 0xff) return true;
  }
  return false;
}

/**
 * Decodes a JPEG into an RGBA raster (alpha 255), pixels as stored: apply the
 * EXIF orientation separately (orientation.ts). Throws on a truncated file,
 * CMYK/YCCK colour (4 components, rare outside print) and anything MozJPEG
 * rejects.
 */
export async function decodeJpeg(bytes: Uint8Array): Promise<Raster> {
  const { components } = jpegSize(bytes);
  if (components !== 1 && components !== 3) {
    throw new Error(`${components} colour components (CMYK?) are not supported`);
  }
  if (!jpegIsComplete(bytes)) throw new Error("the file is truncated (no end-of-image marker)");
  await initJpegDecoder();
  let img: ImageData;
  lastMessage = "";
  try {
    img = await decodeMozJpeg(wholeBuffer(bytes));
  } catch (err) {
    throw new Error(`JPEG decoder failed: ${lastMessage || describe(err)}`, { cause: err });
  } finally {
    // A WebAssembly memory never shrinks: after a large image the decoder would hold its
    // peak (coefficients of a progressive 24 MP photo, the output) for the process's life.
    // Replacing the instance with a fresh one lets this one, and its memory, be collected.
    if (largeImage(bytes)) {
      ready = null;
      initJpegDecoder().catch(() => {}); // a failure surfaces at the next decode
    }
  }
  return { width: img.width, height: img.height, channels: 4, data: img.data };
}

/** Images whose decoding grows the decoder's memory past what is worth keeping (4 MP). */
function largeImage(bytes: Uint8Array): boolean {
  const { width, height } = jpegSize(bytes);
  return width * height > 4_000_000;
}

/** The bytes as an ArrayBuffer of exactly their length (no copy when already so). */
function wholeBuffer(bytes: Uint8Array): ArrayBuffer {
  const b = bytes.buffer;
  if (b instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === b.byteLength) {
    return b;
  }
  return bytes.slice().buffer;
}

/** Emscripten throws non-Error values (numbers, ExitStatus objects). */
function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err && typeof err === "object" && "message" in err) return String(err.message);
  return String(err);
}
