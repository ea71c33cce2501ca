// Entry point of the kernel module: re-exports every kernel.
// Kernels take byte offsets into linear memory and sizes; they never allocate.
export * from "./memory";
export * from "./activation";
export * from "./conv";
export * from "./pool";
export * from "./resize";
export * from "./cam";
export * from "./window";
