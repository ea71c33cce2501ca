"""Training data for CRM-lite: (image, ground truth, coarse mask) crops.

    /usr/bin/python3 train/data.py --out /tmp/data_preview     # self-check + preview

Where the samples come from (see ../shared/data/README.md; ``eval/`` is never
read):

* real photos with masks: ``human-seg``, ``davis``, ``carvana``, ``ccp``;
* ``composite``: synthetic images, alpha * FG + (1 - alpha) * BG, where alpha
  is a procedural shape (smooth blobs, polygons, thin strokes, shapes with
  holes, text glyphs) and FG/BG are crops of two different real photographs.
  They supply what the real sets lack: thin structures, holes, sharp corners
  and arbitrary textures, with exact boundaries. 30% of them cast a soft
  shadow on the background (``cast_shadow``), and half of those have the
  shadow in the coarse mask too, as real segmenters often do. A share
  ``low_contrast`` of them (0 by default) is camouflaged instead of kept
  visible: the object's local colour is matched to the background's
  (``match_colours``);
* ``alpha-composite``: the same, with a real alpha matte (hair, fur, plants,
  nets) from ``train/alpha-shapes``. ``composite`` in ``sets`` means both
  kinds; either can be named alone.

A share ``distractors`` of all samples (0 by default) gets a soft false
positive that follows the photo in its coarse mask (``coarse.distractor``),
as segmenters paint lettering or railings beside the object.

Photographs used as composite textures are ``train/backgrounds``, the
``mate-backgrounds`` wallpapers when installed, and the images of the real
sets that are *in use*, so leaving a set out for its licence also keeps its
photos out of the composites.

Every sample is a pure function of its key ``(index, size, seed)``: the
index picks the source, the seed drives every random choice. That makes runs
reproducible for any number of loader workers.
"""
from __future__ import annotations

import argparse
import math
import string
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))
import coarse as coarse_gen  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "data"
MATE_DIR = Path("/usr/share/backgrounds/mate")
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")

REAL_SETS = ("human-seg", "davis", "carvana", "ccp")
ALL_SETS = REAL_SETS + ("composite", "alpha-composite")
# Share of the virtual index space per set. The real sets are tiny (200-600
# items) next to the infinite composites, so they are given fixed shares
# instead of shares by size; DAVIS (varied animals/people/vehicles with
# accurate boundaries) gets the largest real share, human-seg (machine-made
# masks) the smallest.
SET_WEIGHTS = {
    "composite": 0.30, "alpha-composite": 0.10, "davis": 0.20,
    "carvana": 0.15, "ccp": 0.15, "human-seg": 0.10,
}
VIRTUAL_LENGTH = 10000
CACHE_LONG_SIDE = 1280   # photos are kept at most this big (uint8)
REAL_LONG_SIDE = 2048    # real image/mask pairs keep their full size: native-scale crops need it
NATIVE_SHARE = 0.35      # share of boundary crops of a real image at its own pixel scale (see _real_crop)
ALPHA_LONG_SIDE = 2048   # alpha mattes keep more: their hair is the point
CACHE_CAP_BYTES = 4 << 30
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


# --------------------------------------------------------------------------
# decoding


def _image_size(path: Path) -> Tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    with Image.open(path) as im:
        return im.size


def read_rgb(path: Path, max_long: int) -> np.ndarray:
    """Decode an image as RGB uint8 with its long side at most ``max_long``.

    JPEGs many times too big (the 6K backgrounds) are decoded at a reduced
    size directly, which is several times faster than decoding in full.
    """
    w, h = _image_size(path)
    flag = cv2.IMREAD_COLOR
    for factor, reduced in ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
                            (2, cv2.IMREAD_REDUCED_COLOR_2)):
        if max(w, h) / factor >= max_long:
            flag = reduced
            break
    bgr = cv2.imread(str(path), flag)
    if bgr is None:
        raise IOError(f"cannot decode {path}")
    return _cap_size(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), max_long)


def read_gray(path: Path, max_long: int) -> np.ndarray:
    g = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if g is None:
        raise IOError(f"cannot decode {path}")
    return _cap_size(g, max_long)


def _cap_size(a: np.ndarray, max_long: int) -> np.ndarray:
    h, w = a.shape[:2]
    if max(h, w) <= max_long:
        return a
    f = max_long / max(h, w)
    return cv2.resize(a, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def boundary_points(mask: np.ndarray, limit: int = 4096) -> np.ndarray:
    """(N, 2) int32 (y, x) pixels on the inner boundary of ``mask > 127``, at most ``limit``.

    Kept per image so crops can be centred on the boundary without scanning
    the whole mask for every sample.
    """
    fg = (mask > 127).astype(np.uint8)
    edge = fg - cv2.erode(fg, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    ys, xs = np.nonzero(edge)
    pts = np.stack([ys, xs], 1).astype(np.int32)
    if len(pts) > limit:
        pts = pts[:: int(math.ceil(len(pts) / limit))]
    return pts


def _bbox_of(pts: np.ndarray, mask: np.ndarray):
    """(y0, x0, y1, x1) of the foreground, or None for an empty or full mask."""
    if len(pts) == 0:
        return None
    fg = mask > 127
    rows = np.flatnonzero(fg.any(axis=1))
    cols = np.flatnonzero(fg.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


# --------------------------------------------------------------------------
# geometry: one affine warp per crop, shared by the image and its mask


def warp_crop(src: np.ndarray, cx: float, cy: float, scale: float, size: int,
              angle: float = 0.0, flip: bool = False) -> np.ndarray:
    """The ``size`` x ``size`` view of ``src`` centred on (cx, cy) at ``scale``.

    ``scale`` is output pixels per source pixel, ``angle`` a rotation in
    degrees, ``flip`` a horizontal mirror. Outside the image the source is
    reflected. Image and mask go through the same call with the same
    arguments, so they stay aligned to the sub-pixel.

    Large reductions first shrink the needed region by an integer factor with
    area averaging (fast in OpenCV and free of aliasing), so the final
    bilinear warp never reduces by more than 2x.
    """
    h, w = src.shape[:2]
    k = max(1, int(math.floor(1.0 / scale))) if scale < 1.0 else 1
    if k > 1:
        # region of the source the output can touch (rotated square + margin)
        c, s = abs(math.cos(math.radians(angle))), abs(math.sin(math.radians(angle)))
        r = 0.5 * size / scale * (c + s) + 2 * k
        x0, y0 = max(0, int(cx - r)) // k * k, max(0, int(cy - r)) // k * k
        x1 = min(w, int(math.ceil(cx + r)))
        y1 = min(h, int(math.ceil(cy + r)))
        x1 = x0 + max(k, (x1 - x0) // k * k)
        y1 = y0 + max(k, (y1 - y0) // k * k)
        if x1 <= w and y1 <= h:
            region = src[y0:y1, x0:x1]
            src = cv2.resize(region, ((x1 - x0) // k, (y1 - y0) // k), interpolation=cv2.INTER_AREA)
            cx, cy, scale = (cx - x0) / k, (cy - y0) / k, scale * k
    a = math.radians(angle)
    ca, sa = math.cos(a) * scale, math.sin(a) * scale
    A = np.array([[ca, -sa], [sa, ca]], np.float64)
    if flip:
        A = A @ np.array([[-1.0, 0.0], [0.0, 1.0]])
    # continuous coordinates with pixel centres at i + 0.5:
    # d + 0.5 = A (p + 0.5 - c) + size / 2
    t = A @ (np.array([0.5 - cx, 0.5 - cy])) + size / 2 - 0.5
    M = np.hstack([A, t[:, None]]).astype(np.float64)
    return cv2.warpAffine(src, M, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


# --------------------------------------------------------------------------
# colour


def colour_jitter(img: np.ndarray, rng: np.random.Generator, gray_prob: float = 0.05) -> np.ndarray:
    """Small brightness/contrast/saturation/hue changes and 5% grayscale, in one pass.

    All four are linear in RGB, so they are composed into one 3x4 matrix and
    applied with ``cv2.transform`` (uint8 in, saturated uint8 out).
    """
    luma = np.array([0.299, 0.587, 0.114])
    # hue: rotation about the gray axis in YIQ space
    to_yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    th = rng.uniform(-0.05, 0.05) * 2 * math.pi
    rot = np.array([[1, 0, 0], [0, math.cos(th), -math.sin(th)], [0, math.sin(th), math.cos(th)]])
    sat = 0.0 if rng.random() < gray_prob else rng.uniform(0.7, 1.3)
    M = np.linalg.inv(to_yiq) @ rot @ np.diag([1.0, sat, sat]) @ to_yiq
    M = M * rng.uniform(0.75, 1.25)  # brightness
    # contrast around the mean luminance of the transformed image
    contrast = rng.uniform(0.75, 1.25)
    mean_rgb = np.array(cv2.mean(img)[:3])
    mu = float(luma @ (M @ mean_rgb))
    full = np.hstack([contrast * M, np.full((3, 1), (1 - contrast) * mu)])
    return cv2.transform(img, full.astype(np.float32))


# --------------------------------------------------------------------------
# procedural shapes for composites (float32 alpha in [0, 1], size x size)


def _soft_threshold(field: np.ndarray, t: float) -> np.ndarray:
    """Alpha of ``field > t`` with a one-pixel anti-aliased edge (field / gradient)."""
    gx = cv2.Sobel(field, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(field, cv2.CV_32F, 0, 1, ksize=3) / 8
    grad = np.sqrt(gx * gx + gy * gy) + 1e-6
    return np.clip((field - t) / grad + 0.5, 0.0, 1.0)


def shape_blob(S: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth random blob(s): low-frequency noise plus a centred bump, thresholded."""
    cells = int(rng.integers(2, 9))
    noise = rng.standard_normal((cells + 2, cells + 2)).astype(np.float32)
    field = cv2.resize(noise, (S, S), interpolation=cv2.INTER_CUBIC)
    cy, cx = rng.uniform(0.3, 0.7, 2) * S
    R = rng.uniform(0.25, 0.6) * S
    yy, xx = np.ogrid[:S, :S]
    bump = 1.0 - ((yy - cy) ** 2 + (xx - cx) ** 2) / (R * R)
    field = field * rng.uniform(0.3, 1.0) + bump.astype(np.float32) * 1.5
    t = float(np.quantile(field[::4, ::4], 1.0 - rng.uniform(0.15, 0.55)))
    return _soft_threshold(field, t)


def _star_polygon(S: int, rng: np.random.Generator, centre=None, radius=None) -> np.ndarray:
    n = int(rng.integers(3, 15))
    cy, cx = centre if centre is not None else rng.uniform(0.3, 0.7, 2) * S
    R = radius if radius is not None else rng.uniform(0.2, 0.55) * S
    ang = np.sort(rng.uniform(0, 2 * np.pi, n)) + rng.uniform(0, 2 * np.pi)
    if rng.random() < 0.4:
        ang = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, 2 * np.pi)  # regular-ish
    spread = rng.uniform(0.0, 0.7)
    rad = R * rng.uniform(1.0 - spread, 1.0, n)
    return np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1)


def _fill(S: int, polys: List[np.ndarray]) -> np.ndarray:
    """Anti-aliased fill of float polygons (4 bits of sub-pixel precision)."""
    out = np.zeros((S, S), np.uint8)
    cv2.fillPoly(out, [np.round(p * 16).astype(np.int32) for p in polys], 255, cv2.LINE_AA, shift=4)
    return out.astype(np.float32) / 255.0


def shape_polygon(S: int, rng: np.random.Generator) -> np.ndarray:
    """A random star-shaped polygon: sharp corners, straight edges."""
    return _fill(S, [_star_polygon(S, rng)])


def _bezier(p0, p1, p2, n=24) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def shape_strokes(S: int, rng: np.random.Generator) -> np.ndarray:
    """Thin curves 1-6 px wide, usually attached to a body (antennae, wires, legs)."""
    base = shape_blob(S, rng) if rng.random() < 0.5 else shape_polygon(S, rng)
    if rng.random() < 0.25:
        base[:] = 0
    canvas = np.zeros((S, S), np.uint8)
    for _ in range(int(rng.integers(1, 9))):
        p0, p1, p2 = rng.uniform(-0.1, 1.1, (3, 2)) * S
        pts = _bezier(p0, p1, p2)
        th = int(rng.integers(1, 7))
        cv2.polylines(canvas, [np.round(pts * 16).astype(np.int32)], False, 255, th, cv2.LINE_AA, shift=4)
    return np.maximum(base, canvas.astype(np.float32) / 255.0)


def shape_holes(S: int, rng: np.random.Generator) -> np.ndarray:
    """A body with holes: a ring, or a blob/polygon with several cut-outs."""
    if rng.random() < 0.3:
        out = np.zeros((S, S), np.uint8)
        cy, cx = rng.uniform(0.35, 0.65, 2) * S
        a, b = rng.uniform(0.2, 0.45, 2) * S
        ang = float(rng.uniform(0, 180))
        cv2.ellipse(out, ((float(cx), float(cy)), (float(2 * a), float(2 * b)), ang), 255, -1, cv2.LINE_AA)
        f = rng.uniform(0.3, 0.8)
        cv2.ellipse(out, ((float(cx), float(cy)), (float(2 * a * f), float(2 * b * f)), ang), 0, -1, cv2.LINE_AA)
        return out.astype(np.float32) / 255.0
    base = shape_blob(S, rng) if rng.random() < 0.5 else shape_polygon(S, rng)
    ys, xs = np.nonzero(base > 0.5)
    if len(ys) == 0:
        return base
    holes = []
    for _ in range(int(rng.integers(1, 6))):
        i = int(rng.integers(len(ys)))
        holes.append(_star_polygon(S, rng, centre=(ys[i], xs[i]), radius=rng.uniform(0.03, 0.15) * S))
    return base * (1.0 - _fill(S, holes))


_GLYPHS = string.ascii_letters + string.digits + "&@#%?!$*+=<>{}§¶ß"


@lru_cache(maxsize=1)
def _font_paths() -> Tuple[str, ...]:
    return tuple(sorted(str(p) for p in FONT_DIR.glob("*.ttf"))) if FONT_DIR.is_dir() else ()


@lru_cache(maxsize=256)
def _font(path: str, px: int):
    return ImageFont.truetype(path, px)


def shape_text(S: int, rng: np.random.Generator) -> np.ndarray:
    """1-4 glyphs in a DejaVu font (PIL's default bitmap font if none is installed)."""
    n = int(rng.integers(1, 5))
    text = "".join(rng.choice(list(_GLYPHS), n))
    fonts = _font_paths()
    if fonts:
        px = int(S * rng.uniform(0.3, 0.9) / max(1.0, 0.6 * n))
        font = _font(fonts[int(rng.integers(len(fonts)))], max(8, px))
        canvas = Image.new("L", (S, S), 0)
        draw = ImageDraw.Draw(canvas)
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
        # place the ink box inside the canvas, or (when bigger) spanning it
        ox = rng.uniform(*sorted((-x0, S - x1)))
        oy = rng.uniform(*sorted((-y0, S - y1)))
        draw.text((ox, oy), text, fill=255, font=font)
    else:
        small = Image.new("L", (max(8, S // 8), max(8, S // 8)), 0)
        ImageDraw.Draw(small).text((1, 1), text, fill=255, font=ImageFont.load_default())
        canvas = small.resize((S, S), Image.BILINEAR)
    if rng.random() < 0.5:
        canvas = canvas.rotate(float(rng.uniform(-40, 40)), resample=Image.BILINEAR)
    return np.asarray(canvas, np.float32) / 255.0


SHAPES = ((shape_blob, 0.25), (shape_polygon, 0.2), (shape_strokes, 0.2), (shape_holes, 0.15),
          (shape_text, 0.2))


def procedural_alpha(S: int, rng: np.random.Generator) -> np.ndarray:
    """One procedural shape, or (15%) the union of two; sometimes softened (motion/defocus)."""
    fns = [f for f, _ in SHAPES]
    p = np.array([w for _, w in SHAPES])
    alpha = fns[int(rng.choice(len(fns), p=p / p.sum()))](S, rng)
    if rng.random() < 0.15:
        alpha = np.maximum(alpha, fns[int(rng.choice(len(fns), p=p / p.sum()))](S, rng))
    if rng.random() < 0.15:
        alpha = cv2.GaussianBlur(alpha, (0, 0), rng.uniform(0.5, 2.0))
    return alpha


# --------------------------------------------------------------------------
# composites: keep the object visible

MIN_EDGE_CONTRAST = 50.0  # summed |RGB| difference of 8x8-block means, in 0..765


def edge_contrast(fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray) -> float:
    """How different FG and BG look where the alpha boundary runs.

    Compares 8x8 block means (local colour, not texture noise) of the two
    layers, weighted by a(1-a) of the block-mean alpha, which is large only in
    blocks the boundary crosses. Each block's difference saturates at 100, so
    a few very different blocks cannot hide a boundary that is mostly
    camouflaged: a score of 50 needs about half of it clearly visible.
    """
    S = alpha.shape[0]
    n = max(1, S // 8)
    f = cv2.resize(fg, (n, n), interpolation=cv2.INTER_AREA)
    b = cv2.resize(bg, (n, n), interpolation=cv2.INTER_AREA)
    a = cv2.resize(alpha, (n, n), interpolation=cv2.INTER_AREA)
    w = a * (1.0 - a)
    if float(w.sum()) < 1e-3:
        w = np.ones_like(a)
    return float((np.minimum(np.abs(f - b).sum(-1), 100.0) * w).sum() / w.sum())


def recolour(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random per-channel gains and offsets, sometimes a negative (float32 in, float32 out)."""
    gains = rng.uniform(0.4, 1.6, 3).astype(np.float32)
    out = img * gains + rng.uniform(-60, 60, 3).astype(np.float32)
    if rng.random() < 0.3:
        out = 255.0 - out
    return np.clip(out, 0, 255)


def match_colours(fg: np.ndarray, bg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``fg`` with its local colour moved most of the way to ``bg``'s (float32 in and out).

    Real failures sit where object and background have nearly the same colour
    (an orange vase on an orange table, a pale dog on dry grass); the visibility
    rule of ``_composite`` keeps such boundaries out of training. Moving the
    FG's low-pass colour (Gaussian, sigma 4-10 px, about ``edge_contrast``'s
    8 px blocks) 75-97% of the way to the BG's keeps the fine textures apart
    but leaves little colour contrast, so the model must read texture, or trust
    the coarse mask where the photo says nothing.
    """
    sigma = rng.uniform(4.0, 10.0)
    shift = cv2.GaussianBlur(bg, (0, 0), sigma) - cv2.GaussianBlur(fg, (0, 0), sigma)
    return np.clip(fg + np.float32(rng.uniform(0.75, 0.97)) * shift, 0, 255)


SHADOW_PROB = 0.3         # share of composites whose object casts a shadow on the background
SHADOW_IN_COARSE = 0.5    # of those, share whose coarse mask took the shadow for the object


def cast_shadow(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A soft shadow of ``alpha`` (0..1, same size): shifted, sheared, squashed and blurred.

    Real coarse masks (GrabCut ISNet, cars on a floor) often run along an
    object's shadow: a darker patch of the same background that touches
    the object. Composites had no shadows, so nothing taught the model that
    such a patch is background.
    """
    S = alpha.shape[0]
    angle = rng.uniform(0.0, 2.0 * math.pi)
    length = rng.uniform(0.03, 0.15) * S
    squash = rng.uniform(0.4, 1.0)
    shear = rng.uniform(-0.6, 0.6)
    # about the object's lowest point, so squashing keeps the shadow at its feet
    ys = np.nonzero(alpha > 0.5)[0]
    y0 = float(ys.max()) if ys.size else S / 2.0
    m = np.array([[1.0, shear, -shear * y0 + length * math.cos(angle)],
                  [0.0, squash, (1.0 - squash) * y0 + length * math.sin(angle)]], np.float32)
    shadow = cv2.warpAffine(alpha.astype(np.float32), m, (S, S), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return cv2.GaussianBlur(shadow, (0, 0), rng.uniform(1.0, max(1.5, 0.03 * S)))


# --------------------------------------------------------------------------
# the dataset


def _expand_sets(sets) -> List[str]:
    if isinstance(sets, str):
        sets = [s for s in sets.split(",") if s]
    out: List[str] = []
    for s in sets:
        s = s.strip()
        names = ["composite", "alpha-composite"] if s == "composite" else [s]
        for n in names:
            if n not in ALL_SETS:
                raise ValueError(f"unknown training set {n!r}; known: {', '.join(ALL_SETS)} (composite = both kinds)")
            if n not in out:
                out.append(n)
    return out


def _pair_files(set_dir: Path) -> List[Tuple[Path, Path]]:
    """(image, mask) pairs of one set, matched by file stem (images .jpg, masks .png)."""
    masks = {p.stem: p for p in (set_dir / "masks").iterdir() if p.suffix.lower() in IMAGE_EXTS}
    pairs = []
    for img in sorted((set_dir / "images").iterdir()):
        if img.suffix.lower() in IMAGE_EXTS and img.stem in masks:
            pairs.append((img, masks[img.stem]))
    return pairs


class RefineDataset(torch.utils.data.Dataset):
    """Crops for refinement training; ``dataset[(index, size, seed)]`` gives one sample.

    The index space has ``length`` virtual entries split between the sets by
    ``SET_WEIGHTS`` (renormalised over the sets in use), so how often a set is
    seen does not depend on how many files it has. The returned dict holds
    ``image`` [3,S,S] in [0,1], ``gt`` [1,S,S] in {0,1}, ``coarse`` [1,S,S] in
    [0,1] (float32), and ``set`` (the source's name).

    Decoded images are cached lazily per process (uint8, long side capped), up
    to ``cache_cap`` bytes; beyond that they are decoded on every use.
    """

    def __init__(self, root=None, sets=ALL_SETS, length: int = VIRTUAL_LENGTH,
                 cache_cap: int = CACHE_CAP_BYTES, use_mate: bool = True, low_contrast: float = 0.0,
                 distractors: float = 0.0):
        self.root = Path(root) if root is not None else DEFAULT_ROOT
        if not 0.0 <= low_contrast <= 1.0:
            raise ValueError(f"low_contrast must be in [0, 1], got {low_contrast}")
        if not 0.0 <= distractors <= 1.0:
            raise ValueError(f"distractors must be in [0, 1], got {distractors}")
        self.low_contrast = float(low_contrast)
        self.distractors = float(distractors)
        train = self.root / "train"
        if not train.is_dir():
            raise FileNotFoundError(f"no training data at {train}")
        self.sets = _expand_sets(sets)
        if not self.sets:
            raise ValueError("no training set selected")
        self.length = int(length)
        self.cache_cap = int(cache_cap)
        self._cache: Dict[tuple, object] = {}
        self._cache_bytes = 0

        self.items: Dict[str, List[Tuple[Path, Path]]] = {}
        for s in self.sets:
            if s in REAL_SETS:
                self.items[s] = _pair_files(train / s)
                if not self.items[s]:
                    raise FileNotFoundError(f"set {s}: no image/mask pairs under {train / s}")
        self.alphas: List[Path] = sorted((train / "alpha-shapes").glob("*.png"))
        if "alpha-composite" in self.sets and not self.alphas:
            raise FileNotFoundError(f"no alpha mattes under {train / 'alpha-shapes'}")

        # photographs for composite textures: files, or ("set", k) to share the item cache
        self.photos: List[tuple] = [("file", p) for p in sorted((train / "backgrounds").iterdir())
                                    if p.suffix.lower() in IMAGE_EXTS]
        if use_mate and MATE_DIR.is_dir():
            self.photos += [("file", p) for p in sorted(MATE_DIR.rglob("*"))
                            if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
        for s in REAL_SETS:
            if s in self.items:
                self.photos += [("set", s, k) for k in range(len(self.items[s]))]

        # virtual index ranges per set
        w = np.array([SET_WEIGHTS[s] for s in self.sets], np.float64)
        bounds = np.round(np.cumsum(w / w.sum()) * self.length).astype(int)
        self.ranges = list(zip(self.sets, np.concatenate([[0], bounds[:-1]]), bounds))

    # -- indexing ---------------------------------------------------------

    def __len__(self) -> int:
        return self.length

    def locate(self, index: int) -> Tuple[str, int]:
        """(set name, index within that set's virtual range)."""
        index = int(index) % self.length
        for name, lo, hi in self.ranges:
            if lo <= index < hi:
                return name, index - lo
        raise IndexError(index)

    def __getitem__(self, key) -> dict:
        if isinstance(key, (int, np.integer)):
            key = (int(key), 320, 0)
        index, size, seed = (int(v) for v in key)
        rng = np.random.default_rng([index % self.length, size, seed])
        name, j = self.locate(index)
        shadow = None
        if name == "composite":
            img, soft, shadow = self._composite(size, rng, procedural_alpha(size, rng))
        elif name == "alpha-composite":
            alpha = self._matte_crop(j % len(self.alphas), size, rng)
            img, soft, shadow = self._composite(size, rng, alpha)
        else:
            img, soft = self._real_crop(name, j % len(self.items[name]), size, rng)
        coarse = coarse_gen.random_coarse(soft, rng)
        if shadow is not None and rng.random() < SHADOW_IN_COARSE:
            coarse = np.maximum(coarse, (shadow > 0.5).astype(np.float32))
        # drawn only when enabled, so that runs without it see the same samples as before
        if self.distractors > 0.0 and rng.random() < self.distractors:
            coarse = coarse_gen.distractor(coarse, img, soft, rng)
        img = colour_jitter(img, rng)
        gt = (soft > 0.5).astype(np.float32)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255.0),
            "gt": torch.from_numpy(gt)[None],
            "coarse": torch.from_numpy(coarse.astype(np.float32))[None],
            "set": name,
        }

    # -- caching ----------------------------------------------------------

    def _cached(self, key: tuple, load):
        """Memoise ``load()`` under ``key`` while the cache is below its byte cap."""
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        value = load()
        nbytes = sum(a.nbytes for a in (value if isinstance(value, tuple) else (value,))
                     if isinstance(a, np.ndarray))
        if self._cache_bytes + nbytes <= self.cache_cap:
            self._cache[key] = value
            self._cache_bytes += nbytes
        return value

    def _real_item(self, name: str, k: int):
        """(rgb uint8, mask uint8, boundary points, bbox) of one real image, decoded once."""
        def load():
            ip, mp = self.items[name][k]
            mask = cv2.imread(str(mp), cv2.IMREAD_GRAYSCALE)
            if mask is None:
                raise IOError(f"cannot decode {mp}")
            img = read_rgb(ip, 1 << 30)
            if img.shape[:2] != mask.shape:
                # human-seg: masks are a scaled-down version of the photo's frame;
                # bring the photo to the mask (upscaling a mask would invent edges)
                interp = cv2.INTER_AREA if img.shape[0] > mask.shape[0] else cv2.INTER_LINEAR
                img = cv2.resize(img, (mask.shape[1], mask.shape[0]), interpolation=interp)
            img, mask = _cap_size(img, REAL_LONG_SIDE), _cap_size(mask, REAL_LONG_SIDE)
            pts = boundary_points(mask)
            return img, mask, pts, _bbox_of(pts, mask)
        return self._cached(("set", name, k), load)

    def _photo(self, p: int) -> np.ndarray:
        entry = self.photos[p]
        if entry[0] == "set":
            return self._real_item(entry[1], entry[2])[0]
        return self._cached(("file", entry[1]), lambda: read_rgb(entry[1], CACHE_LONG_SIDE))

    def _matte(self, k: int):
        def load():
            a = read_gray(self.alphas[k], ALPHA_LONG_SIDE)
            pts = boundary_points(a)
            return a, pts, _bbox_of(pts, a)
        return self._cached(("alpha", k), load)

    # -- crops --------------------------------------------------------------

    def _real_crop(self, name: str, k: int, S: int, rng: np.random.Generator):
        """Scale so the object spans ~0.5-2 crop sides, crop around its boundary.

        8% of crops show the whole image (long side = S, reflected padding).
        Otherwise the image's short side must nearly fill the crop, because
        mirrored copies of the scene are not what inference sees; this
        outranks the object-size range for big objects in small images.
        Upscaling stops at 3x.

        ``NATIVE_SHARE`` of the other crops keep the photo's own pixel scale
        (0.75-1.25x) whatever the object's size: the last inference stage
        always runs at full size, where a 1918 px Carvana car spans five
        crops, while the object-size rule alone showed it only shrunk 2.3-10x
        (sharper edges than the photo's own).
        """
        img, mask, pts, bbox = self._real_item(name, k)
        h, w = mask.shape
        mode = rng.random()
        if bbox is None or mode < 0.08:
            scale = S / max(h, w) * rng.uniform(0.9, 1.1)
            cx, cy = w / 2, h / 2
        else:
            obj = max(bbox[2] - bbox[0], bbox[3] - bbox[1])
            if rng.random() < NATIVE_SHARE:
                scale = math.exp(rng.uniform(math.log(0.75), math.log(1.25)))
            else:
                scale = S * math.exp(rng.uniform(math.log(0.5), math.log(2.0))) / obj
            scale = min(max(scale, 0.9 * S / min(h, w)), 3.0)
            cx, cy = self._crop_centre(pts, w, h, S / scale, rng, boundary=mode < 0.88)
        angle = float(rng.uniform(-10, 10)) if rng.random() < 0.15 else 0.0
        flip = bool(rng.random() < 0.5)
        img_c = warp_crop(img, cx, cy, scale, S, angle, flip)
        soft = warp_crop(mask, cx, cy, scale, S, angle, flip).astype(np.float32) / 255.0
        return img_c, soft

    @staticmethod
    def _crop_centre(pts, w, h, L, rng, boundary=True):
        """Centre of an L x L source window: near a boundary pixel, or anywhere.

        A boundary pixel stays within the inner 70% of the window, so the
        crop holds both classes; where the image is bigger than the window,
        the window is kept inside the image (no padding needed).
        """
        if boundary and len(pts):
            py, px = pts[int(rng.integers(len(pts)))]
            cx = px + 0.5 + rng.uniform(-0.35, 0.35) * L
            cy = py + 0.5 + rng.uniform(-0.35, 0.35) * L
        else:
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        cx = min(max(cx, L / 2), w - L / 2) if w >= L else w / 2 + rng.uniform(-0.25, 0.25) * (L - w)
        cy = min(max(cy, L / 2), h - L / 2) if h >= L else h / 2 + rng.uniform(-0.25, 0.25) * (L - h)
        return cx, cy

    def _matte_crop(self, k: int, S: int, rng: np.random.Generator) -> np.ndarray:
        """A real alpha matte, scaled (object 0.6-4 crop sides), rotated and flipped."""
        a, pts, bbox = self._matte(k)
        h, w = a.shape
        if bbox is None:
            return warp_crop(a, w / 2, h / 2, S / max(h, w), S).astype(np.float32) / 255.0
        obj = max(bbox[2] - bbox[0], bbox[3] - bbox[1])
        scale = min(S * math.exp(rng.uniform(math.log(0.6), math.log(4.0))) / obj, 1.5)
        angle = float(rng.uniform(-45, 45)) if rng.random() < 0.7 else float(rng.uniform(0, 360))
        cx, cy = self._crop_centre(pts, w, h, S / scale, rng, boundary=rng.random() < 0.9)
        return warp_crop(a, cx, cy, scale, S, angle, bool(rng.random() < 0.5)).astype(np.float32) / 255.0

    def _photo_group(self, p: int) -> str:
        """Photos of one video sequence (DAVIS) or one car (Carvana) form a group.

        FG and BG of a composite come from different groups: two frames of one
        sequence would make the object invisible.
        """
        entry = self.photos[p]
        if entry[0] == "file":
            return str(entry[1])
        name, stem = entry[1], self.items[entry[1]][entry[2]][0].stem
        return f"{name}/{stem.rsplit('_', 1)[0]}" if name in ("davis", "carvana") else f"{name}/{stem}"

    def _texture(self, S: int, rng: np.random.Generator, avoid: str = "") -> Tuple[np.ndarray, str]:
        """A random crop of a random photograph (not of group ``avoid``) at a random scale."""
        n = len(self.photos)
        for _ in range(8):
            p = int(rng.integers(n))
            if self._photo_group(p) != avoid:
                break
        img = self._photo(p)
        h, w = img.shape[:2]
        lo = max(S / min(h, w), 0.25)
        scale = math.exp(rng.uniform(math.log(lo), math.log(max(lo, 2.0))))
        L = S / scale
        cx = rng.uniform(L / 2, max(L / 2, w - L / 2))
        cy = rng.uniform(L / 2, max(L / 2, h - L / 2))
        return warp_crop(img, cx, cy, scale, S, 0.0, bool(rng.random() < 0.5)), self._photo_group(p)

    def _composite(self, S: int, rng: np.random.Generator, alpha: np.ndarray):
        """alpha * FG + (1 - alpha) * BG with FG and BG from different photographs.

        Returns (image, alpha, shadow): ``shadow`` is the soft shadow cast on
        the BG (``cast_shadow``, 30% of composites) or None; the ground
        truth stays exactly ``alpha``.

        The object must be visible for the task to be solvable: when the
        local mean colours of FG and BG differ too little along the alpha
        boundary (``edge_contrast``), the FG is recoloured, up to three times,
        keeping the most visible version. 30% of FGs are recoloured anyway for
        variety; 25% of BGs are defocused, as behind a real subject. A share
        ``low_contrast`` of composites does the opposite: the FG's local colour
        is matched to the BG's (``match_colours``) and not checked for visibility.
        """
        fg, group = self._texture(S, rng)
        bg, _ = self._texture(S, rng, avoid=group)
        fg = fg.astype(np.float32)
        bg = bg.astype(np.float32)
        if rng.random() < 0.25:
            bg = cv2.GaussianBlur(bg, (0, 0), rng.uniform(1.0, 4.0))
        if rng.random() < 0.3:
            fg = recolour(fg, rng)
        camouflaged = self.low_contrast > 0.0 and rng.random() < self.low_contrast
        if camouflaged:
            fg = match_colours(fg, bg, rng)
        best, best_c = fg, edge_contrast(fg, bg, alpha)
        for _ in range(3):
            if camouflaged or best_c >= MIN_EDGE_CONTRAST:
                break
            cand = recolour(fg, rng)
            c = edge_contrast(cand, bg, alpha)
            if c > best_c:
                best, best_c = cand, c
        shadow = None
        if rng.random() < SHADOW_PROB:
            shadow = cast_shadow(alpha, rng)
            bg = bg * (1.0 - rng.uniform(0.3, 0.7) * shadow[..., None])
        a = alpha[..., None]
        img = np.clip(a * best + (1.0 - a) * bg, 0, 255).astype(np.uint8)
        return img, alpha, shadow

    # -- memory -------------------------------------------------------------

    def estimated_cache_bytes(self) -> int:
        """Bytes the cache would hold with every image decoded (from file headers only)."""
        total = 0

        def capped(wh, cap):
            f = min(1.0, cap / max(wh))
            return round(wh[0] * f) * round(wh[1] * f)

        for name, pairs in self.items.items():
            for _, mp in pairs:
                total += 4 * capped(_image_size(mp), REAL_LONG_SIDE)  # RGB + mask
        for entry in self.photos:
            if entry[0] == "file":
                total += 3 * capped(_image_size(entry[1]), CACHE_LONG_SIDE)
        if "alpha-composite" in self.sets:
            total += sum(capped(_image_size(p), ALPHA_LONG_SIDE) for p in self.alphas)
        return total


# --------------------------------------------------------------------------
# loading


class CropBatchSampler(torch.utils.data.Sampler):
    """Batches of keys ``(index, size, seed)`` with one crop size per batch.

    Batch ``b`` depends only on (seed, b): its size is a multiple of 32 in
    ``sizes``, its indices are uniform over the dataset's virtual length, and
    each sample gets its own seed. ``num_batches=None`` is an endless stream.
    """

    def __init__(self, length: int, batch_size: int, sizes=(224, 448), seed: int = 0,
                 num_batches: Optional[int] = None):
        lo, hi = int(sizes[0]), int(sizes[1])
        self.sizes = list(range(int(math.ceil(lo / 32)) * 32, hi + 1, 32)) or [max(32, lo // 32 * 32)]
        self.length, self.batch_size, self.seed, self.num_batches = length, batch_size, seed, num_batches

    def batch(self, b: int) -> List[Tuple[int, int, int]]:
        rng = np.random.default_rng([int(self.seed) & 0xFFFFFFFFFFFF, b])
        size = self.sizes[int(rng.integers(len(self.sizes)))]
        idx = rng.integers(0, self.length, self.batch_size)
        seeds = rng.integers(0, 2 ** 62, self.batch_size)
        return [(int(i), size, int(s)) for i, s in zip(idx, seeds)]

    def __iter__(self) -> Iterator[List[Tuple[int, int, int]]]:
        b = 0
        while self.num_batches is None or b < self.num_batches:
            yield self.batch(b)
            b += 1

    def __len__(self) -> int:
        if self.num_batches is None:
            raise TypeError("endless sampler has no length")
        return self.num_batches


def _worker_init(_worker_id: int) -> None:
    """Loader workers share the machine with training: one thread each."""
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def _collate(samples: Sequence[dict]) -> dict:
    out = {k: torch.stack([s[k] for s in samples]) for k in ("image", "gt", "coarse")}
    out["set"] = [s["set"] for s in samples]
    return out


def make_loader(dataset: RefineDataset, batch_size: int, sizes=(224, 448), seed: int = 0,
                num_workers: int = 0, num_batches: Optional[int] = None) -> torch.utils.data.DataLoader:
    """A DataLoader of batches of one random crop size each (endless unless ``num_batches``)."""
    sampler = CropBatchSampler(len(dataset), batch_size, sizes, seed, num_batches)
    kw = {}
    if num_workers > 0:
        kw = {"persistent_workers": True, "worker_init_fn": _worker_init, "prefetch_factor": 2}
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers,
                                       collate_fn=_collate, pin_memory=torch.cuda.is_available(), **kw)


# --------------------------------------------------------------------------
# self-check


def _preview(samples: List[dict], path: Path, tile: int = 160) -> None:
    """Rows of (image | image + gt contour | gt | coarse), two samples per row."""
    tiles = []
    for s in samples:
        img = (s["image"].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        gt = (s["gt"][0].numpy() * 255).astype(np.uint8)
        co = (s["coarse"][0].numpy() * 255).astype(np.uint8)
        over = img.copy()
        contours, _ = cv2.findContours((gt > 127).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(over, contours, -1, (255, 0, 0), max(1, img.shape[0] // 160))
        row = [cv2.resize(x, (tile, tile), interpolation=cv2.INTER_AREA) for x in
               (img, over, cv2.cvtColor(gt, cv2.COLOR_GRAY2RGB), cv2.cvtColor(co, cv2.COLOR_GRAY2RGB))]
        cv2.putText(row[0], f"{s['set']} {img.shape[0]}", (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38,
                    (255, 255, 0), 1, cv2.LINE_AA)
        block = np.concatenate(row, 1)
        block[:, -1] = 255
        block[-1, :] = 255
        tiles.append(block)
    if len(tiles) % 2:
        tiles.append(np.zeros_like(tiles[0]))
    grid = np.concatenate([np.concatenate(tiles[i:i + 2], 1) for i in range(0, len(tiles), 2)], 0)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))


def _self_check(argv=None) -> None:
    p = argparse.ArgumentParser(description="Self-check of the training data pipeline.")
    p.add_argument("--out", default="/tmp/data_preview")
    p.add_argument("--data", default=None, help="data root (default ../shared/data)")
    p.add_argument("--sets", default=",".join(REAL_SETS + ("composite",)))
    p.add_argument("--n", type=int, default=200, help="samples to time")
    p.add_argument("--size", type=int, default=320)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--low-contrast", type=float, default=0.0,
                   help="share of composites with colour-matched object and background (train.py's option)")
    p.add_argument("--distractors", type=float, default=0.0,
                   help="share of samples with a soft image-aligned false positive (train.py's option)")
    args = p.parse_args(argv)
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    ds = RefineDataset(args.data, sets=args.sets, low_contrast=args.low_contrast,
                      distractors=args.distractors)
    print(f"sets: {', '.join(f'{n} [{lo},{hi})' for n, lo, hi in ds.ranges)}")
    print(f"real items: {', '.join(f'{k} {len(v)}' for k, v in ds.items.items())}; "
          f"texture photos {len(ds.photos)}; alpha mattes {len(ds.alphas)}")
    print(f"cache if fully decoded: {ds.estimated_cache_bytes() / 2 ** 30:.2f} GiB per process "
          f"(cap {ds.cache_cap / 2 ** 30:.1f} GiB)")

    sampler = CropBatchSampler(len(ds), args.n, (args.size, args.size), args.seed, 1)
    keys = sampler.batch(0)
    stats: Dict[str, List[float]] = {}
    # cold: decodes every image it meets; warm: the same keys with everything
    # cached, which is the steady state of a long training run
    per_set: Dict[str, List[float]] = {}
    for label in ("cold (decoding)", "warm (cached)"):
        t = time.perf_counter()
        samples = []
        for k in keys:
            t1 = time.perf_counter()
            samples.append(ds[k])
            per_set.setdefault(samples[-1]["set"], []).append(time.perf_counter() - t1)
        dt = time.perf_counter() - t
        print(f"{label}: {len(keys) / dt:.1f} samples/s at S={args.size} (one process, one thread)")
        if label.startswith("cold"):
            per_set.clear()
    print("warm ms/sample: " + ", ".join(f"{n} {1000 * np.mean(v):.1f}" for n, v in sorted(per_set.items())))
    for s in samples:
        S = args.size
        assert s["image"].shape == (3, S, S) and s["gt"].shape == (1, S, S) and s["coarse"].shape == (1, S, S)
        for k in ("image", "gt", "coarse"):
            v = s[k]
            assert v.dtype == torch.float32 and float(v.min()) >= 0.0 and float(v.max()) <= 1.0, k
        assert set(torch.unique(s["gt"]).tolist()) <= {0.0, 1.0}
        fg = float(s["gt"].mean())
        inter = float(((s["gt"] > 0.5) & (s["coarse"] > 0.5)).sum())
        union = float(((s["gt"] > 0.5) | (s["coarse"] > 0.5)).sum())
        st = stats.setdefault(s["set"], [])
        st.append((0.0 < fg < 1.0, fg, inter / union if union else 1.0))
    both = [b for st in stats.values() for b, _, _ in st]
    print(f"crops with both classes: {np.mean(both):.1%} overall")
    for name, st in sorted(stats.items()):
        a = np.array(st, np.float64)
        print(f"  {name:16s} n={len(st):3d} both {a[:, 0].mean():6.1%}  fg {a[:, 1].mean():5.1%}  "
              f"coarse IoU mean {a[:, 2].mean():.3f} (min {a[:, 2].min():.3f})")
    assert np.mean(both) >= 0.8, "fewer than 80% of crops hold both classes"

    k = keys[0]
    a, b = ds[k], ds[k]
    assert all(torch.equal(a[x], b[x]) for x in ("image", "gt", "coarse")), "samples are not deterministic"
    for name in ds.sets:  # every set yields a sample
        lo = next(l for n, l, _ in ds.ranges if n == name)
        assert ds[(lo, 224, 1)]["set"] == name

    loader = make_loader(ds, 4, sizes=(224, 448), seed=3, num_workers=0, num_batches=3)
    shapes = [tuple(bt["image"].shape) for bt in loader]
    again = [tuple(bt["image"].shape) for bt in make_loader(ds, 4, sizes=(224, 448), seed=3, num_batches=3)]
    assert shapes == again and all(s[2] % 32 == 0 and 224 <= s[2] <= 448 for s in shapes), shapes
    print(f"loader batches: {shapes}")

    rng = np.random.default_rng(args.seed)
    pick = [keys[i] for i in rng.choice(len(keys), 16, replace=False)]
    # make sure every set shows up in the preview
    for j, name in enumerate(ds.sets):
        lo, hi = next((l, h) for n, l, h in ds.ranges if n == name)
        pick[j] = (int(rng.integers(lo, hi)), args.size, j)
    _preview([ds[k] for k in pick], out / "preview.png")
    print(f"preview: {out / 'preview.png'}")
    print(f"cache now holds {ds._cache_bytes / 2 ** 20:.0f} MiB")
    print("ok")


if __name__ == "__main__":
    _self_check()
