/**
 * Argument checks shared by the typed kernel wrappers.
 *
 * Kernels trust their pointers and sizes (they are compiled without asserts),
 * so every wrapper checks, before the call, that each size is a positive
 * integer and that each buffer it reads or writes lies inside linear memory
 * and is as large as the sizes imply. A bad call is a thrown RangeError,
 * never a silent overrun.
 *
 * @module
 */

/** Throws unless `value` is an integer in [min, max]. */
export function checkInt(name: string, value: number, min = 1, max = 1 << 30): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
}

/**
 * Throws unless the `floats` float32 elements starting at byte offset `ptr`
 * lie inside `memory` (and `ptr` is 4-byte aligned and not the null page).
 */
export function checkSpan(memory: WebAssembly.Memory, name: string, ptr: number, floats: number): void {
  if (!Number.isInteger(ptr) || ptr <= 0 || ptr % 4 !== 0) {
    throw new RangeError(`${name}: bad pointer ${ptr}`);
  }
  const end = ptr + floats * 4;
  if (floats < 0 || end > memory.buffer.byteLength) {
    throw new RangeError(
      `${name}: ${floats} floats at ${ptr} overrun linear memory (${memory.buffer.byteLength} bytes)`,
    );
  }
}

/** Floats spanned by `rows` x `cols` pixels of `channels` at `stride` floats per pixel. */
export function spanOf(rows: number, cols: number, channels: number, stride: number): number {
  if (rows === 0 || cols === 0) return 0;
  return ((rows * cols) - 1) * stride + channels;
}
