// Runs the bundle (dist/crispmask.js) in Node on raw pixels, for tests/bundle_test.ts:
//   node node_refine.mjs DIR
// DIR/input.json {width, height, channels, maskWidth, maskHeight, build?, bytesWeights?},
// DIR/image.bin, DIR/mask.bin in; DIR/out.bin (the refined mask) and DIR/info.json out.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createRefiner } from "../../dist/crispmask.js";

const dir = process.argv[2];
const input = JSON.parse(await readFile(join(dir, "input.json"), "utf8"));
const options = input.build ? { build: input.build } : {};
if (input.bytesWeights) options.weights = (await import("../../dist/weights.js")).weights;
const refiner = await createRefiner(options);
try {
  const image = {
    width: input.width,
    height: input.height,
    channels: input.channels,
    data: new Uint8Array(await readFile(join(dir, "image.bin"))),
  };
  const coarse = {
    width: input.maskWidth,
    height: input.maskHeight,
    data: new Uint8Array(await readFile(join(dir, "mask.bin"))),
  };
  const out = await refiner.refine(image, coarse);
  await writeFile(join(dir, "out.bin"), out.data);
  const info = { build: refiner.build, workers: refiner.workers, node: process.version };
  await writeFile(join(dir, "info.json"), JSON.stringify(info));
} finally {
  refiner.dispose();
}
