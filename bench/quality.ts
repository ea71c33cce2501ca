/**
 * Quality benchmark: the coarse masks, the guided filter and crispmask
 * (sparse, dense, and sparse with test-time flipping) on evaluation sets,
 * scored with src/metrics.
 *
 *     deno run -A bench/quality.ts [--data ../shared/data/eval] [--sets p3m,grabcut,davis,carvana]
 *       [--kinds isnet,lowres8,lowres32,perturbed] [--methods coarse,guided,sparse,dense,flip]
 *       [--workers 2] [--limit N] [--panels DIR] [--json out.json] [--weights path]
 *       [--ignore set=value|none]... [--first-stage PX] [--coarse-trust X]
 *
 * A data directory holds sets (subfolders with `images/` and `gt/`); kind K
 * is the folder `coarse-K` when present, else synthesised from the ground
 * truth (lowres8, lowres32, perturbed: src/baselines/coarse_kinds.ts).
 * Ground truth is binarised at 128; its ignore value defaults to 128 for a
 * set named `grabcut` and to none otherwise (`--ignore` changes that).
 * Prints a markdown table to stdout (progress to stderr), and with `--json`
 * writes every figure, per image too. Files that cannot be evaluated are
 * skipped with a message naming them and listed under the table.
 *
 * The default methods are coarse, guided and sparse (crispmask's default
 * mode): the whole eval folder then runs in under 10 minutes on 2 workers.
 * Add `dense` to `--methods` to compare sparse with dense inference (about
 * three times the engine's time).
 *
 * Where the time goes: crispmask refines on its workers; the guided filter
 * runs at the same time on a helper thread (bench/guided_thread.ts), so its
 * seconds per image are measured beside crispmask's; what depends only on
 * an image (its guide statistics, its ground truth's boundary regions) is
 * made once for its four coarse kinds.
 *
 * `--first-stage PX` overrides the weights' `base_long_side` (the first
 * stage's long side is in (PX/2, PX]; an image no larger runs one stage at
 * full size), to measure how the stage schedule suits each coarse kind
 * (bench/README.md).
 *
 * `--coarse-trust X` sets crispmask's `RefineOptions.coarseTrust` (default:
 * the library's default; 0 turns the rule off).
 *
 * This is train/evaluate.py's evaluation on the real engine.
 *
 * @module
 */

import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { DEFAULT_EPS, DEFAULT_GUIDE, DEFAULT_RADIUS } from "../src/baselines/guided_filter.ts";
import { GuidedThread } from "./guided_thread.ts";
import { encodeImagePng } from "../src/io/image_file.ts";
import { BoundaryRegions, MaskStats, type MetricOptions } from "../src/metrics/mod.ts";
import type { Refiner } from "../src/refiner.ts";
import type { Mask, RgbImage } from "../src/types.ts";
import { renderPanel } from "./panels.ts";
import {
  type CoarseSource,
  coarseSource,
  discoverSets,
  type Item,
  listItems,
  loadCoarse,
  loadPair,
  SkipError,
  type Skipped,
} from "./quality_data.ts";
import {
  formatSkipped,
  formatTable,
  type Method,
  METHODS,
  type ResultRow,
  resultRow,
} from "./quality_report.ts";

/** Default ignore values: GrabCut marks its uncertain band with 128. */
export const DEFAULT_IGNORE: Readonly<Record<string, number>> = { grabcut: 128 };

/** What to evaluate. */
export interface QualityOptions {
  /** the data directory */
  data: string;
  /** sets to evaluate (default: every set found in `data`) */
  sets?: string[];
  /** coarse kinds */
  kinds: string[];
  /** methods; the coarse masks are always scored, as every method is compared with them */
  methods: Method[];
  /** worker threads of the refiner (createRefiner's `workers`; default one per core, 0: inline) */
  workers?: number;
  /** first N images of each set, by name */
  limit?: number;
  /** write one panel PNG per image and kind under this directory */
  panels?: string;
  /** weights for crispmask (default: the bundled weights) */
  weights?: string;
  /** ground-truth ignore value per set; null: none (default {@link DEFAULT_IGNORE}) */
  ignore?: Record<string, number | null>;
  /** the stage schedule's base long side (default: the weights' `base_long_side`) */
  firstStage?: number;
  /** crispmask's `RefineOptions.coarseTrust` (default: the library's) */
  coarseTrust?: number;
  /** progress messages (default: stderr) */
  log?: (msg: string) => void;
}

/** Everything a run produced. */
export interface QualityReport {
  data: string;
  sets: string[];
  kinds: string[];
  methods: Method[];
  workers: number | null;
  limit: number | null;
  /** `--first-stage`, or null for the weights' own schedule */
  first_stage: number | null;
  /** `--coarse-trust`, or null for the library's default */
  coarse_trust: number | null;
  ignore: Record<string, number | null>;
  weights: { path: string; provenance: Record<string, unknown>; trained: boolean | null } | null;
  engine: { build: string } | null;
  guided: { radius: number; eps: number; guide: string };
  seconds: number;
  results: ResultRow[];
  skipped: Skipped[];
}

/** Accumulated figures of one (kind, method). */
interface Acc {
  stats: MaskStats;
  seconds: number[];
}

/** Per-set evaluation state. */
interface SetRun {
  set: string;
  ignoreValue?: number;
  sources: Map<string, CoarseSource>;
  acc: Map<string, Acc>; // key `${kind}/${method}`
}

const stderrLog = (msg: string) => console.error(msg);

/** Runs the benchmark; resolves to the report (the table is {@link formatTable} of its results). */
export async function runQuality(options: QualityOptions): Promise<QualityReport> {
  const t0 = performance.now();
  const log = options.log ?? stderrLog;
  const skipped: Skipped[] = [];
  const skip = (s: Skipped) => {
    skipped.push(s);
    log(
      `skipped ${s.set}: ${s.file}${s.kind ? ` [${s.kind}]` : ""}${
        s.method ? ` [${s.method}]` : ""
      }: ${s.reason}`,
    );
  };
  const ignore = { ...DEFAULT_IGNORE, ...options.ignore };
  const sets = options.sets ?? await discoverSets(options.data);
  const needsEngine = options.methods.some((m) => m === "sparse" || m === "dense" || m === "flip");
  const refiner = needsEngine ? await openRefiner(options) : null;
  const guided = options.methods.includes("guided") ? new GuidedThread() : null;
  const runners: Runners = { refiner, guided, coarseTrust: options.coarseTrust };
  const results: ResultRow[] = [];
  try {
    for (const set of sets) {
      const run = await evaluateSet(set, options, ignore[set] ?? undefined, runners, skip, log);
      if (run) results.push(...rowsOf(run, options.methods));
    }
  } finally {
    refiner?.dispose();
    guided?.close();
  }
  return {
    data: options.data,
    sets,
    kinds: options.kinds,
    methods: options.methods,
    workers: options.workers ?? null,
    limit: options.limit ?? null,
    first_stage: options.firstStage ?? null,
    coarse_trust: options.coarseTrust ?? null,
    ignore: Object.fromEntries(sets.map((s) => [s, ignore[s] ?? null])),
    weights: refiner ? weightsInfo(options.weights, refiner) : null,
    engine: refiner ? { build: refiner.build } : null,
    guided: { radius: DEFAULT_RADIUS, eps: DEFAULT_EPS, guide: DEFAULT_GUIDE },
    seconds: (performance.now() - t0) / 1000,
    results,
    skipped,
  };
}

async function openRefiner(options: QualityOptions): Promise<Refiner> {
  // loaded only when a crispmask method runs: coarse/guided runs need no engine build
  const { createRefinerWith } = await import("../src/refiner.ts");
  // `workers`: src/refiner.ts's pool (default one per core; 0 = the calling thread)
  const schedule = options.firstStage ? { baseLongSide: options.firstStage } : undefined;
  return await createRefinerWith({ weights: options.weights, workers: options.workers }, {
    schedule,
  });
}

function weightsInfo(path: string | undefined, refiner: Refiner): QualityReport["weights"] {
  const trained = refiner.provenance.trained;
  return {
    path: path ?? "weights/crm-lite.safetensors",
    provenance: { ...refiner.provenance },
    trained: typeof trained === "boolean" ? trained : null,
  };
}

/** Evaluates one set; null when it has nothing to evaluate. */
async function evaluateSet(
  set: string,
  options: QualityOptions,
  ignoreValue: number | undefined,
  runners: Runners,
  skip: (s: Skipped) => void,
  log: (msg: string) => void,
): Promise<SetRun | null> {
  let items = await listItems(options.data, set, skip);
  if (options.limit !== undefined) items = items.slice(0, options.limit);
  if (items.length === 0) return null;
  const sources = new Map<string, CoarseSource>();
  for (const kind of options.kinds) {
    const src = await coarseSource(options.data, set, kind);
    if (src) {
      sources.set(kind, src);
      continue;
    }
    const folder = join(options.data, set, `coarse-${kind}`);
    skip({ set, file: folder, kind, reason: "no such folder and no generator for this kind" });
  }
  const run: SetRun = { set, ignoreValue, sources, acc: new Map() };
  log(
    `${set}: ${items.length} images, kinds ${[...sources.keys()].join(", ")}, ignore ${
      ignoreValue ?? "none"
    }`,
  );
  for (const [n, item] of items.entries()) {
    const t = performance.now();
    await evaluateItem(run, item, options, runners, skip);
    log(
      `  ${set} ${n + 1}/${items.length} ${item.name} (${
        ((performance.now() - t) / 1000).toFixed(1)
      } s)`,
    );
  }
  return run;
}

/** What runs the refinements: crispmask's refiner and the guided filter's helper thread. */
interface Runners {
  refiner: Refiner | null;
  guided: GuidedThread | null;
  coarseTrust?: number;
}

/** Scores every kind and method on one image. */
async function evaluateItem(
  run: SetRun,
  item: Item,
  options: QualityOptions,
  runners: Runners,
  skip: (s: Skipped) => void,
): Promise<void> {
  let pair: { image: RgbImage; gt: Mask };
  try {
    pair = await loadPair(item);
  } catch (err) {
    if (!(err instanceof SkipError)) throw err;
    return skip({ set: run.set, file: err.file, reason: err.message });
  }
  // what depends only on the image and its ground truth is made once for all kinds
  const metrics: MetricOptions = {
    ignoreValue: run.ignoreValue,
    regions: new BoundaryRegions(pair.gt, { ignoreValue: run.ignoreValue }),
  };
  runners.guided?.setImage(pair.image);
  for (const [kind, source] of run.sources) {
    let coarse: Mask;
    try {
      coarse = await loadCoarse(options.data, run.set, kind, source, item.name, pair.gt);
    } catch (err) {
      if (!(err instanceof SkipError)) throw err;
      skip({ set: run.set, file: err.file, kind, reason: err.message });
      continue;
    }
    await scoreKind(run, kind, item, { ...pair, coarse }, metrics, options, runners, skip);
  }
}

/**
 * Runs each method on one (image, coarse) pair and records its figures;
 * writes the panel. The guided filter runs on its thread while crispmask
 * refines.
 */
async function scoreKind(
  run: SetRun,
  kind: string,
  item: Item,
  input: { image: RgbImage; gt: Mask; coarse: Mask },
  metrics: MetricOptions,
  options: QualityOptions,
  runners: Runners,
  skip: (s: Skipped) => void,
): Promise<void> {
  const name = item.name;
  record(run, kind, "coarse", 0).stats.add(input.coarse, input.gt, metrics, name);
  const pending = new Map<Method, Promise<{ pred: Mask; seconds: number }>>();
  for (const method of options.methods) {
    if (method === "coarse") continue;
    const result = runMethod(method, input.coarse, input.image, runners, run.sources.size);
    result.catch(() => {}); // awaited below, in order
    pending.set(method, result);
    if (method !== "guided") await result.catch(() => {}); // one engine refinement at a time
  }
  const outputs = new Map<Method, Mask>();
  for (const [method, result] of pending) {
    try {
      const { pred, seconds } = await result;
      record(run, kind, method, seconds).stats.add(pred, input.gt, metrics, name);
      outputs.set(method, pred);
    } catch (err) {
      skip({
        set: run.set,
        file: item.imagePath,
        kind,
        method,
        reason: `refinement failed: ${(err as Error).message}`,
      });
    }
  }
  if (options.panels) await writePanel(options.panels, run, kind, name, input, outputs);
}

/** The accumulator of (kind, method), with this image's seconds recorded. */
function record(run: SetRun, kind: string, method: Method, seconds: number): Acc {
  const key = `${kind}/${method}`;
  let acc = run.acc.get(key);
  if (!acc) run.acc.set(key, acc = { stats: new MaskStats(), seconds: [] });
  acc.seconds.push(seconds);
  return acc;
}

/**
 * One method's mask and seconds. The guided filter's guide statistics are
 * made once per image, and each of its `kinds` coarse kinds is charged an
 * equal part.
 */
async function runMethod(
  method: Method,
  coarse: Mask,
  image: RgbImage,
  runners: Runners,
  kinds: number,
): Promise<{ pred: Mask; seconds: number }> {
  if (method === "guided") {
    if (!runners.guided) throw new Error("no guided thread");
    return await runners.guided.refine(coarse, 1 / kinds);
  }
  if (!runners.refiner) throw new Error("no refiner");
  const t = performance.now();
  // `dense` selects the pipeline (src/refiner.ts): sparse boundary-band inference unless true;
  // `flip` averages in the refinement of the mirrored photo
  const pred = await runners.refiner.refine(image, coarse, {
    dense: method === "dense",
    flip: method === "flip",
    coarseTrust: runners.coarseTrust,
  });
  return { pred, seconds: (performance.now() - t) / 1000 };
}

/** Panel of the first crispmask method run (else the guided filter). */
async function writePanel(
  dir: string,
  run: SetRun,
  kind: string,
  name: string,
  input: { image: RgbImage; gt: Mask; coarse: Mask },
  outputs: Map<Method, Mask>,
): Promise<void> {
  const refined = outputs.get("sparse") ?? outputs.get("dense") ?? outputs.get("flip") ??
    outputs.get("guided");
  if (!refined) return;
  const panel = renderPanel({ ...input, refined, ignoreValue: run.ignoreValue });
  const path = join(dir, run.set, kind, `${name}.png`);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, encodeImagePng(panel));
}

/** The result rows of a set, by kind then method in the order asked. */
function rowsOf(run: SetRun, methods: Method[]): ResultRow[] {
  const rows: ResultRow[] = [];
  for (const [kind, source] of run.sources) {
    const coarse = run.acc.get(`${kind}/coarse`);
    if (!coarse || coarse.stats.count === 0) continue;
    for (const method of methods) {
      const acc = run.acc.get(`${kind}/${method}`);
      if (!acc || acc.stats.count === 0) continue;
      rows.push(
        resultRow({ set: run.set, kind, source, method }, acc.stats, acc.seconds, coarse.stats),
      );
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------
// command line

/** Thrown for a bad command line. */
export class UsageError extends Error {}

const USAGE =
  `usage: deno run -A bench/quality.ts [--data DIR] [--sets a,b] [--kinds isnet,lowres8,lowres32,perturbed]
  [--methods coarse,guided,sparse,dense,flip] [--workers N] [--limit N] [--panels DIR] [--json FILE]
  [--weights FILE] [--ignore set=value|none]... [--first-stage PX] [--coarse-trust X]`;

/** Methods run when `--methods` is not given: dense inference is opt-in (it triples the time). */
export const DEFAULT_METHODS: readonly Method[] = ["coarse", "guided", "sparse"];

const DEFAULT_DATA = fileURLToPath(new URL("../../shared/data/eval", import.meta.url));

function list(s: string): string[] {
  return s.split(",").map((x) => x.trim()).filter(Boolean);
}

function integer(s: string | undefined, flag: string, min: number): number | undefined {
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isInteger(n) || n < min) {
    throw new UsageError(`${flag} needs an integer >= ${min}, got ${JSON.stringify(s)}`);
  }
  return n;
}

function nonNegative(s: string | undefined, flag: string): number | undefined {
  if (s === undefined) return undefined;
  const n = Number(s);
  if (s.trim() === "" || !Number.isFinite(n) || n < 0) {
    throw new UsageError(`${flag} needs a number >= 0, got ${JSON.stringify(s)}`);
  }
  return n;
}

function parseIgnore(items: string[]): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const it of items) {
    const [set, value] = it.split("=");
    const v = value === "none" ? null : Number(value);
    if (!set || value === undefined || (v !== null && (!Number.isInteger(v) || v < 0 || v > 255))) {
      throw new UsageError(
        `--ignore expects set=value (0..255) or set=none, got ${JSON.stringify(it)}`,
      );
    }
    out[set] = v;
  }
  return out;
}

/** Options and outputs of a command line. */
export function parseCommandLine(
  args: string[],
): { options: QualityOptions; json?: string; help: boolean } {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        data: { type: "string" },
        sets: { type: "string" },
        kinds: { type: "string" },
        methods: { type: "string" },
        workers: { type: "string" },
        limit: { type: "string" },
        panels: { type: "string" },
        json: { type: "string" },
        weights: { type: "string" },
        ignore: { type: "string", multiple: true },
        "first-stage": { type: "string" },
        "coarse-trust": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const methods = list(parsed.methods ?? DEFAULT_METHODS.join(","));
  const unknown = methods.filter((m) => !(METHODS as readonly string[]).includes(m));
  if (unknown.length) {
    throw new UsageError(`unknown methods: ${unknown.join(", ")} (known: ${METHODS.join(", ")})`);
  }
  const options: QualityOptions = {
    data: parsed.data ?? DEFAULT_DATA,
    sets: parsed.sets ? list(parsed.sets) : undefined,
    kinds: list(parsed.kinds ?? "isnet,lowres8,lowres32,perturbed"),
    methods: methods as Method[],
    workers: integer(parsed.workers, "--workers", 0),
    limit: integer(parsed.limit, "--limit", 1),
    panels: parsed.panels,
    weights: parsed.weights,
    ignore: parseIgnore(parsed.ignore ?? []),
    firstStage: integer(parsed["first-stage"], "--first-stage", 1),
    coarseTrust: nonNegative(parsed["coarse-trust"], "--coarse-trust"),
  };
  return { options, json: parsed.json, help: parsed.help ?? false };
}

/** Everything printed under the table: how the run was made, and what was skipped. */
export function formatFooter(report: QualityReport): string {
  const lines = [
    "",
    `Figures in percent; kind* = synthesised from the ground truth. Ignore values: ${
      Object.entries(report.ignore).map(([s, v]) => `${s} ${v ?? "none"}`).join(", ")
    }.`,
  ];
  if (report.weights) {
    const trained = report.weights.trained === false
      ? " — UNTRAINED weights, crispmask rows are meaningless"
      : "";
    lines.push(
      `Weights: ${report.weights.path}${trained}; kernels ${report.engine?.build}; workers ${
        report.workers ?? "default"
      }; coarse trust ${report.coarse_trust ?? "default"}.`,
    );
  }
  lines.push(timeLine(report));
  const skipped = formatSkipped(report.skipped);
  if (skipped) lines.push("", skipped);
  return lines.join("\n");
}

/**
 * Total time and its split by method, so that what dominates a run is
 * visible. The guided filter runs on its own thread beside crispmask, so it
 * is listed apart: the rest of the wall time is crispmask, decoding,
 * synthetic kinds, scoring and panels.
 */
function timeLine(report: QualityReport): string {
  const by = new Map<string, number>();
  for (const r of report.results) {
    if (r.seconds_per_image !== null) {
      by.set(r.method, (by.get(r.method) ?? 0) + r.seconds_per_image * r.images);
    }
  }
  const onMain = [...by].filter(([m]) => m !== "guided");
  const rest = report.seconds - onMain.reduce((a, [, s]) => a + s, 0);
  const parts = onMain.map(([m, s]) => `${m} ${s.toFixed(1)} s`);
  parts.push(`decoding, synthetic kinds, scoring, panels ${rest.toFixed(1)} s`);
  const guided = by.get("guided");
  const beside = guided === undefined
    ? ""
    : `; beside them, on a helper thread, guided ${guided.toFixed(1)} s`;
  return `Total ${report.seconds.toFixed(1)} s: ${parts.join(", ")}${beside}.`;
}

/** The command line: resolves to the exit code. */
export async function main(args: string[]): Promise<number> {
  let cmd;
  try {
    cmd = parseCommandLine(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`quality: ${err.message}\n${USAGE}`);
    return 2;
  }
  if (cmd.help) {
    console.log(USAGE);
    return 0;
  }
  let report;
  try {
    report = await runQuality(cmd.options);
  } catch (err) {
    console.error(`quality: ${(err as Error).message}`);
    return 1;
  }
  console.log(formatTable(report.results));
  console.log(formatFooter(report));
  if (cmd.json) {
    await writeFile(cmd.json, JSON.stringify(report, null, 1) + "\n");
    console.error(`wrote ${cmd.json}`);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
