/**
 * The demo page (examples/web/) end to end in Debian's Chromium, headless,
 * driven by playwright-core (under Node: tests/helpers/web_demo_driver.mjs),
 * served from 127.0.0.1: it refines the bundled
 * example with Web Workers, and the PNG it downloads equals the library's
 * mask in Deno bit for bit. Writes a screenshot to out/web-demo.png.
 *
 * Needs /usr/bin/chromium (`apt-get install chromium`) and the bundle
 * (`deno task bundle`). Without Chromium this test is ignored, unless
 * CRISPMASK_BROWSER_TEST=1 (set by `deno task test:browser`) makes it fail.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { createRefiner } from "../mod.ts";
import { decodeImage, decodeMask } from "../src/io/image_file.ts";
import { decodePng } from "../src/io/png.ts";
import { serveFile } from "../examples/web/serve.ts";
import { differences } from "./helpers/scene.ts";

const CHROMIUM = "/usr/bin/chromium";
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const required = Deno.env.get("CRISPMASK_BROWSER_TEST") === "1";
const haveChromium = await Deno.stat(CHROMIUM).then(() => true, () => false);
if (!haveChromium && !required) {
  console.log(`${CHROMIUM} is missing: the browser test is ignored (apt-get install chromium)`);
}

Deno.test({
  name: "the demo page refines the example in headless Chromium, bit-exact with Deno",
  ignore: !haveChromium && !required,
  async fn() {
    const expected = await (async () => {
      const refiner = await createRefiner({ workers: 0 });
      try {
        return await refiner.refine(
          (await decodeImage(await Deno.readFile(`${ROOT}examples/coffee.png`), "image")).image,
          (await decodeMask(await Deno.readFile(`${ROOT}examples/coffee_coarse.png`), "mask"))
            .mask,
        );
      } finally {
        refiner.dispose();
      }
    })();
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, serveFile);
    const dir = await Deno.makeTempDir({ prefix: "crispmask-web-" });
    try {
      await Deno.mkdir(`${ROOT}out`, { recursive: true });
      const run = await new Deno.Command("node", {
        args: [
          `${ROOT}tests/helpers/web_demo_driver.mjs`,
          `http://127.0.0.1:${server.addr.port}/examples/web/`,
          dir,
          `${ROOT}out/web-demo.png`,
        ],
        stdout: "piped",
        stderr: "piped",
        stdin: "null",
      }).output();
      const text = new TextDecoder();
      assertEquals(run.code, 0, `the driver failed: ${text.decode(run.stderr)}`);
      const report = JSON.parse(text.decode(run.stdout).trim().split("\n").at(-1)!);
      assert(report.status?.startsWith("Refined 600×400"), `status: ${report.status}`);
      assert(/on \d+ Web Workers?/.test(report.status), `refined in workers: ${report.status}`);
      assertEquals(report.problems, []);

      const png = decodePng(await Deno.readFile(`${dir}/refined.png`));
      assertEquals([png.width, png.height], [expected.width, expected.height]);
      const gray = new Uint8Array(png.width * png.height);
      for (let i = 0; i < gray.length; i++) gray[i] = png.data[i * png.channels];
      assertEquals(differences(gray, expected.data), [], "the page's mask vs Deno's");
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
