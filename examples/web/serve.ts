/**
 * A static server for the demo page: serves the repository's `examples/`,
 * `dist/` (the bundle) and `weights/` folders, nothing else, on 127.0.0.1.
 *
 *     deno task demo            # builds the bundle, then serves http://127.0.0.1:8080/
 *     deno run --allow-net=127.0.0.1 --allow-read examples/web/serve.ts [port]
 *
 * Port 0 picks a free port; the first line printed is the page's URL.
 *
 * @module
 */

const ROOT = new URL("../../", import.meta.url);
const SERVED = ["examples/", "dist/", "weights/"];
const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  png: "image/png",
  jpg: "image/jpeg",
  json: "application/json",
  safetensors: "application/octet-stream",
  md: "text/plain; charset=utf-8",
};

/** Answers GET requests for files under the served folders. */
export async function serveFile(request: Request): Promise<Response> {
  const path = decodeURIComponent(new URL(request.url).pathname).replace(/^\/+/, "");
  if (path === "") return Response.redirect(new URL("/examples/web/", request.url), 302);
  if (request.method !== "GET" && request.method !== "HEAD") {
    return new Response("method not allowed", { status: 405 });
  }
  const file = path.endsWith("/") ? `${path}index.html` : path;
  if (file.split("/").includes("..") || !SERVED.some((p) => file.startsWith(p))) {
    return new Response("not found", { status: 404 });
  }
  try {
    const body = await Deno.readFile(new URL(file, ROOT));
    const ext = file.slice(file.lastIndexOf(".") + 1);
    return new Response(request.method === "HEAD" ? null : body, {
      headers: {
        "content-type": TYPES[ext] ?? "application/octet-stream",
        "cache-control": "no-cache",
      },
    });
  } catch {
    return new Response("not found", { status: 404 });
  }
}

if (import.meta.main) {
  const port = Number(Deno.args[0] ?? 8080);
  Deno.serve({
    hostname: "127.0.0.1",
    port,
    onListen: ({ port }) => console.log(`http://127.0.0.1:${port}/examples/web/`),
  }, serveFile);
}
