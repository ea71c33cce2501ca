/**
 * The multi-resolution stage schedule: the first stage near the training
 * resolution, each next stage twice the size, the last at full size
 * (train/model.py's `stage_sizes`, exactly).
 *
 * @module
 */

/** A stage's encoder size, [height, width]. */
export type StageSize = [number, number];

/**
 * Encoder sizes of each stage for an image of `h` x `w`: the first with a
 * long side in (base/2, base], doubling to full size. An image no larger
 * than `base` runs one stage at full size.
 */
export function stageSizes(h: number, w: number, base: number): StageSize[] {
  const long = Math.max(h, w);
  if (long <= base) return [[h, w]];
  const n = Math.max(1, Math.ceil(Math.log2(long / base) - 1e-9));
  const sizes: StageSize[] = [];
  for (let k = n; k >= 1; k--) {
    const f = 2 ** k;
    sizes.push([Math.max(1, Math.floor(h / f + 0.5)), Math.max(1, Math.floor(w / f + 0.5))]);
  }
  sizes.push([h, w]);
  return sizes;
}

/** Each stage's query size: the next stage's encoder size, the full size for the last. */
export function querySizes(stages: StageSize[]): StageSize[] {
  return stages.map((_, i) => stages[Math.min(i + 1, stages.length - 1)]);
}
