/**
 * Assertion helpers for the weights tests.
 *
 * @module
 */

import { WeightsError } from "../../src/weights/safetensors.ts";

/**
 * Asserts that `fn` throws a WeightsError whose message contains every one of
 * `fragments`, and returns it (to check its `tensor` field).
 */
export function assertWeightsError(fn: () => unknown, ...fragments: string[]): WeightsError {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  if (thrown === undefined) {
    throw new Error(`expected a WeightsError mentioning ${JSON.stringify(fragments)}; none thrown`);
  }
  if (!(thrown instanceof WeightsError)) {
    throw new Error(`expected a WeightsError, got ${String(thrown)}`, { cause: thrown });
  }
  for (const f of fragments) {
    if (!thrown.message.includes(f)) {
      throw new Error(
        `WeightsError message ${JSON.stringify(thrown.message)} does not mention ${
          JSON.stringify(f)
        }`,
      );
    }
  }
  return thrown;
}
