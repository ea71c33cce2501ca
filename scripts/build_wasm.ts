/**
 * Compiles the AssemblyScript kernels in `assembly/` into two WebAssembly
 * builds: one with relaxed SIMD (fused multiply-add where the CPU has it) and
 * one with plain SIMD for runtimes that do not validate relaxed SIMD.
 * The facade (src/engine/wasm.ts) picks between them at load time.
 *
 * Usage: deno task build
 */

const VARIANTS = [
  { name: "kernels-relaxed", features: "simd,relaxed-simd" },
  { name: "kernels-simd", features: "simd" },
] as const;

const ASC = new URL("../node_modules/assemblyscript/bin/asc.js", import.meta.url);

async function compile(v: (typeof VARIANTS)[number]): Promise<void> {
  const args = [
    "run",
    "--allow-read",
    "--allow-write=build",
    "--allow-env",
    ASC.pathname,
    "assembly/index.ts",
    "-O3",
    "--noAssert",
    "--runtime",
    "stub",
    "--importMemory",
    "--initialMemory",
    "1",
    "--enable",
    v.features,
    "--outFile",
    `build/wasm/${v.name}.wasm`,
    "--textFile",
    `build/wasm/${v.name}.wat`,
  ];
  const out = await new Deno.Command(Deno.execPath(), { args, stderr: "inherit", stdout: "inherit" })
    .output();
  if (!out.success) throw new Error(`asc failed for ${v.name}`);
}

await Deno.mkdir("build/wasm", { recursive: true });
await Promise.all(VARIANTS.map(compile));
console.log("built", VARIANTS.map((v) => `build/wasm/${v.name}.wasm`).join(", "));
