/**
 * The command-line tool, run as a subprocess exactly as a user runs it:
 * `deno run --allow-read --allow-write mod.ts refine ...` on the bundled
 * example and on small generated files. Needs `deno task build` first (the
 * kernels' .wasm).
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { fileURLToPath } from "node:url";
import encodeJpegRaw from "@jsquash/jpeg/encode.js";
import { decodeMask, encodeMaskPng } from "../src/io/image_file.ts";
import { applyCoarseTrust, DEFAULT_COARSE_TRUST } from "../src/coarse_trust.ts";
import { decodePng } from "../src/io/png.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const IMAGE = `${ROOT}examples/coffee.png`;
const COARSE = `${ROOT}examples/coffee_coarse.png`;
const BROAD = ["--allow-read", "--allow-write"];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `mod.ts` with the given permissions and arguments. */
async function cli(args: string[], permissions = BROAD): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, `${ROOT}mod.ts`, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** Asserts a failed run: the exit code, and one `crispmask: ...` line containing every fragment. */
function assertFailure(run: Run, code: number, ...fragments: string[]): void {
  assertEquals(run.code, code, `exit code; stderr: ${run.stderr}`);
  const lines = run.stderr.split("\n").filter((l) => l);
  assertEquals(lines.length, 1, `one line on stderr, got: ${run.stderr}`);
  assert(lines[0].startsWith("crispmask: "), lines[0]);
  for (const f of fragments) assert(lines[0].includes(f), `"${lines[0]}" lacks "${f}"`);
}

/** The names in a directory (to check that no output or temporary file was left). */
async function listing(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

async function withTempDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "crispmask_cli_" });
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// ---------------------------------------------------------------------------

Deno.test("--help, -h and refine --help print the usage on stdout and exit 0", async () => {
  const runs = await Promise.all([cli(["--help"]), cli(["-h"]), cli(["refine", "--help"])]);
  for (const r of runs) {
    assertEquals(r.code, 0);
    assert(
      r.stdout.includes("Usage:") && r.stdout.includes("--overlay") &&
        r.stdout.includes("--allow-write="),
    );
    assertEquals(r.stderr, "");
  }
});

Deno.test("usage errors exit 2 with one clear line", async () => {
  const cases: [string[], string][] = [
    [[], "no command"],
    [["frobnicate"], "unknown command 'frobnicate'"],
    [["refine", IMAGE], "two files"],
    [["refine", IMAGE, COARSE], "missing -o"],
    [["refine", IMAGE, COARSE, "-o", "out.jpg"], "*.png"],
    [["refine", IMAGE, COARSE, "-o", "a.png", "--bogus"], "unknown option '--bogus'"],
    [["refine", IMAGE, COARSE, "-o", "a.png", "--workers", "0"], "--workers"],
    [["refine", IMAGE, COARSE, "-o", "a.png", "--max-pixels", "lots"], "--max-pixels"],
    [["refine", IMAGE, COARSE, "-o", "a.png", "--coarse-trust=-1"], "--coarse-trust"],
    [["refine", IMAGE, COARSE, "-o", "a.png", "--coarse-trust", "lots"], "--coarse-trust"],
    [["refine", IMAGE, COARSE, "-o", "a.png", "--overlay", "a.png"], "same file"],
  ];
  const runs = await Promise.all(cases.map(([args]) => cli(args)));
  runs.forEach((r, i) => assertFailure(r, 2, cases[i][1], "--help"));
});

Deno.test("refines the example: mask at the image's size, --json report, overlay", async () => {
  await withTempDir(async (dir) => {
    const r = await cli([
      "refine",
      IMAGE,
      COARSE,
      "-o",
      `${dir}/refined.png`,
      "--overlay",
      `${dir}/view.png`,
      "--json",
    ]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(r.stderr, ""); // no progress bar: stderr is not a terminal
    const report = JSON.parse(r.stdout);
    assertEquals(report.image, {
      path: IMAGE,
      format: "png",
      width: 600,
      height: 400,
      orientation: 1,
      oriented: false,
    });
    assertEquals(report.coarse, {
      path: COARSE,
      format: "png",
      width: 150,
      height: 100,
      source: "gray",
    });
    assertEquals(report.output, {
      path: `${dir}/refined.png`,
      width: 600,
      height: 400,
      binary: false,
    });
    assertEquals(report.overlay, `${dir}/view.png`);
    assert(["relaxed-simd", "simd"].includes(report.build));
    assert(Number.isInteger(report.stages) && report.stages >= 1, `stages ${report.stages}`);
    // one detail per stage; the last is queried at full size; a sparse stage reports the tiles
    // and pixels it ran, a dense one (the example's small image: most tiles touch the contour) all
    assertEquals(report.stage_details.length, report.stages);
    assertEquals(report.stage_details.at(-1).query, "600x400");
    for (const d of report.stage_details) {
      const [qw, qh] = d.query.split("x").map(Number);
      if (d.sparse) assert(d.active_tiles < 1 && d.pixels_evaluated < qw * qh, JSON.stringify(d));
      else assertEquals([d.active_tiles, d.pixels_evaluated], [1, qw * qh]);
    }
    assertEquals(
      report.pixels_evaluated,
      report.stage_details.reduce(
        (a: number, d: { pixels_evaluated: number }) => a + d.pixels_evaluated,
        0,
      ),
    );
    for (const d of report.stage_details) assert(d.ms > 0, `stage ms ${d.ms}`);
    for (const k of ["read", "decode", "load", "refine", "encode", "write", "total"]) {
      assert(typeof report.timings_ms[k] === "number" && report.timings_ms[k] >= 0, k);
    }
    const mask = decodePng(await Deno.readFile(`${dir}/refined.png`));
    assertEquals([mask.width, mask.height, mask.channels], [600, 400, 1]);
    const view = decodePng(await Deno.readFile(`${dir}/view.png`));
    assertEquals([view.width, view.height, view.channels], [600, 400, 3]);
    assertEquals(await listing(dir), ["refined.png", "view.png"]); // no temporary files left
  });
});

Deno.test("--binary writes only 0 and 255; --quiet prints nothing", async () => {
  await withTempDir(async (dir) => {
    const r = await cli([
      "refine",
      IMAGE,
      COARSE,
      "-o",
      `${dir}/bin.png`,
      "--binary",
      "--quiet",
      "--workers",
      "1",
      "--dense",
    ]);
    assertEquals([r.code, r.stdout, r.stderr], [0, "", ""]);
    const mask = decodePng(await Deno.readFile(`${dir}/bin.png`));
    assert(mask.data.every((v) => v === 0 || v === 255));
  });
});

Deno.test("--flip refines the mirrored photo too: the report says so and lists each stage twice", async () => {
  await withTempDir(async (dir) => {
    const plain = await cli(["refine", IMAGE, COARSE, "-o", `${dir}/plain.png`, "--json"]);
    const flip = await cli(["refine", IMAGE, COARSE, "-o", `${dir}/flip.png`, "--json", "--flip"]);
    assertEquals([plain.code, flip.code], [0, 0], flip.stderr);
    const a = JSON.parse(plain.stdout), b = JSON.parse(flip.stdout);
    assertEquals([a.flip, b.flip], [false, true]);
    assertEquals(b.stages, 2 * a.stages);
    assertEquals(b.stage_details.map((d: { query: string }) => d.query), [
      ...a.stage_details.map((d: { query: string }) => d.query),
      ...a.stage_details.map((d: { query: string }) => d.query),
    ]);
    const pm = decodePng(await Deno.readFile(`${dir}/plain.png`));
    const fm = decodePng(await Deno.readFile(`${dir}/flip.png`));
    assertEquals([fm.width, fm.height], [600, 400]);
    assert(fm.data.some((v, i) => v !== pm.data[i]), "--flip changed nothing");
    // the summary line counts stages per pass, not both passes together
    const line = await cli(["refine", IMAGE, COARSE, "-o", `${dir}/line.png`, "--flip"]);
    assertEquals(line.code, 0, line.stderr);
    const perPass = `${a.stages} stage${a.stages > 1 ? "s" : ""} x 2 passes (flip)`;
    assert(line.stdout.includes(perPass), `"${line.stdout}" lacks "${perPass}"`);
  });
});

Deno.test("--coarse-trust sets how far the output leans toward the coarse mask; 0 turns it off", async () => {
  await withTempDir(async (dir) => {
    const run = (name: string, extra: string[]) =>
      cli(["refine", IMAGE, COARSE, "-o", `${dir}/${name}.png`, "--json", ...extra]);
    const [byDefault, off, strong] = await Promise.all([
      run("default", []),
      run("off", ["--coarse-trust", "0"]),
      run("strong", ["--coarse-trust", "2.5"]),
    ]);
    for (const r of [byDefault, off, strong]) assertEquals(r.code, 0, r.stderr);
    assertEquals(
      [byDefault, off, strong].map((r) => JSON.parse(r.stdout).coarse_trust),
      [DEFAULT_COARSE_TRUST, 0, 2.5],
    );
    const [d, o, s] = await Promise.all(
      ["default", "off", "strong"].map(async (n) =>
        decodePng(await Deno.readFile(`${dir}/${n}.png`))
      ),
    );
    const coarse = (await decodeMask(await Deno.readFile(COARSE), COARSE)).mask;
    const rule = (trust: number) =>
      applyCoarseTrust(
        { width: o.width, height: o.height, data: new Uint8Array(o.data) },
        coarse,
        trust,
      );
    const want = rule(DEFAULT_COARSE_TRUST);
    assert(
      d.data.every((v, i) => v === want.data[i]),
      "default = the rule applied to the output without it",
    );
    assert(d.data.some((v, i) => v !== o.data[i]), "the default trust changed nothing");
    const want25 = rule(2.5);
    assert(s.data.every((v, i) => v === want25.data[i]), "--coarse-trust 2.5 = the rule at 2.5");
  });
});

Deno.test("input errors exit 1 with one line naming the file, and leave no output", async () => {
  await withTempDir(async (dir) => {
    const png = await Deno.readFile(IMAGE);
    await Deno.writeFile(`${dir}/truncated.png`, png.subarray(0, png.length >> 1));
    await Deno.writeFile(
      `${dir}/anim.gif`,
      new TextEncoder().encode("GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
    );
    await Deno.writeFile(
      `${dir}/square.png`,
      encodeMaskPng({ width: 100, height: 100, data: new Uint8Array(10000) }),
    );
    const out = `${dir}/out.png`;
    const cases: [string[], string[]][] = [
      [["refine", `${dir}/missing.png`, COARSE, "-o", out], ["missing.png", "no such file"]],
      [["refine", `${dir}/truncated.png`, COARSE, "-o", out], ["truncated.png", "truncated"]],
      [["refine", IMAGE, `${dir}/anim.gif`, "-o", out], ["anim.gif", "GIF"]],
      [["refine", IMAGE, `${dir}/square.png`, "-o", out], ["100x100", "600x400", "aspect"]],
      [["refine", IMAGE, COARSE, "-o", out, "--max-pixels", "100000"], [
        "coffee.png",
        "over the limit",
      ]],
      [["refine", IMAGE, COARSE, "-o", `${dir}/no/such/dir/out.png`], [
        "cannot write",
        "no such file",
      ]],
      [["refine", IMAGE, COARSE, "-o", out, "--overlay", `${dir}/nodir/view.png`], [
        "cannot write",
        "view.png",
      ]],
    ];
    const runs = await Promise.all(cases.map(([args]) => cli(args)));
    runs.forEach((r, i) => assertFailure(r, 1, ...cases[i][1]));
    assertEquals(await listing(dir), ["anim.gif", "square.png", "truncated.png"]);
  });
});

Deno.test("EXIF: the mask must match the upright photo; a sideways mask is diagnosed", async () => {
  await withTempDir(async (dir) => {
    // a 64x48 photo stored sideways (orientation 6: displayed 48x64), a disc in the middle
    const w = 64, h = 48, rgba = new Uint8ClampedArray(w * h * 4), mask = new Uint8Array(w * h);
    for (let i = 0; i < w * h; i++) {
      const inside = Math.hypot((i % w) - 32, Math.floor(i / w) - 24) < 18;
      rgba.set(inside ? [220, 40, 40, 255] : [30, 60, 200, 255], i * 4);
      mask[i] = inside ? 255 : 0;
    }
    const jpg = new Uint8Array(
      await encodeJpegRaw({ width: w, height: h, data: rgba } as ImageData, { quality: 90 }),
    );
    await Deno.writeFile(`${dir}/photo.jpg`, withOrientation6(jpg));
    await Deno.writeFile(`${dir}/stored.png`, encodeMaskPng({ width: w, height: h, data: mask }));
    const upright = new Uint8Array(w * h); // the mask rotated 90 degrees clockwise: 48x64
    for (let y = 0; y < w; y++) {
      for (let x = 0; x < h; x++) upright[y * h + x] = mask[(h - 1 - x) * w + y];
    }
    await Deno.writeFile(
      `${dir}/upright.png`,
      encodeMaskPng({ width: h, height: w, data: upright }),
    );

    const [sideways, ignored, ok] = await Promise.all([
      cli(["refine", `${dir}/photo.jpg`, `${dir}/stored.png`, "-o", `${dir}/a.png`]),
      cli([
        "refine",
        `${dir}/photo.jpg`,
        `${dir}/stored.png`,
        "-o",
        `${dir}/b.png`,
        "--ignore-exif",
        "-q",
      ]),
      cli(["refine", `${dir}/photo.jpg`, `${dir}/upright.png`, "-o", `${dir}/c.png`, "-q"]),
    ]);
    assertFailure(sideways, 1, "EXIF orientation (6)", "--ignore-exif");
    assertEquals([ignored.code, ok.code], [0, 0], ignored.stderr + ok.stderr);
    const b = decodePng(await Deno.readFile(`${dir}/b.png`)),
      c = decodePng(await Deno.readFile(`${dir}/c.png`));
    assertEquals([b.width, b.height, c.width, c.height], [64, 48, 48, 64]);
    assertEquals(await listing(dir), ["b.png", "c.png", "photo.jpg", "stored.png", "upright.png"]);
  });
});

Deno.test("runs with the narrow permissions that --help documents, and names a missing one", async () => {
  await withTempDir(async (dir) => {
    const read = [IMAGE, COARSE, `${ROOT}weights`, `${ROOT}build/wasm`, dir].join(",");
    const narrow = [`--allow-read=${read}`, `--allow-write=${dir}`];
    const r = await cli(["refine", IMAGE, COARSE, "-o", `${dir}/narrow.png`, "-q"], narrow);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(decodePng(await Deno.readFile(`${dir}/narrow.png`)).width, 600);

    const denied = await cli(["refine", IMAGE, COARSE, "-o", `${dir}/x.png`], [
      `--allow-read=${COARSE}`,
    ]);
    assertFailure(denied, 1, "coffee.png", "not permitted");
    // without read access to the output folder the final rename would fail: found before refining
    const noRead = [`--allow-read=${read.replace(`,${dir}`, "")}`, `--allow-write=${dir}`];
    const early = await cli(["refine", IMAGE, COARSE, "-o", `${dir}/y.png`], noRead);
    assertFailure(early, 1, "cannot write", "y.png", "not permitted");
    assertEquals(await listing(dir), ["narrow.png"]);
  });
});

/** The JPEG with an EXIF APP1 segment (big-endian TIFF) saying orientation 6, after SOI. */
function withOrientation6(jpg: Uint8Array): Uint8Array {
  const tiff = [
    0x4d,
    0x4d,
    0,
    42,
    0,
    0,
    0,
    8,
    0,
    1,
    0x01,
    0x12,
    0,
    3,
    0,
    0,
    0,
    1,
    0,
    6,
    0,
    0,
    0,
    0,
    0,
    0,
  ];
  const payload = [0x45, 0x78, 0x69, 0x66, 0, 0, ...tiff];
  const seg = [0xff, 0xe1, 0, payload.length + 2, ...payload];
  return new Uint8Array([...jpg.subarray(0, 2), ...seg, ...jpg.subarray(2)]);
}
