/**
 * A serverless refinement endpoint: `POST` an image and a coarse mask, get
 * the refined mask back as an 8-bit grayscale PNG.
 *
 *     deno serve --v8-flags=--expose-gc --allow-net=127.0.0.1 --allow-read --allow-env --host 127.0.0.1 examples/serverless.ts
 *     curl -F image=@examples/coffee.png -F mask=@examples/coffee_coarse.png \
 *       http://127.0.0.1:8000/ -o refined.png
 *
 * Requests: `multipart/form-data` with the files `image` (PNG or JPEG) and
 * `mask` (PNG or JPEG, any size with the image's aspect ratio) and an
 * optional field `output` ("soft", the default, or "binary"); or, only
 * where `CRISPMASK_FILE_ROOT` names a directory, JSON
 * `{"image": "file:///...", "mask": "file:///..."}` naming files inside it.
 * Errors are JSON `{"error": message, "code": code}` with a 4xx status
 * (5xx only for faults of the server itself).
 *
 * Settings (environment): `CRISPMASK_MAX_PIXELS` (largest image, default
 * 25 MP: a 6000x4000 photo), `CRISPMASK_MEMORY_MB` (what the process may
 * take in all, default 512), `CRISPMASK_WORKERS` (default: one per core),
 * `CRISPMASK_FILE_ROOT`. The memory budget is honoured by `memoryPlan`:
 * what the runtime, the workers and one request of the largest allowed
 * image take is set aside, and the rest is the refiner's `memoryBudget`,
 * which sizes its work units (strips and tiles). Requests run one at a
 * time, so one request's worth is all that is ever set aside.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { createRefiner, CrispmaskError, type Refiner } from "../mod.ts";
import { decodeImage, decodeMask, encodeMaskPng, sniffFormat } from "../src/io/image_file.ts";

/** Settings of a handler. */
export interface HandlerConfig {
  /** largest image accepted, in pixels */
  maxPixels: number;
  /** bytes the whole process may take (resident memory) */
  memoryBudget: number;
  /** worker threads wanted (fewer run when the budget cannot hold them) */
  workers: number;
  /** JSON requests may name files inside this directory; without it they are refused */
  fileRoot?: string;
}

const MiB = 2 ** 20;

/** Settings from the environment (see the module's documentation). */
export function configFromEnv(): HandlerConfig {
  const num = (name: string, fallback: number) => {
    const v = Deno.env.get(name);
    if (v === undefined || v === "") return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a number, got ${v}`);
    return n;
  };
  return {
    maxPixels: num("CRISPMASK_MAX_PIXELS", 25_000_000),
    memoryBudget: num("CRISPMASK_MEMORY_MB", 512) * MiB,
    workers: num("CRISPMASK_WORKERS", navigator.hardwareConcurrency || 1),
    fileRoot: Deno.env.get("CRISPMASK_FILE_ROOT") || undefined,
  };
}

/**
 * Resident memory set aside before the refiner's share, measured on Deno 2.9
 * with bench/serverless_memory.ts: the runtime with the modules loaded, and
 * each worker's own JavaScript heap and code.
 */
const RUNTIME_BYTES = 112 * MiB;
const WORKER_BYTES = 32 * MiB;
/**
 * Bytes per pixel of the largest image that one request holds outside the
 * refiner: the upload (body and its parsed copy), the JPEG decoder's memory
 * and the RGBA pixels it returns, the output mask and its PNG encoding.
 */
const REQUEST_BYTES_PER_PIXEL = 12;
/** The refiner's least useful share per worker (its packed weights plus small units). */
const MIN_REFINER_BYTES_PER_INSTANCE = 16 * MiB;

/** How a memory budget is split; `memoryPlan` computes it. */
export interface MemoryPlan {
  /** workers to start */
  workers: number;
  /** the refiner's `memoryBudget` */
  refinerBytes: number;
  /** largest request body accepted */
  maxBodyBytes: number;
}

/** Splits `config.memoryBudget`, dropping workers when the budget cannot hold them. */
export function memoryPlan(config: HandlerConfig): MemoryPlan {
  const request = REQUEST_BYTES_PER_PIXEL * config.maxPixels;
  for (let workers = Math.floor(config.workers); workers >= 0; workers--) {
    const refinerBytes = config.memoryBudget - RUNTIME_BYTES - request - workers * WORKER_BYTES;
    if (refinerBytes >= (workers + 1) * MIN_REFINER_BYTES_PER_INSTANCE) {
      // an upload is at most a little over its raw pixels (PNG of noise), plus the mask
      return { workers, refinerBytes, maxBodyBytes: 4 * config.maxPixels + 16 * MiB };
    }
  }
  const need = RUNTIME_BYTES + request + MIN_REFINER_BYTES_PER_INSTANCE;
  throw new Error(
    `a memory budget of ${Math.round(config.memoryBudget / MiB)} MiB cannot refine ${
      (config.maxPixels / 1e6).toFixed(1)
    } MP images: it needs about ${Math.ceil(need / MiB)} MiB (or a lower pixel limit)`,
  );
}

/** An HTTP error with a JSON body. */
class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

const STATUS_OF: Record<string, number> = {
  "bad-input": 400,
  "aspect-mismatch": 422,
  "too-large": 413,
};

/** A fetch handler (what `deno serve` runs), and `close` to end its workers. */
export interface Handler {
  fetch(request: Request): Promise<Response>;
  /** Settles when the requests received so far have been answered. */
  drain(): Promise<void>;
  /** Ends the refiner's workers. */
  close(): void;
}

/** A handler with `config`; the refiner starts with the first request. */
export function createHandler(config: HandlerConfig): Handler {
  const plan = memoryPlan(config);
  let refiner: Promise<Refiner> | null = null;
  // one request at a time: the memory plan sets aside one request's worth
  let queue: Promise<unknown> = Promise.resolve();

  const getRefiner = () =>
    refiner ??= createRefiner({
      workers: plan.workers,
      maxPixels: config.maxPixels,
      memoryBudget: plan.refinerBytes,
    });

  async function handle(request: Request): Promise<Response> {
    if (request.method !== "POST") {
      throw new HttpError(405, "method-not-allowed", "POST an image and a coarse mask");
    }
    const length = Number(request.headers.get("content-length") ?? NaN);
    if (length > plan.maxBodyBytes) {
      throw new HttpError(413, "too-large", `the request is over ${plan.maxBodyBytes} bytes`);
    }
    const input = await readInput(request, config.fileRoot);
    const started = performance.now();
    const image = await decodeAs("image", input.image, config.maxPixels, decodeImage);
    const coarse = await decodeAs("mask", input.mask, config.maxPixels, decodeMask);
    // Decoding leaves copies of the image behind (the upload, the decoder's output buffers):
    // collected now, before the refiner's memory grows, they do not add to the peak. `gc` exists
    // when the server runs with --v8-flags=--expose-gc, as `deno task serve` starts it.
    (globalThis as { gc?: () => void }).gc?.();
    const r = await getRefiner();
    const mask = await r.refine(image.image, coarse.mask, { output: input.output });
    const png = encodeMaskPng(mask);
    return new Response(png as BodyInit, {
      headers: {
        "content-type": "image/png",
        "server-timing": `refine;dur=${(performance.now() - started).toFixed(1)}`,
      },
    });
  }

  return {
    fetch(request: Request): Promise<Response> {
      const run = queue.then(() => handle(request)).catch(errorResponse);
      queue = run;
      return run;
    },
    drain: () => queue.then(() => {}),
    close(): void {
      refiner?.then((r) => r.dispose(), () => {});
    },
  };
}

interface Input {
  image: Uint8Array;
  mask: Uint8Array;
  output: "soft" | "binary";
}

/** The two files of a multipart or JSON request. */
async function readInput(request: Request, fileRoot: string | undefined): Promise<Input> {
  const type = request.headers.get("content-type") ?? "";
  if (type.startsWith("multipart/form-data")) {
    let form: FormData;
    try {
      form = await request.formData();
    } catch (err) {
      throw new HttpError(400, "bad-request", `unreadable form: ${(err as Error).message}`);
    }
    const file = async (name: string) => {
      const v = form.get(name);
      if (!(v instanceof Blob)) {
        throw new HttpError(400, "bad-request", `the form has no file field "${name}"`);
      }
      return new Uint8Array(await v.arrayBuffer());
    };
    return {
      image: await file("image"),
      mask: await file("mask"),
      output: outputOf(form.get("output")),
    };
  }
  if (type.startsWith("application/json")) {
    if (!fileRoot) {
      throw new HttpError(
        403,
        "forbidden",
        "this server reads no local files (CRISPMASK_FILE_ROOT is unset)",
      );
    }
    let body: Record<string, unknown>;
    try {
      body = await request.json();
    } catch (err) {
      throw new HttpError(400, "bad-request", `unreadable JSON: ${(err as Error).message}`);
    }
    const file = (name: string) => readLocal(body?.[name], name, fileRoot);
    return { image: await file("image"), mask: await file("mask"), output: outputOf(body.output) };
  }
  throw new HttpError(
    415,
    "unsupported-media-type",
    "send multipart/form-data with the files image and mask (or JSON with two file URLs)",
  );
}

function outputOf(v: unknown): "soft" | "binary" {
  if (v === null || v === undefined || v === "soft") return "soft";
  if (v === "binary") return "binary";
  throw new HttpError(
    400,
    "bad-request",
    `output must be "soft" or "binary", got ${JSON.stringify(v)}`,
  );
}

/** A file:// URL's bytes, only inside `root` (after resolving links). */
async function readLocal(url: unknown, name: string, root: string): Promise<Uint8Array> {
  if (typeof url !== "string") {
    throw new HttpError(400, "bad-request", `the JSON has no file URL "${name}"`);
  }
  let path: string;
  try {
    path = fileURLToPath(new URL(url));
  } catch {
    throw new HttpError(400, "bad-request", `${name}: not a file:// URL: ${url}`);
  }
  try {
    const [real, top] = await Promise.all([Deno.realPath(path), Deno.realPath(root)]);
    if (!real.startsWith(top.endsWith("/") ? top : top + "/")) {
      throw new HttpError(403, "forbidden", `${name}: outside the served directory`);
    }
    return await Deno.readFile(real);
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw new HttpError(404, "not-found", `${name}: cannot read ${url}`);
  }
}

/** Decodes one part, naming it in errors; non-image bytes are a 415. */
async function decodeAs<T>(
  name: string,
  bytes: Uint8Array,
  maxPixels: number,
  decode: (b: Uint8Array, name: string, o: { maxPixels: number }) => Promise<T>,
): Promise<T> {
  if (sniffFormat(bytes) === null) {
    throw new HttpError(415, "unsupported-format", `${name}: not a PNG or JPEG file`);
  }
  return await decode(bytes, name, { maxPixels });
}

function errorResponse(err: unknown): Response {
  let status = 500, code = "internal", message = "internal error";
  if (err instanceof HttpError) [status, code, message] = [err.status, err.code, err.message];
  else if (err instanceof CrispmaskError && err.code in STATUS_OF) {
    [status, code, message] = [STATUS_OF[err.code], err.code, err.message];
  } else console.error(err); // a fault of ours: log it, do not leak it
  return Response.json({ error: message, code }, { status });
}

const handler = createHandler(configFromEnv());

if (import.meta.main) {
  // The refiner's workers keep the event loop alive, so `deno serve` would not end on a
  // signal by itself: finish the request in hand, end the workers, exit.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      handler.drain().finally(() => {
        handler.close();
        Deno.exit(0);
      });
    });
  }
}

/** What `deno serve` runs: a handler configured from the environment. */
export default handler satisfies Deno.ServeDefaultExport;
