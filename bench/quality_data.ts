/**
 * Evaluation data for the quality benchmark: finding sets and images in a
 * data directory, decoding them, and providing each coarse kind (a
 * `coarse-<kind>/` folder when the set has one, else a synthetic kind made
 * from the ground truth). Every problem with one file becomes a
 * {@link SkipError} naming that file, so the caller can skip it, evaluate the
 * rest, and list what was skipped.
 *
 * Layout of a set (train/evaluate.py's): `<set>/images/<name>.jpg`,
 * `<set>/gt/<name>.png`, optionally `<set>/coarse-<kind>/<name>.png`.
 *
 * @module
 */

import { join } from "node:path";
import { isSyntheticKind, synthesizeCoarse } from "../src/baselines/coarse_kinds.ts";
import { maskPlane } from "../src/baselines/guided_filter.ts";
import { resizeBilinear } from "../src/baselines/resample.ts";
import { decodeImage, decodeMask } from "../src/io/image_file.ts";
import { checkAspect } from "../src/mask_ops.ts";
import type { Mask, RgbImage } from "../src/types.ts";

/** A file (or a set, or a set's kind) left out, and why. */
export interface Skipped {
  /** the set's name */
  set: string;
  /** the file or folder concerned */
  file: string;
  /** the coarse kind, when only that kind was skipped */
  kind?: string;
  /** the method, when only that method was skipped */
  method?: string;
  /** what was wrong */
  reason: string;
}

/** A problem with one input file; the benchmark skips what it concerns. */
export class SkipError extends Error {
  /** the file concerned */
  readonly file: string;
  constructor(file: string, reason: string) {
    super(reason);
    this.name = "SkipError";
    this.file = file;
  }
}

/** One image of a set with its ground truth. */
export interface Item {
  /** file name without extension */
  name: string;
  /** path of the photo */
  imagePath: string;
  /** path of the ground truth */
  gtPath: string;
}

/** Where a set's coarse masks of one kind come from. */
export type CoarseSource = "file" | "synthetic";

const IMAGE_EXTS = [".jpg", ".jpeg", ".png"];

async function isDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/** File names in a directory (empty when it does not exist). */
async function listNames(dir: string): Promise<string[]> {
  const out: string[] = [];
  if (!(await isDir(dir))) return out;
  // symbolic links count as what they point to (a data folder may link its files)
  for await (const e of Deno.readDir(dir)) if (e.isFile || e.isSymlink) out.push(e.name);
  return out.sort();
}

function stem(file: string): string {
  const dot = file.lastIndexOf(".");
  return dot > 0 ? file.slice(0, dot) : file;
}

/** The sets of `data`: every subfolder with an `images/` or `gt/` folder, by name. */
export async function discoverSets(data: string): Promise<string[]> {
  if (!(await isDir(data))) throw new Error(`no data directory ${data}`);
  const sets: string[] = [];
  for await (const e of Deno.readDir(data)) {
    if (!e.isDirectory && !e.isSymlink) continue;
    if (await isDir(join(data, e.name, "images")) || await isDir(join(data, e.name, "gt"))) {
      sets.push(e.name);
    }
  }
  return sets.sort();
}

/**
 * The images of a set that have a ground truth, sorted by name. Images
 * without a ground truth, ground truths without an image and a set with
 * neither folder are reported through `skip`.
 */
export async function listItems(
  data: string,
  set: string,
  skip: (s: Skipped) => void,
): Promise<Item[]> {
  const dir = join(data, set);
  if (!(await isDir(dir))) {
    skip({ set, file: dir, reason: "no such set folder" });
    return [];
  }
  const images = (await listNames(join(dir, "images"))).filter((f) =>
    IMAGE_EXTS.some((x) => f.toLowerCase().endsWith(x))
  );
  const gts = new Map(
    (await listNames(join(dir, "gt"))).filter((f) => f.toLowerCase().endsWith(".png")).map((
      f,
    ) => [stem(f), f]),
  );
  if (images.length === 0) {
    skip({
      set,
      file: join(dir, "images"),
      reason: "the set has no images (*.jpg, *.jpeg, *.png)",
    });
    return [];
  }
  const items: Item[] = [];
  const seen = new Set<string>();
  for (const f of images) {
    const name = stem(f);
    seen.add(name);
    const gt = gts.get(name);
    if (!gt) skip({ set, file: join(dir, "images", f), reason: `no ground truth gt/${name}.png` });
    else items.push({ name, imagePath: join(dir, "images", f), gtPath: join(dir, "gt", gt) });
  }
  for (const [name, f] of gts) {
    if (!seen.has(name)) {
      skip({ set, file: join(dir, "gt", f), reason: "ground truth without an image" });
    }
  }
  return items;
}

/** Where kind `kind` comes from in this set, or null when it cannot be had. */
export async function coarseSource(
  data: string,
  set: string,
  kind: string,
): Promise<CoarseSource | null> {
  if (await isDir(join(data, set, `coarse-${kind}`))) return "file";
  return isSyntheticKind(kind) ? "synthetic" : null;
}

async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new SkipError(path, "no such file");
    throw new SkipError(path, `cannot read: ${(err as Error).message}`);
  }
}

/** Decodes with `decode`, turning any failure into a SkipError naming `path`. */
async function decoded<T>(path: string, decode: (b: Uint8Array) => Promise<T>): Promise<T> {
  const bytes = await readBytes(path);
  try {
    return await decode(bytes);
  } catch (err) {
    throw new SkipError(path, (err as Error).message);
  }
}

/** The photo and ground truth of an item; throws SkipError when either is unusable or they differ in size. */
export async function loadPair(item: Item): Promise<{ image: RgbImage; gt: Mask }> {
  const image = (await decoded(item.imagePath, (b) => decodeImage(b, item.imagePath))).image;
  const gt = (await decoded(item.gtPath, (b) => decodeMask(b, item.gtPath))).mask;
  if (gt.width !== image.width || gt.height !== image.height) {
    throw new SkipError(
      item.gtPath,
      `ground truth is ${gt.width}x${gt.height} but the image ${item.imagePath} is ${image.width}x${image.height}`,
    );
  }
  return { image, gt };
}

/**
 * The coarse mask of kind `kind` for an item, at the ground truth's size. A
 * stored mask at another size with the image's aspect ratio is resized
 * bilinearly (as train/evaluate.py does); another aspect ratio is a SkipError.
 */
export async function loadCoarse(
  data: string,
  set: string,
  kind: string,
  source: CoarseSource,
  name: string,
  gt: Mask,
): Promise<Mask> {
  if (source === "synthetic") {
    if (!isSyntheticKind(kind)) throw new SkipError(name, `no generator for coarse kind ${kind}`);
    return synthesizeCoarse(kind, gt, name);
  }
  const path = join(data, set, `coarse-${kind}`, `${name}.png`);
  const mask = (await decoded(path, (b) => decodeMask(b, path))).mask;
  if (mask.width === gt.width && mask.height === gt.height) return mask;
  try {
    checkAspect(gt.width, gt.height, mask.width, mask.height);
  } catch {
    throw new SkipError(
      path,
      `coarse mask is ${mask.width}x${mask.height}, the image ${gt.width}x${gt.height}: aspect ratios differ`,
    );
  }
  return resizeMask(mask, gt.width, gt.height);
}

/** Bilinear resize of an 8-bit mask, rounded back to bytes. */
function resizeMask(mask: Mask, width: number, height: number): Mask {
  const p = resizeBilinear(maskPlane(mask), width, height).data;
  const out = new Uint8Array(p.length);
  for (let i = 0; i < p.length; i++) out[i] = Math.round(Math.min(1, Math.max(0, p[i])) * 255);
  return { width, height, data: out };
}
