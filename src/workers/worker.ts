/**
 * Worker entry: instantiates the compiled kernel module posted once by the
 * pool over its own memory, packs the weights, then runs units as they come.
 * Kept to this one small module (a bundle can inline it).
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { instantiateKernels } from "../engine/wasm.ts";
import { Arena } from "../engine/arena.ts";
import { loadModelWeights } from "../weights/model_weights.ts";
import { loadNetwork } from "../model/network.ts";
import { runUnit, type UnitContext, unitContext } from "../pipeline/unit.ts";
import type { FromWorker, ToWorker, WorkerFault } from "./protocol.ts";

let ctx: UnitContext | null = null;
let fault: WorkerFault | undefined;
let units = 0;

function send(msg: FromWorker, transfer: Transferable[] = []): void {
  self.postMessage(msg, transfer);
}

function fail(id: number | null, err: unknown): void {
  const e = err instanceof Error ? err : new Error(String(err));
  send({ type: "error", id, name: e.name, message: e.message });
}

self.onmessage = (event: MessageEvent<ToWorker>) => {
  const msg = event.data;
  if (msg.type === "init") {
    try {
      const k = instantiateKernels({ build: msg.build, module: msg.module });
      const net = loadNetwork(
        k,
        new Arena(k.memory, k.exports.heapBase()),
        loadModelWeights(msg.weights, "weights"),
      );
      ctx = unitContext(net);
      fault = msg.fault;
      send({ type: "ready" });
    } catch (err) {
      fail(null, err);
    }
    return;
  }
  units++;
  if (fault && units === fault.unit && fault.mode === "die") {
    // an uncaught error outside any handler: the worker dies without replying
    setTimeout(() => {
      throw new Error("injected worker crash");
    }, 0);
    return;
  }
  try {
    if (!ctx) throw new Error("worker used before init");
    if (fault && units === fault.unit) throw new Error("injected unit failure");
    const result = runUnit(ctx, msg.job);
    send({ type: "result", id: msg.id, result }, [result.data.buffer]);
  } catch (err) {
    fail(msg.id, err);
  }
};
