/**
 * Loads the compiled kernel module and picks the build this runtime can run.
 *
 * Two builds exist (scripts/build_wasm.ts): relaxed SIMD (fused multiply-add)
 * and plain SIMD. The choice is made by validating a tiny module that uses one
 * relaxed-SIMD instruction, never by the runtime's name: any engine that
 * validates it can run the faster build.
 *
 * The bytes come from build/wasm/ when running from source, or from inside
 * the file when running a bundle (src/platform/embedded.ts).
 *
 * @module
 */

import { decodeBase64 } from "../platform/base64.ts";
import { embedded } from "../platform/embedded.ts";
import { readBytes } from "../platform/read.ts";

/** Which compiled build of the kernels runs. */
export type KernelBuild = "relaxed-simd" | "simd";

/**
 * A module exporting `() -> v128` whose body is
 * `f32x4.relaxed_madd(v128.const 0, v128.const 0, v128.const 0)`.
 */
const RELAXED_PROBE = (() => {
  const vconst = [0xfd, 0x0c, ...new Array(16).fill(0)];
  const body = [0x00, ...vconst, ...vconst, ...vconst, 0xfd, 0x85, 0x02, 0x0b];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
    0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type: () -> v128
    0x03, 0x02, 0x01, 0x00, // function 0 has type 0
    0x0a, body.length + 2, 0x01, body.length, ...body, // code
  ]);
})();

/** A tiny module with one plain SIMD instruction (`v128.const`). */
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b,
  0x03, 0x02, 0x01, 0x00,
  0x0a, 0x16, 0x01, 0x14, 0x00, 0xfd, 0x0c, ...new Array(16).fill(0), 0x0b,
]);

/** True when this runtime validates relaxed-SIMD instructions. */
export function supportsRelaxedSimd(): boolean {
  return WebAssembly.validate(RELAXED_PROBE);
}

/** True when this runtime validates fixed-width (128-bit) SIMD. */
export function supportsSimd(): boolean {
  return WebAssembly.validate(SIMD_PROBE);
}

/** The build to use here, or an error naming what the runtime lacks. */
export function chooseBuild(prefer?: KernelBuild): KernelBuild {
  if (!supportsSimd()) {
    throw new Error("crispmask needs WebAssembly SIMD (128-bit), which this runtime does not support");
  }
  if (prefer === "simd") return "simd";
  if (supportsRelaxedSimd()) return "relaxed-simd";
  if (prefer === "relaxed-simd") {
    throw new Error("relaxed SIMD was requested but this runtime does not validate it");
  }
  return "simd";
}

const FILE_OF: Record<KernelBuild, string> = {
  "relaxed-simd": "kernels-relaxed.wasm",
  "simd": "kernels-simd.wasm",
};

/**
 * The compiled bytes of a build: embedded in a bundle, otherwise read from
 * `build/wasm/` (run `deno task build` first).
 */
export async function readKernelBytes(build: KernelBuild): Promise<Uint8Array> {
  const inline = embedded.kernels?.[build];
  if (inline !== undefined) return decodeBase64(inline);
  const url = new URL(`../../build/wasm/${FILE_OF[build]}`, import.meta.url);
  try {
    return await readBytes(url);
  } catch (err) {
    throw new Error(
      `cannot read the kernel module ${url.href} (${(err as Error).message}); run \`deno task build\``,
    );
  }
}

/** A compiled kernel module, ready to instantiate (also in workers). */
export interface KernelModule {
  build: KernelBuild;
  module: WebAssembly.Module;
}

/** Compiles the best build this runtime supports. */
export async function compileKernels(prefer?: KernelBuild): Promise<KernelModule> {
  const build = chooseBuild(prefer);
  const module = await WebAssembly.compile(await readKernelBytes(build) as BufferSource);
  return { build, module };
}

/** An instance bound to its linear memory. */
export interface KernelInstance {
  build: KernelBuild;
  memory: WebAssembly.Memory;
  // deno-lint-ignore no-explicit-any
  exports: Record<string, any>;
}

/** Instantiates the module over `memory` (a new one when omitted). */
export function instantiateKernels(
  km: KernelModule,
  memory: WebAssembly.Memory = new WebAssembly.Memory({ initial: 16, maximum: 65536 }),
): KernelInstance {
  const abort = (_msg: number, _file: number, line: number, col: number) => {
    throw new Error(`kernel aborted at line ${line}:${col}`);
  };
  const instance = new WebAssembly.Instance(km.module, { env: { memory, abort } });
  return { build: km.build, memory, exports: instance.exports };
}
