/**
 * Command-line arguments of `crispmask refine`, parsed with Node's built-in
 * `parseArgs` (available in Deno and Node alike, so no dependency) and then
 * validated into a typed `RefineCommand`.
 *
 * @module
 */

import { parseArgs } from "node:util";

/** A mistake in the command line: reported with exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A validated `refine` command. */
export interface RefineCommand {
  kind: "refine";
  /** the photo (PNG or JPEG) */
  image: string;
  /** the coarse mask (PNG or JPEG, any size with the image's aspect ratio) */
  coarse: string;
  /** where the refined mask goes (a .png file) */
  output: string;
  /** where the overlay view goes, if asked for */
  overlay?: string;
  binary: boolean;
  /** worker count; undefined leaves the refiner's default */
  workers?: number;
  dense: boolean;
  /** also refine the mirrored photo and average (RefineOptions.flip) */
  flip: boolean;
  /** lean toward the coarse mask (RefineOptions.coarseTrust); undefined leaves the default */
  coarseTrust?: number;
  maxPixels: number;
  json: boolean;
  quiet: boolean;
  /** keep a JPEG's stored pixel order instead of applying its EXIF orientation */
  ignoreExif: boolean;
}

/** What the command line asks for. */
export type Command = { kind: "help" } | RefineCommand;

/** Default pixel limit: 100 megapixels. */
export const DEFAULT_MAX_PIXELS = 100_000_000;

const OPTIONS = {
  output: { type: "string", short: "o" },
  overlay: { type: "string" },
  binary: { type: "boolean" },
  workers: { type: "string" },
  dense: { type: "boolean" },
  flip: { type: "boolean" },
  "coarse-trust": { type: "string" },
  "max-pixels": { type: "string" },
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  "ignore-exif": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** Parses `args` (without the program name). Throws `UsageError` on any mistake. */
export function parseCommand(args: string[]): Command {
  const { values, positionals } = parse(args);
  if (values.help) return { kind: "help" };
  const [command, image, coarse, ...extra] = positionals;
  if (command === undefined) throw new UsageError("no command given (try `refine`, or --help)");
  if (command !== "refine") {
    throw new UsageError(`unknown command '${command}' (the command is \`refine\`)`);
  }
  if (image === undefined || coarse === undefined) {
    throw new UsageError("refine needs two files: <image> <coarse-mask>");
  }
  if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
  if (!values.output) {
    throw new UsageError("missing -o <refined.png> (where to write the refined mask)");
  }
  checkPng(values.output, "-o");
  if (values.overlay !== undefined) checkPng(values.overlay, "--overlay");
  if (values.overlay !== undefined && samePath(values.overlay, values.output)) {
    throw new UsageError("--overlay and -o name the same file");
  }
  return {
    kind: "refine",
    image,
    coarse,
    output: values.output,
    overlay: values.overlay,
    binary: values.binary ?? false,
    workers: values.workers === undefined ? undefined : positiveInt(values.workers, "--workers"),
    dense: values.dense ?? false,
    flip: values.flip ?? false,
    coarseTrust: values["coarse-trust"] === undefined
      ? undefined
      : nonNegative(values["coarse-trust"], "--coarse-trust"),
    maxPixels: values["max-pixels"] === undefined
      ? DEFAULT_MAX_PIXELS
      : pixelCount(values["max-pixels"]),
    json: values.json ?? false,
    quiet: values.quiet ?? false,
    ignoreExif: values["ignore-exif"] ?? false,
  };
}

function parse(args: string[]) {
  try {
    return parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(shorten((err as Error).message));
  }
}

/** parseArgs' messages, minus its advice about '--' (rarely what the user meant). */
function shorten(message: string): string {
  return message.replace(/\. To specify a positional argument.*$/s, "").replace(
    /^Unknown/,
    "unknown",
  );
}

function checkPng(path: string, flag: string): void {
  if (!/\.png$/i.test(path)) {
    throw new UsageError(`${flag} ${path}: outputs are PNG files, name it *.png`);
  }
}

function samePath(a: string, b: string): boolean {
  const norm = (p: string) => p.replace(/^\.\//, "");
  return norm(a) === norm(b);
}

function positiveInt(text: string, flag: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`${flag} wants a positive integer, got '${text}'`);
  }
  return n;
}

function nonNegative(text: string, flag: string): number {
  const n = Number(text);
  if (!/^\d+(\.\d+)?$|^\.\d+$/.test(text.trim()) || !Number.isFinite(n)) {
    throw new UsageError(`${flag} wants a number >= 0 such as 0.5, got '${text}'`);
  }
  return n;
}

/** A pixel count: a positive integer, or a number of megapixels written `24M` / `24MP`. */
function pixelCount(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(m|mp)?$/i.exec(text.trim());
  const n = m ? (m[2] ? Number(m[1]) * 1e6 : Number(m[1])) : NaN;
  if (!m || !(n >= 1) || (!m[2] && !Number.isSafeInteger(n))) {
    throw new UsageError(`--max-pixels wants a pixel count such as 50000000 or 50M, got '${text}'`);
  }
  return Math.floor(n);
}
