/**
 * A bump allocator over a kernel instance's linear memory.
 *
 * TypeScript owns the memory layout: kernels only see byte offsets. Buffers are
 * 16-byte aligned (one SIMD vector) and freed in stack order with
 * `mark()`/`release()`, which fits the forward pass: a stage's scratch is
 * released as a whole when the stage ends.
 *
 * @module
 */

const ALIGN = 16;
const PAGE = 65536;

/** A region of linear memory: byte offset and length in floats. */
export interface F32Buffer {
  /** byte offset into linear memory (16-byte aligned) */
  ptr: number;
  /** number of float32 elements */
  length: number;
}

/** Stack-ordered allocator over a `WebAssembly.Memory`. */
export class Arena {
  #memory: WebAssembly.Memory;
  #top: number;
  #peak: number;
  readonly base: number;

  constructor(memory: WebAssembly.Memory, base: number) {
    this.#memory = memory;
    this.base = Math.ceil(base / ALIGN) * ALIGN;
    this.#top = this.base;
    this.#peak = this.base;
  }

  /** Allocates `floats` float32 elements (uninitialised). */
  f32(floats: number): F32Buffer {
    if (!Number.isInteger(floats) || floats < 0) {
      throw new RangeError(`cannot allocate ${floats} floats`);
    }
    return { ptr: this.bytes(floats * 4), length: floats };
  }

  /** Allocates `n` bytes and returns their offset. */
  bytes(n: number): number {
    const ptr = this.#top;
    const end = ptr + Math.ceil(n / ALIGN) * ALIGN;
    this.#ensure(end);
    this.#top = end;
    this.#peak = Math.max(this.#peak, end);
    return ptr;
  }

  /** Copies `data` into a new buffer. */
  upload(data: Float32Array): F32Buffer {
    const buf = this.f32(data.length);
    this.view(buf).set(data);
    return buf;
  }

  /** A Float32Array view of `buf` (invalidated when memory grows). */
  view(buf: F32Buffer): Float32Array {
    return new Float32Array(this.#memory.buffer, buf.ptr, buf.length);
  }

  /** The current top, to release back to later. */
  mark(): number {
    return this.#top;
  }

  /** Frees everything allocated after `mark`. */
  release(mark: number): void {
    if (mark < this.base || mark > this.#top) throw new RangeError(`bad arena mark ${mark}`);
    this.#top = mark;
  }

  /** Highest byte offset ever used (for memory reports). */
  get peakBytes(): number {
    return this.#peak;
  }

  #ensure(end: number): void {
    const have = this.#memory.buffer.byteLength;
    if (end <= have) return;
    const pages = Math.ceil((end - have) / PAGE);
    try {
      this.#memory.grow(pages);
    } catch {
      throw new RangeError(
        `out of WebAssembly memory: need ${(end / 2 ** 20).toFixed(1)} MiB`,
      );
    }
  }
}
