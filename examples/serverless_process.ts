/**
 * Starts examples/serverless.ts under `deno serve` on a free port of
 * 127.0.0.1, as its test and its memory benchmark do: one launcher, so both
 * run the handler with the same flags (those of `deno task serve`).
 *
 * @module
 */

/** A running handler process. */
export interface ServerlessProcess {
  /** base URL, e.g. http://127.0.0.1:41234 */
  url: string;
  /** the process id (for /proc/<pid>/status) */
  pid: number;
  /** ends the process: SIGTERM, then SIGKILL if it lingers */
  stop(): Promise<void>;
}

const HANDLER = new URL("./serverless.ts", import.meta.url);

/** Starts the handler with `env` (CRISPMASK_* settings); rejects if it does not listen in 30 s. */
export async function startServerless(env: Record<string, string>): Promise<ServerlessProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "serve",
      "--v8-flags=--expose-gc",
      "--allow-net=127.0.0.1",
      "--allow-read",
      "--allow-env",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      HANDLER.pathname,
    ],
    env,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const stop = async () => {
    // the handler ends the process on SIGTERM; a kill if it lingers
    const kill = (signal: Deno.Signal) => {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
    };
    kill("SIGTERM");
    const late = setTimeout(() => kill("SIGKILL"), 5_000);
    await child.status;
    clearTimeout(late);
  };
  // "deno serve: Listening on http://127.0.0.1:PORT/" comes on either stream
  const lines = new TextDecoder();
  let seen = "";
  const watch = async (stream: ReadableStream<Uint8Array>, onUrl: (u: string) => void) => {
    for await (const chunk of stream) {
      seen += lines.decode(chunk, { stream: true });
      const m = seen.match(/Listening on (http:\/\/127\.0\.0\.1:\d+)\//);
      if (m) onUrl(m[1]);
    }
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const url = await new Promise<string>((resolve, reject) => {
      watch(child.stdout, resolve).catch(() => {});
      watch(child.stderr, resolve).catch(() => {});
      child.status.then((s) => reject(new Error(`deno serve exited (${s.code}): ${seen}`)));
      timer = setTimeout(() => reject(new Error(`deno serve did not start: ${seen}`)), 30_000);
    });
    return { url, pid: child.pid, stop };
  } catch (err) {
    await stop();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
