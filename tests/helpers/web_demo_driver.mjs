// Drives the demo page in headless Chromium with playwright-core, under Node (playwright's
// own runtime), for tests/web_demo_test.ts:
//   node web_demo_driver.mjs PAGE_URL OUT_DIR SCREENSHOT
// Refines the bundled example, saves the downloaded PNG as OUT_DIR/refined.png and a
// screenshot, and prints one JSON line {status, problems}.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [pageUrl, outDir, screenshot] = process.argv.slice(2);
const profile = await mkdtemp(join(tmpdir(), "crispmask-chromium-")); // a fresh user-data-dir
const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  acceptDownloads: true,
  viewport: { width: 1000, height: 940 },
});
try {
  const page = context.pages()[0] ?? await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  await page.goto(pageUrl);
  await page.click("#example");
  await page.waitForSelector("#refine:not([disabled])");
  await page.click("#refine");
  await page.waitForSelector("body[data-state=done], body[data-state=error]", { timeout: 120_000 });
  const status = await page.textContent("#status");
  if (await page.$("body[data-state=done]")) {
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
    await download.saveAs(join(outDir, "refined.png"));
  }
  await page.fill("#slider", "35");
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ status, problems }));
} finally {
  await context.close();
  await rm(profile, { recursive: true, force: true });
}
