/**
 * Codec tests on generated images: PNG round trips of every colour type and
 * bit depth, JPEG decoding (baseline, progressive, gray), the eight EXIF
 * orientations, the mask-channel rule, the pixel limit, and corrupt or
 * truncated files. Nothing here reads ../shared/data.
 */

import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { encode as encodePngRaw, type ImageData as PngImageData } from "fast-png";
import encodeJpegRaw from "@jsquash/jpeg/encode.js";
import { CrispmaskError } from "../src/errors.ts";
import {
  decodeImage,
  decodeMask,
  encodeImagePng,
  encodeMaskPng,
  sniffFormat,
} from "../src/io/image_file.ts";
import { jpegOrientation, type Orientation } from "../src/io/exif.ts";
import { applyOrientation } from "../src/io/orientation.ts";
import { decodePng } from "../src/io/png.ts";
import { drawOverlay } from "../src/cli/overlay.ts";

// ---------------------------------------------------------------------------
// helpers

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce. */
function randomBytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 255;
  }
  return out;
}

function png(img: PngImageData, options?: Parameters<typeof encodePngRaw>[1]): Uint8Array {
  return encodePngRaw(img, options);
}

/** Encodes RGBA pixels as a JPEG with MozJPEG (the decoder's own library). */
async function jpeg(
  width: number,
  height: number,
  rgba: Uint8Array,
  options: Record<string, unknown> = {},
) {
  const data = new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, rgba.length);
  const buf = await encodeJpegRaw({ width, height, data } as ImageData, {
    quality: 95,
    ...options,
  });
  return new Uint8Array(buf);
}

/** An APP1 segment holding an EXIF block whose IFD0 has only the orientation tag. */
function exifSegment(orientation: number, littleEndian: boolean): Uint8Array {
  const tiff = new Uint8Array(8 + 2 + 12 + 4), v = new DataView(tiff.buffer), le = littleEndian;
  tiff[0] = tiff[1] = le ? 0x49 : 0x4d;
  v.setUint16(2, 42, le);
  v.setUint32(4, 8, le); // IFD0 right after the header
  v.setUint16(8, 1, le); // one entry
  v.setUint16(10, 0x0112, le); // Orientation
  v.setUint16(12, 3, le); // SHORT
  v.setUint32(14, 1, le); // count
  v.setUint16(18, orientation, le);
  const payload = [...new TextEncoder().encode("Exif"), 0, 0, ...tiff];
  const length = payload.length + 2;
  return new Uint8Array([0xff, 0xe1, length >> 8, length & 255, ...payload]);
}

/** The JPEG with an EXIF segment inserted right after its SOI marker. */
function withExif(jpg: Uint8Array, orientation: number, littleEndian = true): Uint8Array {
  const seg = exifSegment(orientation, littleEndian);
  const out = new Uint8Array(jpg.length + seg.length);
  out.set(jpg.subarray(0, 2));
  out.set(seg, 2);
  out.set(jpg.subarray(2), 2 + seg.length);
  return out;
}

/** Asserts that `f` rejects with a CrispmaskError of `code` whose message contains every fragment. */
async function rejectsWith(f: () => Promise<unknown>, code: string, ...fragments: string[]) {
  await rejects(f, (err: unknown) => {
    assert(err instanceof CrispmaskError, `not a CrispmaskError: ${err}`);
    assertEquals(err.code, code);
    for (const s of fragments) assert(err.message.includes(s), `"${err.message}" lacks "${s}"`);
    return true;
  });
}

// ---------------------------------------------------------------------------
// PNG round trips

Deno.test("PNG: gray, RGB and RGBA 8-bit round trip exactly at odd sizes", async () => {
  for (const [w, h] of [[1, 1], [37, 23], [5, 64]]) {
    const gray = { width: w, height: h, data: randomBytes(w * h, w) };
    const m = await decodeMask(encodeMaskPng(gray), "gray.png");
    assertEquals(m.mask, gray);
    assertEquals(m.source, "gray");
    for (const channels of [3, 4] as const) {
      const data = randomBytes(w * h * channels, w * h + channels);
      if (channels === 4) { for (let i = 3; i < data.length; i += 4) data[i] = 255; // opaque
       }
      const img = { width: w, height: h, channels, data };
      const back = await decodeImage(encodeImagePng(img), "rgb.png");
      assertEquals(back.image.channels, channels);
      assertEquals(back.image.data, data);
      assertEquals(back.format, "png");
    }
  }
});

Deno.test("PNG: gray+alpha decodes to RGB for an image and reads alpha for a mask when it varies", async () => {
  const w = 9, h = 7, data = new Uint8Array(w * h * 2);
  for (let i = 0; i < w * h; i++) {
    data[2 * i] = 40; // constant colour
    data[2 * i + 1] = i % 3 ? 255 : 0; // alpha carries the mask
  }
  const file = png({ width: w, height: h, data, channels: 2 });
  const img = await decodeImage(file, "ga.png");
  assertEquals(img.image.channels, 3);
  assertEquals([...img.image.data.subarray(0, 3)], [40, 40, 40]);
  const m = await decodeMask(file, "ga.png");
  assertEquals(m.source, "alpha");
  assertEquals([...m.mask.data.subarray(0, 3)], [0, 255, 255]);
});

Deno.test("PNG: 16-bit gray and RGBA scale to 8 bits with rounding", async () => {
  const w = 11, h = 5;
  const values = new Uint16Array(w * h * 4);
  const raw = randomBytes(values.length * 2, 7);
  for (let i = 0; i < values.length; i++) values[i] = raw[2 * i] << 8 | raw[2 * i + 1];
  values.set([0, 128, 129, 385, 386, 65535, 32767, 32896]); // around rounding boundaries
  const expect = (v: number) => Math.round((v * 255) / 65535);

  const gray = values.subarray(0, w * h);
  const m = await decodeMask(
    png({ width: w, height: h, data: gray, channels: 1, depth: 16 }),
    "g16.png",
  );
  assertEquals([...m.mask.data], [...gray].map(expect));
  assertEquals([...m.mask.data.subarray(0, 8)], [0, 0, 1, 1, 2, 255, 127, 128]);

  for (let i = 3; i < values.length; i += 4) values[i] = 65535;
  const img = await decodeImage(
    png({ width: w, height: h, data: values, channels: 4, depth: 16 }),
    "rgba16.png",
  );
  assertEquals([...img.image.data], [...values].map(expect));
});

Deno.test("PNG: 1, 2 and 4-bit gray stretch to 0..255", async () => {
  for (const depth of [1, 2, 4] as const) {
    const w = 13, h = 3, max = (1 << depth) - 1, rowBytes = Math.ceil((w * depth) / 8);
    const values = Array.from({ length: w * h }, (_, i) => (i * 5) % (max + 1));
    const packed = new Uint8Array(rowBytes * h);
    values.forEach((v, i) => {
      const y = Math.floor(i / w), bit = (i % w) * depth;
      packed[y * rowBytes + (bit >> 3)] |= v << (8 - depth - (bit & 7));
    });
    const m = await decodeMask(
      png({ width: w, height: h, data: packed, channels: 1, depth }),
      "low.png",
    );
    assertEquals([...m.mask.data], values.map((v) => (v * 255) / max), `depth ${depth}`);
  }
});

Deno.test("PNG: palette images expand to RGB, or RGBA with transparency", async () => {
  const palette = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30], [200, 200, 200]];
  const w = 7, h = 3, idx = Array.from({ length: w * h }, (_, i) => (i * 3) % 5);
  const rowBytes = Math.ceil(w / 2), packed = new Uint8Array(rowBytes * h); // 4-bit indices
  idx.forEach((v, i) => {
    const y = Math.floor(i / w), x = i % w;
    packed[y * rowBytes + (x >> 1)] |= x & 1 ? v : v << 4;
  });
  const rgb = await decodeImage(
    png({ width: w, height: h, data: packed, depth: 4, channels: 1, palette }),
    "p.png",
  );
  assertEquals(rgb.image.channels, 3);
  assertEquals([...rgb.image.data], idx.flatMap((i) => palette[i]));

  const withAlpha = palette.map((c, i) => [...c, i === 0 ? 0 : 255]);
  const file = png({
    width: w,
    height: h,
    data: packed,
    depth: 4,
    channels: 1,
    palette: withAlpha,
  });
  const rgba = await decodeImage(file, "pa.png");
  assertEquals(rgba.image.channels, 4);
  assertEquals([...rgba.image.data], idx.flatMap((i) => withAlpha[i]));
  const m = await decodeMask(file, "pa.png");
  assertEquals(m.source, "alpha");
  assertEquals([...m.mask.data], idx.map((i) => (i === 0 ? 0 : 255)));
});

Deno.test("PNG: Adam7-interlaced files decode like plain ones", async () => {
  const w = 19, h = 17, data = randomBytes(w * h * 3, 3);
  const img = await decodeImage(
    png({ width: w, height: h, data, channels: 3 }, { interlace: "Adam7" }),
    "i.png",
  );
  assertEquals(img.image.data, data);
});

// ---------------------------------------------------------------------------
// mask rule

Deno.test("mask rule: first channel unless alpha varies; alpha for alpha masks and cut-outs", async () => {
  const w = 4, h = 2, n = w * h;
  const rgba = (colour: (i: number) => number[], alpha: (i: number) => number) =>
    png({
      width: w,
      height: h,
      channels: 4,
      data: Uint8Array.from(
        { length: n * 4 },
        (_, k) => k % 4 === 3 ? alpha(k >> 2) : colour(k >> 2)[k % 4],
      ),
    });
  const stripes = (i: number) => (i % 2 ? 255 : 0);

  let m = await decodeMask(rgba((i) => [stripes(i), 9, 9], () => 255), "opaque.png");
  assertEquals([m.source, [...m.mask.data]], [
    "red",
    Array.from({ length: n }, (_, i) => stripes(i)),
  ]);

  m = await decodeMask(rgba(() => [0, 0, 0], stripes), "alpha-mask.png");
  assertEquals([m.source, [...m.mask.data]], [
    "alpha",
    Array.from({ length: n }, (_, i) => stripes(i)),
  ]);

  m = await decodeMask(rgba((i) => [i * 30, 200 - i, 7 * i], stripes), "cutout.png");
  assertEquals([m.source, [...m.mask.data]], [
    "alpha",
    Array.from({ length: n }, (_, i) => stripes(i)),
  ]);

  const rgb = png({
    width: w,
    height: h,
    channels: 3,
    data: Uint8Array.from({ length: n * 3 }, (_, k) => k % 3 ? 50 : stripes(k / 3)),
  });
  m = await decodeMask(rgb, "rgb.png");
  assertEquals([m.source, [...m.mask.data]], [
    "red",
    Array.from({ length: n }, (_, i) => stripes(i)),
  ]);
});

// ---------------------------------------------------------------------------
// JPEG

/** 64x48 RGBA test card: red 16x16 block top-left, green top-right, blue elsewhere. */
function card(): { width: number; height: number; rgba: Uint8Array } {
  const width = 64, height = 48, rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const c = y < 16 && x < 16 ? [255, 0, 0] : y < 16 && x >= 48 ? [0, 255, 0] : [0, 0, 255];
      rgba.set([...c, 255], (y * width + x) * 4);
    }
  }
  return { width, height, rgba };
}

/** "red", "green" or "blue": the dominant channel of the pixel. */
function colourAt(
  img: { width: number; channels: number; data: ArrayLike<number> },
  x: number,
  y: number,
) {
  const i = (y * img.width + x) * img.channels,
    px = [img.data[i], img.data[i + 1], img.data[i + 2]];
  return ["red", "green", "blue"][px.indexOf(Math.max(...px))];
}

Deno.test("JPEG: baseline and progressive decode to RGBA at the right size and colours", async () => {
  const { width, height, rgba } = card();
  for (const progressive of [false, true]) {
    const file = await jpeg(width, height, rgba, { progressive, baseline: !progressive });
    assertEquals(sniffFormat(file), "jpeg");
    const d = await decodeImage(file, "card.jpg");
    assertEquals([d.image.width, d.image.height, d.image.channels, d.orientation], [
      width,
      height,
      4,
      1,
    ]);
    assertEquals([colourAt(d.image, 8, 8), colourAt(d.image, 56, 8), colourAt(d.image, 32, 40)], [
      "red",
      "green",
      "blue",
    ]);
  }
});

Deno.test("JPEG: a grayscale JPEG decodes, and as a mask reads its gray", async () => {
  const w = 32, h = 16, rgba = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    rgba.set(i % w < 16 ? [0, 0, 0, 255] : [255, 255, 255, 255], i * 4);
  }
  const file = await jpeg(w, h, rgba, { color_space: 1 }); // MozJPEG's GRAYSCALE
  const m = await decodeMask(file, "gray.jpg");
  assert(m.mask.data[4] < 30 && m.mask.data[28] > 225, `${m.mask.data[4]} ${m.mask.data[28]}`);
});

Deno.test("EXIF: orientations 1-8 turn the pixels upright (both byte orders)", async () => {
  const { width, height, rgba } = card();
  const base = await jpeg(width, height, rgba);
  // where the stored top-left (red) and top-right (green) blocks land when displayed
  const expected: Record<number, [string, string]> = {
    1: ["TL", "TR"],
    2: ["TR", "TL"],
    3: ["BR", "BL"],
    4: ["BL", "BR"],
    5: ["TL", "BL"],
    6: ["TR", "BR"],
    7: ["BR", "TR"],
    8: ["BL", "TL"],
  };
  for (let o = 1; o <= 8; o++) {
    for (const le of [true, false]) {
      const file = withExif(base, o, le);
      assertEquals(jpegOrientation(file), o);
      const d = await decodeImage(file, `o${o}.jpg`);
      const { width: dw, height: dh } = d.image;
      assertEquals([dw, dh], o >= 5 ? [height, width] : [width, height], `orientation ${o} size`);
      assertEquals([d.storedWidth, d.storedHeight, d.oriented], [width, height, o !== 1]);
      const corner = {
        TL: [8, 8],
        TR: [dw - 9, 8],
        BL: [8, dh - 9],
        BR: [dw - 9, dh - 9],
      } as Record<string, number[]>;
      const [red, green] = expected[o];
      assertEquals(
        colourAt(d.image, corner[red][0], corner[red][1]),
        "red",
        `orientation ${o}: red at ${red}`,
      );
      assertEquals(
        colourAt(d.image, corner[green][0], corner[green][1]),
        "green",
        `orientation ${o}: green at ${green}`,
      );
    }
  }
});

Deno.test("EXIF: orientation 'ignore' keeps the stored pixels; malformed EXIF means upright", async () => {
  const { width, height, rgba } = card();
  const base = await jpeg(width, height, rgba);
  const d = await decodeImage(withExif(base, 6), "six.jpg", { orientation: "ignore" });
  assertEquals([d.image.width, d.image.height, d.orientation, d.oriented], [
    width,
    height,
    6,
    false,
  ]);
  assertEquals(colourAt(d.image, 8, 8), "red");
  for (const bad of [0, 9, 0xffff]) assertEquals(jpegOrientation(withExif(base, bad)), 1);
  const broken = withExif(base, 6);
  broken[2 + 4 + 6 + 2] = 99; // TIFF magic 42 -> 99
  assertEquals(jpegOrientation(broken), 1);
  assertEquals((await decodeImage(broken, "broken.jpg")).image.width, width);
});

Deno.test("orientation transforms keep every pixel (gray and RGBA, 8 cases, inverse pairs)", () => {
  const w = 5, h = 3;
  for (const channels of [1, 4] as const) {
    const r = { width: w, height: h, channels, data: randomBytes(w * h * channels, channels) };
    // 6 then 8 (or 8 then 6) is the identity; 2, 3, 4, 5, 7 are their own inverses
    const inverse: Record<number, Orientation> = { 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6 };
    for (let o = 2; o <= 8; o++) {
      const there = applyOrientation(r, o as Orientation),
        back = applyOrientation(there, inverse[o]);
      assertEquals(
        [back.width, back.height, [...back.data]],
        [w, h, [...r.data]],
        `orientation ${o}`,
      );
    }
  }
});

// ---------------------------------------------------------------------------
// limits, formats and corrupt input

Deno.test("formats are told by magic bytes, not names; unsupported ones are named", async () => {
  const { width, height, rgba } = card();
  const jpg = await jpeg(width, height, rgba);
  assertEquals((await decodeImage(jpg, "misnamed.png")).format, "jpeg");
  await rejectsWith(
    () => decodeImage(new TextEncoder().encode("GIF89a....."), "anim.gif"),
    "bad-input",
    "anim.gif",
    "GIF",
  );
  await rejectsWith(
    () => decodeImage(new Uint8Array(0), "empty.png"),
    "bad-input",
    "empty.png",
    "empty",
  );
  await rejectsWith(
    () => decodeImage(randomBytes(500), "noise.bin"),
    "bad-input",
    "noise.bin",
    "not a PNG or JPEG",
  );
});

Deno.test("the pixel limit is enforced from the header, before decoding", async () => {
  const file = encodeMaskPng({ width: 100, height: 50, data: new Uint8Array(5000) });
  await rejectsWith(
    () => decodeMask(file, "big.png", { maxPixels: 4999 }),
    "too-large",
    "big.png",
    "100x50",
  );
  assertEquals((await decodeMask(file, "big.png", { maxPixels: 5000 })).mask.width, 100);
  // a header claiming 100000 x 100000 is refused without allocating 10 gigapixels
  const lying = file.slice();
  new DataView(lying.buffer).setUint32(16, 100000);
  new DataView(lying.buffer).setUint32(20, 100000);
  await rejectsWith(() => decodeMask(lying, "bomb.png"), "too-large", "bomb.png");
});

Deno.test("truncated and corrupt PNGs are rejected with the file's name", async () => {
  const file = encodeImagePng({
    width: 64,
    height: 64,
    channels: 3,
    data: randomBytes(64 * 64 * 3, 5),
  });
  for (const cut of [20, 40, Math.floor(file.length / 2), file.length - 12]) {
    await rejectsWith(() => decodeImage(file.subarray(0, cut), "cut.png"), "bad-input", "cut.png");
  }
  const flipped = file.slice();
  flipped[Math.floor(file.length / 2)] ^= 0x5a; // inside IDAT: the CRC no longer matches
  await rejectsWith(() => decodeImage(flipped, "flipped.png"), "bad-input", "flipped.png");
});

Deno.test("truncated and corrupt JPEGs are rejected with the file's name", async () => {
  const { width, height, rgba } = card();
  for (const progressive of [false, true]) {
    const file = await jpeg(width, height, rgba, { progressive, baseline: !progressive });
    for (const cut of [3, 30, Math.floor(file.length * 0.6), file.length - 2]) {
      await rejectsWith(
        () => decodeImage(file.subarray(0, cut), "cut.jpg"),
        "bad-input",
        "cut.jpg",
      );
    }
  }
  const garbage = new Uint8Array([0xff, 0xd8, 0xff, ...randomBytes(300, 9)]);
  await rejectsWith(() => decodeImage(garbage, "garbage.jpg"), "bad-input", "garbage.jpg");
  const bogus = await jpeg(width, height, rgba);
  const sos = bogus.findIndex((b, i) => b === 0xff && bogus[i + 1] === 0xc4); // a Huffman table
  bogus.fill(0xff, sos + 4, sos + 24);
  await rejectsWith(() => decodeImage(bogus, "bogus.jpg"), "bad-input", "bogus.jpg", "Huffman");
  // the decoder stays usable after a failure
  assertEquals((await decodeImage(await jpeg(width, height, rgba), "ok.jpg")).image.width, width);
});

// ---------------------------------------------------------------------------
// overlay

Deno.test("overlay: contours of the refined (green) and resized coarse (magenta) masks", () => {
  const w = 40,
    h = 20,
    image = {
      width: w,
      height: h,
      channels: 3 as const,
      data: new Uint8Array(w * h * 3).fill(100),
    };
  const refined = { width: w, height: h, data: new Uint8Array(w * h) };
  for (let y = 5; y < 15; y++) for (let x = 10; x < 30; x++) refined.data[y * w + x] = 255;
  const coarse = { width: 4, height: 2, data: new Uint8Array([0, 255, 255, 0, 0, 0, 0, 0]) }; // fg: x 10..30, top half
  const out = drawOverlay(image, refined, coarse);
  assertEquals([out.width, out.height, out.channels], [w, h, 3]);
  const px = (x: number, y: number) => [...out.data.subarray((y * w + x) * 3, (y * w + x) * 3 + 3)];
  assertEquals(px(20, 5), [0, 255, 0]); // refined edge, inside
  assertEquals(px(20, 4), [0, 255, 0]); // refined edge, outside (2 px wide)
  assertEquals(px(20, 12), [100, 100, 100]); // interior untouched
  assertEquals(px(9, 3), [255, 0, 255]); // coarse edge on its left side
  assertEquals(px(2, 2), [100, 100, 100]); // background untouched
  assertEquals(px(20, 9), [255, 0, 255]); // coarse edge at the half-height boundary (y 9/10)
  assertEquals(decodePng(encodeImagePng(out)).data, out.data);
});
