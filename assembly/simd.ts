// Multiply-add that uses relaxed SIMD's fused form in the relaxed build.
// ASC_FEATURE_RELAXED_SIMD is asc's compile-time constant for --enable relaxed-simd,
// so the plain-SIMD build contains no relaxed opcode at all.
// @ts-ignore: decorator
@inline
export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}
