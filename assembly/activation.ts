// Elementwise activations.

/** out[i] = 1 / (1 + exp(-x[i])) for n floats. */
export function sigmoid(xPtr: usize, outPtr: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const x = load<f32>(xPtr + (<usize>i << 2));
    store<f32>(outPtr + (<usize>i << 2), <f32>(1.0 / (1.0 + Math.exp(-<f64>x))));
  }
}
