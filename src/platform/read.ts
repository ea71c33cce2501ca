/**
 * Reads the bytes of a file path or URL in whichever runtime this is: Deno's
 * file API for paths and file: URLs in Deno, node:fs in Node (whose `fetch`
 * refuses file: URLs), and `fetch` for everything else (browsers, http:,
 * blob:, data:).
 *
 * @module
 */

/** The bytes at `src`: a URL, a URL string, or a file path (Deno and Node only). */
export async function readBytes(src: URL | string): Promise<Uint8Array> {
  const isUrl = src instanceof URL || /^(file|https?|blob|data):/.test(src);
  const url = isUrl ? new URL(src) : null;
  const local = url === null || url.protocol === "file:";
  if (local && typeof Deno !== "undefined") return await Deno.readFile(url ?? src);
  if (local && isNode()) {
    // a variable specifier: browser bundlers must not try to resolve it
    const fsName = "node:fs/promises";
    const fs: { readFile(p: URL | string): Promise<Uint8Array> } = await import(fsName);
    const buf = await fs.readFile(url ?? src);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  if (url === null) throw new Error(`a file path needs Deno or Node; pass a URL or bytes here`);
  const res = await fetch(url);
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === "string";
}
