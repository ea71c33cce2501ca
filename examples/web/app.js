// @ts-check
/**
 * The demo page: decodes the picked image and coarse mask with the browser's
 * own decoders, refines with the bundle (dist/crispmask.js: Web Workers from
 * a Blob URL, weights fetched from weights/ beside dist/), and shows coarse
 * and refined side by side under a slider, with their contours.
 *
 * @module
 */

import { createRefiner } from "../../dist/crispmask.js";

/** @typedef {import("../../types/crispmask.d.ts").RgbImage} RgbImage */
/** @typedef {import("../../types/crispmask.d.ts").Mask} Mask */
/** @typedef {import("../../types/crispmask.d.ts").Refiner} Refiner */

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** @type {{ image: RgbImage | null, mask: Mask | null, refined: Mask | null }} */
const state = { image: null, mask: null, refined: null };
/** @type {Promise<Refiner> | null} */
let refiner = null;

/**
 * Pixels of an image file as RGBA, exactly as stored: no colour-space
 * conversion, so the page refines the same bytes that Deno's decoders give.
 * @param {Blob} blob
 */
async function decodeRgba(blob) {
  const bitmap = await createImageBitmap(blob, {
    colorSpaceConversion: "none",
    premultiplyAlpha: "none",
  });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = /** @type {OffscreenCanvasRenderingContext2D} */ (
    canvas.getContext("2d", { willReadFrequently: true })
  );
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return ctx.getImageData(0, 0, canvas.width, canvas.height);
}

/**
 * A mask from a decoded file, by the rule of src/io/raster.ts: the alpha
 * where it varies (cut-outs, alpha masks), else the first channel.
 * @param {ImageData} rgba
 * @returns {Mask}
 */
function toMask(rgba) {
  const d = rgba.data, n = rgba.width * rgba.height;
  let alphaVaries = false;
  for (let i = 3; i < d.length && !alphaVaries; i += 4) alphaVaries = d[i] !== d[3];
  const channel = alphaVaries ? 3 : 0;
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = d[4 * i + channel];
  return { width: rgba.width, height: rgba.height, data };
}

/**
 * @param {"image" | "mask"} which
 * @param {Blob} blob
 * @param {string} name
 */
async function load(which, blob, name) {
  const rgba = await decodeRgba(blob);
  if (which === "image") {
    state.image = { width: rgba.width, height: rgba.height, channels: 4, data: rgba.data };
  } else state.mask = toMask(rgba);
  state.refined = null;
  $(`${which}-name`).textContent = `${name} — ${rgba.width}×${rgba.height}`;
  /** @type {HTMLButtonElement} */ ($("refine")).disabled = !(state.image && state.mask);
  setDownload(null);
  if (state.image && state.mask) {
    status("Ready: press Refine.");
    show();
  }
}

/** @param {string} text @param {"idle" | "refining" | "done" | "error"} [phase] */
function status(text, phase = "idle") {
  $("status").textContent = text;
  document.body.dataset.state = phase;
}

/** @param {Blob | null} png */
function setDownload(png) {
  const a = /** @type {HTMLAnchorElement} */ ($("download"));
  if (a.href) URL.revokeObjectURL(a.href);
  if (png) a.href = URL.createObjectURL(png);
  else a.removeAttribute("href");
  a.setAttribute("aria-disabled", String(!png));
}

async function refine() {
  const { image, mask } = state;
  if (!image || !mask) return;
  const button = /** @type {HTMLButtonElement} */ ($("refine"));
  const progress = /** @type {HTMLProgressElement} */ ($("progress"));
  button.disabled = true;
  progress.value = 0;
  try {
    status("Loading the model…", "refining");
    refiner ??= createRefiner();
    const r = await refiner;
    const t0 = performance.now();
    const refined = await r.refine(image, mask, {
      onProgress: (p) => {
        progress.value = p.done / p.total;
        status(
          `Refining: stage ${p.stage + 1} of ${p.stages}, ${Math.round((100 * p.done) / p.total)}%`,
          "refining",
        );
      },
    });
    const seconds = ((performance.now() - t0) / 1000).toFixed(2);
    state.refined = refined;
    progress.value = 1;
    show();
    setDownload(await maskPng(refined));
    const where = r.workers > 0
      ? `${r.workers} Web Worker${r.workers > 1 ? "s" : ""}`
      : "the page's thread";
    status(
      `Refined ${image.width}×${image.height} in ${seconds} s on ${where} (${r.build}).`,
      "done",
    );
  } catch (err) {
    refiner = null;
    status(`Failed: ${err instanceof Error ? err.message : String(err)}`, "error");
  } finally {
    button.disabled = false;
  }
}

/** The mask as a PNG (gray in RGB, opaque: the canvas keeps the values exactly). @param {Mask} m */
function maskPng(m) {
  const canvas = document.createElement("canvas");
  canvas.width = m.width;
  canvas.height = m.height;
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  const img = ctx.createImageData(m.width, m.height);
  for (let i = 0; i < m.data.length; i++) {
    const v = m.data[i];
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v;
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

/**
 * `m` resized bilinearly to `w` x `h` (for display only).
 * @param {Mask} m @param {number} w @param {number} h
 */
function resize(m, w, h) {
  if (m.width === w && m.height === h) return m.data;
  const out = new Uint8Array(w * h), sx = m.width / w, sy = m.height / h;
  for (let y = 0; y < h; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), m.height - 1);
    const y0 = Math.floor(fy), y1 = Math.min(y0 + 1, m.height - 1), ty = fy - y0;
    for (let x = 0; x < w; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), m.width - 1);
      const x0 = Math.floor(fx), x1 = Math.min(x0 + 1, m.width - 1), tx = fx - x0;
      const top = m.data[y0 * m.width + x0] * (1 - tx) + m.data[y0 * m.width + x1] * tx;
      const bottom = m.data[y1 * m.width + x0] * (1 - tx) + m.data[y1 * m.width + x1] * tx;
      out[y * w + x] = Math.round(top * (1 - ty) + bottom * ty);
    }
  }
  return out;
}

/**
 * Pixels on the foreground's edge (>= 128 with a background 4-neighbour),
 * thickened to `r` px so that the line stays visible when a big image is shown small.
 * @param {Uint8Array} m @param {number} w @param {number} h @param {number} r
 */
function contour(m, w, h, r) {
  const edge = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      if (m[i] < 128) continue;
      if (
        (x > 0 && m[i - 1] < 128) || (x < w - 1 && m[i + 1] < 128) ||
        (y > 0 && m[i - w] < 128) || (y < h - 1 && m[i + w] < 128)
      ) edge[i] = 1;
    }
  }
  if (r <= 0) return edge;
  // square dilation, as two running-window passes
  const tmp = new Uint8Array(w * h), out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let hit = 0;
      for (let k = Math.max(0, x - r); k <= Math.min(w - 1, x + r) && !hit; k++) {
        hit = edge[y * w + k];
      }
      tmp[y * w + x] = hit;
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let hit = 0;
      for (let k = Math.max(0, y - r); k <= Math.min(h - 1, y + r) && !hit; k++) {
        hit = tmp[k * w + x];
      }
      out[y * w + x] = hit;
    }
  }
  return out;
}

/**
 * Draws the image with a mask into `canvas`: the background dimmed and the contour in `color`.
 * @param {HTMLCanvasElement} canvas @param {RgbImage} image @param {Uint8Array} m
 * @param {[number, number, number]} color
 */
function draw(canvas, image, m, color) {
  const { width: w, height: h } = image;
  canvas.width = w;
  canvas.height = h;
  const tint = /** @type {HTMLInputElement} */ ($("tint")).checked;
  const lines = /** @type {HTMLInputElement} */ ($("contours")).checked;
  const shown = canvas.getBoundingClientRect().width || 900;
  const edge = lines ? contour(m, w, h, Math.max(0, Math.round(w / shown) - 1)) : null;
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  const out = ctx.createImageData(w, h);
  const src = image.data, ch = image.channels;
  for (let i = 0; i < w * h; i++) {
    if (edge && edge[i]) {
      out.data.set(color, 4 * i);
    } else {
      const k = tint ? 0.3 + (0.7 * m[i]) / 255 : 1;
      for (let c = 0; c < 3; c++) out.data[4 * i + c] = src[ch * i + c] * k;
    }
    out.data[4 * i + 3] = 255;
  }
  ctx.putImageData(out, 0, 0);
}

function show() {
  const { image, mask, refined } = state;
  if (!image || !mask) return;
  $("viewer").hidden = false;
  const coarse = resize(mask, image.width, image.height);
  draw(/** @type {HTMLCanvasElement} */ ($("before")), image, coarse, [255, 61, 165]);
  draw(/** @type {HTMLCanvasElement} */ ($("after")), image, refined ? refined.data : coarse, [
    46,
    230,
    90,
  ]);
  $("after").style.visibility = refined ? "visible" : "hidden";
}

/** @param {number} percent */
function split(percent) {
  $("compare").style.setProperty("--split", `${percent}%`);
}

/** @param {"image" | "mask"} which */
function wireInput(which) {
  const input = /** @type {HTMLInputElement} */ ($(`${which}-file`));
  const zone = $(`${which}-drop`);
  /** @param {File | undefined} file */
  const take = (file) => {
    if (!file) return;
    load(which, file, file.name).catch((err) =>
      status(`Cannot read ${file.name}: ${err.message}`, "error")
    );
  };
  input.addEventListener("change", () => take(input.files?.[0]));
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    take(e.dataTransfer?.files[0]);
  });
}

async function useExample() {
  status("Loading the example…");
  const get = async (/** @type {string} */ url) => {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    return await res.blob();
  };
  const [image, mask] = await Promise.all([get("../coffee.png"), get("../coffee_coarse.png")]);
  await load("image", image, "coffee.png");
  await load("mask", mask, "coffee_coarse.png");
}

wireInput("image");
wireInput("mask");
$("example").addEventListener("click", () => {
  useExample().catch((err) => status(`Cannot load the example: ${err.message}`, "error"));
});
$("refine").addEventListener("click", refine);
const slider = /** @type {HTMLInputElement} */ ($("slider"));
slider.addEventListener("input", () => split(Number(slider.value)));
$("contours").addEventListener("change", show);
$("tint").addEventListener("change", show);
// drag across the picture to move the split
$("compare").addEventListener("pointermove", (e) => {
  if (e.buttons !== 1) return;
  const box = $("compare").getBoundingClientRect();
  const percent = Math.min(100, Math.max(0, (100 * (e.clientX - box.left)) / box.width));
  slider.value = String(percent);
  split(percent);
});
status("Pick an image and its coarse mask, or use the example.");
