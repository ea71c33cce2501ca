/**
 * The command-line tool: `crispmask refine <image> <coarse-mask> -o out.png`.
 * Reads and decodes the inputs, refines, encodes and writes the outputs,
 * and reports (a summary line, or `--json`). Every failure becomes one line
 * `crispmask: <message>` on stderr and a non-zero exit code.
 *
 * @module
 */

import process from "node:process";
import { CrispmaskError } from "../errors.ts";
import { DEFAULT_COARSE_TRUST } from "../coarse_trust.ts";
import { checkAspect } from "../mask_ops.ts";
import {
  createRefiner,
  type Progress,
  type RefineOptions,
  type RefinerOptions,
  type StageReport,
} from "../refiner.ts";
import type { Mask } from "../types.ts";
import {
  type DecodedImage,
  type DecodedMask,
  decodeImage,
  decodeMask,
  encodeImagePng,
  encodeMaskPng,
} from "../io/image_file.ts";
import { swapsAxes } from "../io/orientation.ts";
import { parseCommand, type RefineCommand, UsageError } from "./args.ts";
import { checkWritable, type OutputFile, readInput, writeOutputs } from "./files.ts";
import { drawOverlay } from "./overlay.ts";
import { progressBar, SILENT } from "./progress.ts";
import { HELP } from "./usage.ts";

/** Exit codes. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** Runs the tool with `args` (without the program name); resolves to the exit code. */
export async function main(args: string[]): Promise<number> {
  let command;
  try {
    command = parseCommand(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    fail(`${err.message} (see --help)`);
    return EXIT.usage;
  }
  if (command.kind === "help") {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  try {
    const report = await refineCommand(command);
    if (command.json) process.stdout.write(JSON.stringify(report, null, 2) + "\n");
    else if (!command.quiet) process.stdout.write(summary(report) + "\n");
    return EXIT.ok;
  } catch (err) {
    fail(errorMessage(err));
    return EXIT.failure;
  }
}

/** One stage in `--json`'s report. */
export interface StageDetail {
  encoder: string;
  query: string;
  sparse: boolean;
  ms: number;
  pixels_evaluated: number;
  /** share of the query grid's tiles that ran (1 when dense) */
  active_tiles: number;
}

/** What `--json` prints. */
export interface Report {
  image: {
    path: string;
    format: string;
    width: number;
    height: number;
    orientation: number;
    oriented: boolean;
  };
  coarse: { path: string; format: string; width: number; height: number; source: string };
  output: { path: string; width: number; height: number; binary: boolean };
  overlay: string | null;
  build: string;
  /** refinement stages run, counting both passes with `flip` (0 when the mask passed through: empty, full or tiny object) */
  stages: number;
  workers: number | null;
  dense: boolean;
  /** whether the mirrored photo was refined too and averaged in */
  flip: boolean;
  /** logits the output leaned toward the coarse mask (RefineOptions.coarseTrust; 0: off) */
  coarse_trust: number;
  /** each stage (twice with `flip`, the mirrored pass second): encoder and query sizes (width x height), wall time, pixels the network evaluated */
  stage_details: StageDetail[];
  /** pixels the network evaluated over all stages (the rest kept the upsampled prediction) */
  pixels_evaluated: number;
  /** wall-clock milliseconds of each step; `total` covers the whole command */
  timings_ms: {
    read: number;
    decode: number;
    load: number;
    refine: number;
    encode: number;
    write: number;
    total: number;
  };
}

async function refineCommand(cmd: RefineCommand): Promise<Report> {
  const clock = stopwatch();
  const [imageBytes, coarseBytes] = await Promise.all([
    readInput(cmd.image, "image"),
    readInput(cmd.coarse, "coarse mask"),
  ]);
  await checkWritable(cmd.output);
  if (cmd.overlay) await checkWritable(cmd.overlay);
  const read = clock.lap();

  const decodeOptions = {
    maxPixels: cmd.maxPixels,
    orientation: cmd.ignoreExif ? "ignore" : "apply",
  } as const;
  const image = await decodeImage(imageBytes, cmd.image, decodeOptions);
  const coarse = await decodeMask(coarseBytes, cmd.coarse, decodeOptions);
  checkFits(image, coarse, cmd);
  const decode = clock.lap();

  const { mask, build, stages, details, load, refine } = await runRefiner(
    image,
    coarse.mask,
    cmd,
  );
  clock.lap();

  const outputs: OutputFile[] = [{ path: cmd.output, bytes: encodeMaskPng(mask) }];
  if (cmd.overlay) {
    outputs.push({
      path: cmd.overlay,
      bytes: encodeImagePng(drawOverlay(image.image, mask, coarse.mask)),
    });
  }
  const encode = clock.lap();
  await writeOutputs(outputs);
  const write = clock.lap();

  return {
    image: {
      path: cmd.image,
      format: image.format,
      ...size(image.image),
      orientation: image.orientation,
      oriented: image.oriented,
    },
    coarse: {
      path: cmd.coarse,
      format: coarse.format,
      ...size(coarse.mask),
      source: coarse.source,
    },
    output: { path: cmd.output, ...size(mask), binary: cmd.binary },
    overlay: cmd.overlay ?? null,
    build,
    stages,
    workers: cmd.workers ?? null,
    dense: cmd.dense,
    flip: cmd.flip,
    coarse_trust: cmd.coarseTrust ?? DEFAULT_COARSE_TRUST,
    stage_details: details,
    pixels_evaluated: details.reduce((a, d) => a + d.pixels_evaluated, 0),
    timings_ms: { read, decode, load, refine, encode, write, total: clock.total() },
  };
}

/** Creates the refiner, refines with a progress bar, and always disposes. */
async function runRefiner(image: DecodedImage, coarse: Mask, cmd: RefineCommand) {
  const clock = stopwatch();
  // `workers` and `dense` are passed through for refiners that support them; others ignore them
  const refinerOptions: RefinerOptions & { workers?: number } = { maxPixels: cmd.maxPixels };
  if (cmd.workers !== undefined) refinerOptions.workers = cmd.workers;
  const refiner = await createRefiner(refinerOptions);
  const load = clock.lap();
  const bar = cmd.quiet || !process.stderr.isTTY ? SILENT : progressBar(process.stderr);
  let stages = 0;
  const details: StageDetail[] = [];
  try {
    const options: RefineOptions = {
      output: cmd.binary ? "binary" : "soft",
      onProgress: (p: Progress) => {
        stages = p.stages;
        bar.update(p);
      },
      onStage: (s: StageReport) => details.push(stageDetail(s)),
    };
    if (cmd.dense) options.dense = true;
    if (cmd.flip) options.flip = true;
    if (cmd.coarseTrust !== undefined) options.coarseTrust = cmd.coarseTrust;
    const mask = await refiner.refine(image.image, coarse, options);
    return { mask, build: refiner.build, stages, details, load, refine: clock.lap() };
  } finally {
    bar.stop();
    refiner.dispose();
  }
}

/**
 * The refiner checks the aspect ratio too; checking here first lets the
 * message say when the mask fits the photo as stored, before its EXIF
 * rotation: the mask was then made by a tool that ignored the orientation.
 */
function checkFits(image: DecodedImage, coarse: DecodedMask, cmd: RefineCommand): void {
  const { width: mw, height: mh } = coarse.mask;
  try {
    checkAspect(image.image.width, image.image.height, mw, mh);
  } catch (err) {
    if (!(err instanceof CrispmaskError) || !image.oriented || !swapsAxes(image.orientation)) {
      throw err;
    }
    try {
      checkAspect(image.storedWidth, image.storedHeight, mw, mh);
    } catch {
      throw err;
    }
    throw new CrispmaskError(
      "aspect-mismatch",
      `${err.message}; ${cmd.coarse} fits ${cmd.image} as stored, before its EXIF orientation ` +
        `(${image.orientation}) turns it upright: if the mask was made from the stored pixels, add --ignore-exif`,
    );
  }
}

function stageDetail(s: StageReport): StageDetail {
  const wxh = ([h, w]: readonly [number, number]) => `${w}x${h}`;
  return {
    encoder: wxh(s.size),
    query: wxh(s.target),
    sparse: s.sparse,
    ms: Math.round(s.ms * 10) / 10,
    pixels_evaluated: s.queried,
    active_tiles: Math.round(s.activeTiles * 1e4) / 1e4,
  };
}

function size(x: { width: number; height: number }): { width: number; height: number } {
  return { width: x.width, height: x.height };
}

/** The one-line summary printed when neither --json nor --quiet is given. */
function summary(r: Report): string {
  const t = r.timings_ms, s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  // with --flip, `stages` counts both passes: say "2 stages x 2 passes", not "4 stages"
  const perPass = r.flip ? r.stages / 2 : r.stages;
  const passes = r.flip ? " x 2 passes (flip)" : "";
  const what = r.stages ? `${perPass} stage${perPass > 1 ? "s" : ""}${passes}` : "passed through";
  const overlay = r.overlay ? `, overlay ${r.overlay}` : "";
  return `${r.output.path}: ${r.output.width}x${r.output.height} ${
    r.output.binary ? "binary" : "soft"
  } mask` +
    `${overlay} (${what}, ${r.build}; decode ${s(t.decode)}, refine ${s(t.refine)}, ` +
    `encode ${s(t.encode)}, total ${s(t.total)})`;
}

function stopwatch() {
  const start = performance.now();
  let last = start;
  const round = (ms: number) => Math.round(ms * 10) / 10;
  return {
    /** milliseconds since the previous lap (or the start) */
    lap(): number {
      const now = performance.now(), ms = now - last;
      last = now;
      return round(ms);
    },
    total: () => round(performance.now() - start),
  };
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return `unexpected error: ${String(err)}`;
}

/** Prints `crispmask: <message>` as exactly one line on stderr. */
function fail(message: string): void {
  process.stderr.write(`crispmask: ${message.replace(/\s*\n\s*/g, " ").trim()}\n`);
}
