/** Types of dist/weights.js: the shipped weights, inlined, for runtimes without files. */

/** The bytes of weights/crm-lite.safetensors, for `createRefiner({ weights })`. */
export declare const weights: Uint8Array;
