/**
 * crispmask: refine a coarse object mask into an accurate mask at the full
 * resolution of a large photo, with the Continuous Refinement Model (CRM,
 * Shen et al., CVPR 2022) running in WebAssembly SIMD on CPU.
 *
 * ```ts
 * import { createRefiner } from "./mod.ts";
 * const refiner = await createRefiner();
 * const mask = await refiner.refine(image, coarse); // RgbImage, Mask -> Mask
 * refiner.dispose();
 * ```
 *
 * Run directly, this module is the command-line tool: `deno run mod.ts --help`.
 *
 * @module
 */

export * from "./src/api.ts";

if (import.meta.main) {
  const { main } = await import("./src/cli/main.ts");
  Deno.exit(await main(Deno.args));
}
