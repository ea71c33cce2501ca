// Where the host may start placing buffers: everything below belongs to the
// module's static data. The TypeScript arena (src/engine/arena.ts) owns the rest.
export function heapBase(): usize {
  return __heap_base;
}
