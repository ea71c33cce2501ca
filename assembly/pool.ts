// 3x3 max-pool, stride 2, padding 1, NHWC float32 with C contiguous channels.
// Padding never wins (PyTorch pads with -inf): only in-bounds taps are compared.
// The window's centre tap (2*oy, 2*ox) is always in bounds for PyTorch's output
// size, so it seeds the maximum.

/** Max of the in-bounds taps of one output pixel, C channels: SIMD body, scalar tail. */
function poolPixel(inPtr: usize, inH: i32, inW: i32, C: i32, out: usize, cy: i32, cx: i32): void {
  const pixBytes = <usize>C << 2;
  const y0 = max(cy - 1, 0), y1 = min(cy + 1, inH - 1);
  const x0 = max(cx - 1, 0), x1 = min(cx + 1, inW - 1);
  const centre = inPtr + <usize>(cy * inW + cx) * pixBytes;
  const C4 = C & ~3;
  let c = 0;
  for (; c < C4; c += 4) {
    const off = <usize>c << 2;
    let m = v128.load(centre + off);
    for (let y = y0; y <= y1; y++) {
      const row = inPtr + <usize>(y * inW) * pixBytes + off;
      for (let x = x0; x <= x1; x++) m = f32x4.max(m, v128.load(row + <usize>x * pixBytes));
    }
    v128.store(out + off, m);
  }
  for (; c < C; c++) {
    const off = <usize>c << 2;
    let m = load<f32>(centre + off);
    for (let y = y0; y <= y1; y++) {
      const row = inPtr + <usize>(y * inW) * pixBytes + off;
      for (let x = x0; x <= x1; x++) m = max(m, load<f32>(row + <usize>x * pixBytes));
    }
    store<f32>(out + off, m);
  }
}

/**
 * 3x3/2 max-pool with padding 1 of an inH x inW x C tensor into outH x outW x C,
 * output rows [oy0, oy1) only (callers split rows across workers; _outH is
 * checked by the caller).
 */
export function maxpool3x3s2(
  inPtr: usize, inH: i32, inW: i32, C: i32,
  outPtr: usize, _outH: i32, outW: i32, oy0: i32, oy1: i32,
): void {
  const pixBytes = <usize>C << 2;
  for (let oy = oy0; oy < oy1; oy++) {
    for (let ox = 0; ox < outW; ox++) {
      poolPixel(inPtr, inH, inW, C, outPtr + <usize>(oy * outW + ox) * pixBytes, oy * 2, ox * 2);
    }
  }
}
