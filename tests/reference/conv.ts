/**
 * Plain scalar 2-D convolution, the oracle for assembly/conv.ts: NHWC
 * contiguous input and output, PyTorch OIHW weights, zero padding,
 * float64 accumulation.
 *
 * @module
 */

/** Arguments of `conv2dRef`. */
export interface RefConvArgs {
  /** h x w x cin, contiguous */
  input: Float32Array;
  h: number;
  w: number;
  cin: number;
  /** cout x cin x kh x kw */
  weight: Float32Array;
  /** cout floats */
  bias: Float32Array;
  cout: number;
  kh: number;
  kw: number;
  stride: number;
  dilation: number;
  pad: { top: number; bottom: number; left: number; right: number };
  relu: boolean;
  /** outH x outW x cout, added before the ReLU */
  residual?: Float32Array;
}

/** Result of `conv2dRef`. */
export interface RefConvResult {
  /** outH x outW x cout, contiguous */
  out: Float32Array;
  h: number;
  w: number;
  /** per output value: |bias| + |residual| + sum |w * x|, the scale of its rounding error */
  magnitude: Float64Array;
}

/** out = conv(input, weight) + bias (+ residual), then ReLU when asked. */
export function conv2dRef(a: RefConvArgs): RefConvResult {
  const { h, w, cin, cout, kh, kw, stride, dilation, pad } = a;
  const oh = Math.floor((h + pad.top + pad.bottom - dilation * (kh - 1) - 1) / stride) + 1;
  const ow = Math.floor((w + pad.left + pad.right - dilation * (kw - 1) - 1) / stride) + 1;
  const out = new Float32Array(oh * ow * cout);
  const magnitude = new Float64Array(oh * ow * cout);
  for (let oy = 0; oy < oh; oy++) {
    for (let ox = 0; ox < ow; ox++) {
      for (let o = 0; o < cout; o++) {
        let sum = a.bias[o];
        let mag = Math.abs(a.bias[o]);
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * stride - pad.top + ky * dilation;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * stride - pad.left + kx * dilation;
            if (ix < 0 || ix >= w) continue;
            for (let c = 0; c < cin; c++) {
              const p = a.weight[((o * cin + c) * kh + ky) * kw + kx] *
                a.input[(iy * w + ix) * cin + c];
              sum += p;
              mag += Math.abs(p);
            }
          }
        }
        const i = (oy * ow + ox) * cout + o;
        if (a.residual) {
          sum += a.residual[i];
          mag += Math.abs(a.residual[i]);
        }
        out[i] = a.relu ? Math.max(sum, 0) : sum;
        magnitude[i] = mag;
      }
    }
  }
  return { out, h: oh, w: ow, magnitude };
}
