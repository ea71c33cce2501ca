/**
 * Builds the one-file bundle of the library (src/api.ts: createRefiner,
 * the metrics, the types) with esbuild, for Deno, Node 20+ and browsers:
 *
 *   dist/crispmask.js   ES module; both kernel builds and the worker's code inside
 *   dist/weights.js     ES module exporting the shipped weights as bytes (`weights`)
 *
 * The kernels and the worker reach the bundle through src/platform/embedded.ts,
 * which is replaced here by a module holding them; nothing else differs from
 * source. The bundle reads the weights from `../weights/crm-lite.safetensors`
 * beside it by default (as the npm package lays them out), or takes them as
 * bytes (dist/weights.js), a URL or a path.
 *
 * Run with `deno task bundle` (it compiles the kernels first).
 *
 * @module
 */

import * as esbuild from "esbuild";

const root = new URL("../", import.meta.url);
const at = (path: string) => new URL(path, root).pathname;
const dist = new URL("dist/", root);

/** ES2022: Node 20's language level (and every current browser's and Deno's). */
const TARGET = "es2022";

/** Base64 of `bytes` (Deno has `toBase64`; the bundle decodes it in any runtime). */
function encodeBase64(bytes: Uint8Array): string {
  return (bytes as Uint8Array & { toBase64(): string }).toBase64();
}

/** Serves `contents` for src/platform/embedded.ts. */
function embed(contents: string): esbuild.Plugin {
  return {
    name: "crispmask-embedded",
    setup(build) {
      build.onLoad({ filter: /[\\/]src[\\/]platform[\\/]embedded\.ts$/ }, () => ({
        contents,
        loader: "ts",
      }));
    },
  };
}

async function bundle(
  entry: string | esbuild.StdinOptions,
  contents: string,
  minify: boolean,
): Promise<string> {
  const result = await esbuild.build({
    ...(typeof entry === "string" ? { entryPoints: [at(entry)] } : { stdin: entry }),
    bundle: true,
    write: false,
    format: "esm",
    platform: "neutral",
    target: TARGET,
    minify,
    legalComments: "none",
    // read.ts imports node:fs only in Node; no other runtime evaluates that line
    external: ["node:*"],
    plugins: [embed(contents)],
    logLevel: "warning",
  });
  return result.outputFiles[0].text;
}

const version = JSON.parse(await Deno.readTextFile(at("deno.json"))).version as string;
const banner = `// crispmask ${version} (MIT) - one-file bundle, built by scripts/bundle.ts\n`;

// the worker first: the library embeds its source, and it embeds nothing itself
const worker = await bundle("src/workers/worker.ts", "export const embedded = {};", true);
const kernels = {
  "relaxed-simd": encodeBase64(await Deno.readFile(at("build/wasm/kernels-relaxed.wasm"))),
  "simd": encodeBase64(await Deno.readFile(at("build/wasm/kernels-simd.wasm"))),
};
const library = await bundle(
  "src/api.ts",
  `export const embedded = ${JSON.stringify({ kernels, worker })};`,
  true,
);
const weights = await bundle(
  {
    contents: [
      `import { decodeBase64 } from "./src/platform/base64.ts";`,
      `/** The shipped weights (weights/crm-lite.safetensors), for createRefiner({ weights }). */`,
      `export const weights = decodeBase64(${
        JSON.stringify(encodeBase64(await Deno.readFile(at("weights/crm-lite.safetensors"))))
      });`,
    ].join("\n"),
    resolveDir: at("."),
    sourcefile: "weights.ts",
    loader: "ts",
  },
  "export const embedded = {};",
  true,
);
await esbuild.stop();

await Deno.mkdir(dist, { recursive: true });
const outputs: [string, string][] = [["crispmask.js", library], ["weights.js", weights]];
for (const [name, text] of outputs) {
  // written whole, then renamed: a test never reads a half-written bundle
  const tmp = new URL(`${name}.tmp`, dist);
  await Deno.writeTextFile(tmp, banner + text);
  await Deno.rename(tmp, new URL(name, dist));
}

async function gzipSize(text: string): Promise<number> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return (await new Response(stream).arrayBuffer()).byteLength;
}
for (const [name, text] of outputs) {
  const raw = new TextEncoder().encode(banner + text).length;
  const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  console.log(`dist/${name}: ${kib(raw)} raw, ${kib(await gzipSize(banner + text))} gzip`);
}
