// @ts-self-types="./jpeg_wasm_deno.d.ts"
/**
 * The MozJPEG decoder's WebAssembly module, for Deno only.
 *
 * A source-phase import puts the module into Deno's module graph, so it loads
 * without any --allow-read permission on node_modules (a fetch of the file
 * would need one). TypeScript cannot parse `import source` yet, hence a
 * JavaScript file with its types beside it.
 *
 * @module
 */
import source decoder from "@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm";

export default decoder;
