/**
 * File access of the command-line tool: reading inputs with clear errors,
 * and writing outputs so that a failure never leaves a partial file (write a
 * temporary file in the same directory, then rename it over the target).
 *
 * Uses `node:fs/promises`, which Deno and Node both provide.
 *
 * @module
 */

import { open, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { CrispmaskError } from "../errors.ts";

/** An output file could not be written (exit code 1, like bad input). */
export class OutputError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "OutputError";
  }
}

/** Reads a whole input file; errors name the file and say what went wrong. */
export async function readInput(path: string, what: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new CrispmaskError("bad-input", `cannot read ${what} ${path}: ${reason(err)}`, {
      cause: err,
    });
  }
}

/**
 * Fails early, before any long computation, when `path` cannot be written:
 * creates a probe file beside it, renames it and removes it, which needs
 * the same permissions as the final write (in Deno, a rename also needs
 * read access to the folder).
 */
export async function checkWritable(path: string): Promise<void> {
  const probe = tempName(path), moved = tempName(path);
  try {
    const fh = await open(probe, "wx");
    await fh.close();
    await rename(probe, moved);
    await unlink(moved);
  } catch (err) {
    await unlink(probe).catch(() => {});
    throw new OutputError(`cannot write ${path}: ${reason(err)}`, { cause: err });
  }
}

/** An output to write: where, and the complete bytes. */
export interface OutputFile {
  path: string;
  bytes: Uint8Array;
}

/**
 * Writes every output to a temporary name, then renames each into place.
 * If any write fails, all temporary files are removed and no target is
 * touched; renames happen only once every file is fully on disk.
 */
export async function writeOutputs(files: OutputFile[]): Promise<void> {
  const temps = files.map((f) => ({ ...f, temp: tempName(f.path) }));
  const written: string[] = [];
  let current = temps[0];
  try {
    for (const f of temps) {
      current = f;
      await writeFile(f.temp, f.bytes, { flag: "wx" });
      written.push(f.temp);
    }
    for (const f of temps) {
      current = f;
      await rename(f.temp, f.path);
      written.splice(written.indexOf(f.temp), 1);
    }
  } catch (err) {
    await Promise.all(written.map((t) => unlink(t).catch(() => {})));
    throw new OutputError(`cannot write ${current.path}: ${reason(err)}`, { cause: err });
  }
}

/** A hidden name beside `path`, unique to this process and moment. */
function tempName(path: string): string {
  const tag = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  return join(dirname(path), `.${basename(path)}.${tag}.tmp`);
}

/** A short human reason for a file-system error. */
function reason(err: unknown): string {
  const e = err as { code?: string; name?: string; message?: string };
  if (e.code === "ENOENT") return "no such file or directory";
  if (e.code === "EACCES" || e.code === "EPERM") return "permission denied";
  if (e.code === "EISDIR") return "it is a directory";
  if (e.code === "ENOSPC") return "no space left on the device";
  if (e.name === "NotCapable" || e.name === "PermissionDenied") {
    return `not permitted by Deno's permissions (${e.message}); see --help for the flags`;
  }
  return e.message ?? String(err);
}
