"""Coarse-mask generators: turn a ground-truth mask into a plausible coarse input.

The refinement model only learns what its inputs teach it, so the coarse masks
seen in training must look like the masks it will be given at inference:

* real segmentation networks (ISNet/imgly, RMBG, SAM ...) whose ~1024 px soft
  masks are upsampled to the photo: blurred edges, slightly fat or thin;
* low-resolution masks (256-512 px) upsampled by a large factor: blocky or
  smooth, missing thin structures;
* in the later inference stages, the model's own previous prediction: good
  but a little soft and wobbly at the boundary;
* all of the above with semantic errors: missing parts and false positives.

Every generator is a pure function of (gt, rng): ``gt`` is a float32 HxW mask
in [0, 1] (binary or soft, e.g. an alpha matte) and ``rng`` a
``numpy.random.Generator``; the result is a float32 HxW mask in [0, 1].
Empty, full and border-touching masks are all valid inputs.
"""
from __future__ import annotations

import math
from typing import Tuple

import cv2
import numpy as np

__all__ = ["perturb", "lowres", "blurred", "wobble", "missing_extra", "distractor", "random_coarse"]


# --------------------------------------------------------------------------
# small helpers


def _binary(gt: np.ndarray) -> np.ndarray:
    """uint8 {0,1} version of a (soft) mask, thresholded at 0.5."""
    return (gt > 0.5).astype(np.uint8)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two {0,1} uint8 masks; two empty masks agree perfectly."""
    inter = int(np.count_nonzero(a & b))
    union = int(np.count_nonzero(a | b))
    return 1.0 if union == 0 else inter / union


def _bbox(m: np.ndarray):
    """(y0, x0, y1, x1) of the non-zero pixels (exclusive end), or None if empty."""
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(m.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _object_size(m: np.ndarray) -> float:
    """Geometric mean of the object's bounding-box sides (0 when empty).

    The scale of an error (blur width, kernel radius) must follow the object
    and not the crop, or small objects would be wiped out and big ones barely
    touched.
    """
    box = _bbox(m)
    if box is None:
        return 0.0
    return math.sqrt((box[2] - box[0]) * (box[3] - box[1]))


def _ellipse(rx: int, ry: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * rx + 1, 2 * ry + 1))


def _random_blob(h: int, w: int, cy: float, cx: float, radius: float, rng: np.random.Generator) -> np.ndarray:
    """A float32 {0,1} irregular blob (random star polygon or ellipse) of about ``radius``."""
    out = np.zeros((h, w), np.uint8)
    radius = max(1.0, radius)
    if rng.random() < 0.4:
        axes = (max(1, int(radius * rng.uniform(0.5, 1.0))), max(1, int(radius * rng.uniform(0.5, 1.0))))
        cv2.ellipse(out, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    else:
        n = int(rng.integers(5, 12))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = radius * rng.uniform(0.4, 1.0, n)
        pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1)
        cv2.fillPoly(out, [np.round(pts).astype(np.int32)], 1)
    return out.astype(np.float32)


# --------------------------------------------------------------------------
# generators


def perturb(gt: np.ndarray, rng: np.random.Generator, iou_range: Tuple[float, float] = (0.8, 1.0)) -> np.ndarray:
    """CascadePSP-style perturbation: local dilations/erosions, then polygon simplification.

    Random sub-rectangles around the object are dilated or eroded with
    elliptical kernels of random radii until the IoU with the ground truth
    falls to a target drawn from ``iou_range``; the contours are then
    simplified with a random tolerance and re-filled, which removes fine detail
    the way a coarse segmenter does. Binary output.
    """
    g = _binary(gt)
    h, w = g.shape
    box = _bbox(g)
    if box is None:
        return np.zeros((h, w), np.float32)
    if g.all():
        return np.ones((h, w), np.float32)  # no boundary to move inside the crop
    size = max(2.0, _object_size(g))
    target = rng.uniform(*iou_range)
    m = g.copy()
    y0, x0, y1, x1 = box
    bh, bw = y1 - y0, x1 - x0
    max_r = max(1, int(round(0.06 * size)))
    for _ in range(40):
        if _iou(m, g) <= target:
            break
        # a rectangle around some part of the object, clipped to the image
        rh = int(rng.uniform(0.2, 0.8) * bh) + 2
        rw = int(rng.uniform(0.2, 0.8) * bw) + 2
        ry = int(rng.integers(y0 - rh // 2, max(y0 - rh // 2 + 1, y1 - rh // 2)))
        rx = int(rng.integers(x0 - rw // 2, max(x0 - rw // 2 + 1, x1 - rw // 2)))
        ry0, rx0 = max(0, ry), max(0, rx)
        ry1, rx1 = min(h, ry + rh), min(w, rx + rw)
        if ry1 <= ry0 or rx1 <= rx0:
            continue
        kernel = _ellipse(int(rng.integers(1, max_r + 1)), int(rng.integers(1, max_r + 1)))
        pad = max(kernel.shape) // 2 + 1
        # operate on a padded window so the rectangle's inside sees its true neighbours
        py0, px0, py1, px1 = max(0, ry0 - pad), max(0, rx0 - pad), min(h, ry1 + pad), min(w, rx1 + pad)
        win = m[py0:py1, px0:px1]
        op = cv2.dilate if rng.random() < 0.5 else cv2.erode
        res = op(win, kernel)
        m[ry0:ry1, rx0:rx1] = res[ry0 - py0:ry1 - py0, rx0 - px0:rx1 - px0]
    return _simplify(m, rng, size)


def _simplify(m: np.ndarray, rng: np.random.Generator, size: float) -> np.ndarray:
    """Re-fill the contours after approxPolyDP with a random tolerance (binary float32)."""
    contours, _ = cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return m.astype(np.float32)
    eps = rng.uniform(0.3, max(0.6, 0.015 * size))
    polys = [cv2.approxPolyDP(c, eps, True) for c in contours]
    out = np.zeros_like(m)
    cv2.fillPoly(out, polys, 1)  # even-odd filling keeps the holes
    return out.astype(np.float32)


def lowres(gt: np.ndarray, rng: np.random.Generator, factor_range: Tuple[float, float] = (2, 32)) -> np.ndarray:
    """A mask seen at low resolution: area-downsample by a random factor, bilinear back.

    The factor is log-uniform in ``factor_range``. Factors down to 2 (4 until
    the seventh run) give nearly-right masks: a 1/8 mask of a 1920 px photo
    is a 1/4 mask at the first stage's 960 px, and the model must learn to
    leave such a boundary where it is. 30% of the small masks are thresholded
    before upsampling (stair-stepped when enlarged); half of the results are
    thresholded at 0.5 after it, half kept soft (a network's probabilities
    upsampled).
    """
    h, w = gt.shape
    f = math.exp(rng.uniform(math.log(factor_range[0]), math.log(factor_range[1])))
    sh, sw = max(1, int(round(h / f))), max(1, int(round(w / f)))
    small = cv2.resize(gt.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.3:
        small = (small > 0.5).astype(np.float32)  # a binary low-res mask, stair-stepped when enlarged
    up = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        up = (up > 0.5).astype(np.float32)
    return np.clip(up, 0.0, 1.0)


def blurred(gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A soft mask with blurred edges, like an upsampled network output.

    Gaussian sigma is 1-8% of the object size; 40% of the time the 0.5 level
    moves (gamma or shift), making the mask too fat or too thin.
    """
    g = gt.astype(np.float32)
    size = _object_size(_binary(g))
    if size == 0:
        return np.zeros_like(g)
    sigma = max(0.6, size * rng.uniform(0.01, 0.08))
    out = cv2.GaussianBlur(g, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
    if rng.random() < 0.4:
        if rng.random() < 0.5:
            out = np.power(np.clip(out, 0, 1), rng.uniform(0.4, 2.5))
        else:
            out = (out - 0.5) * rng.uniform(0.8, 2.0) + 0.5 + rng.uniform(-0.25, 0.25)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def wobble(gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A good but imperfect mask, like the model's own previous-stage prediction.

    The boundary is displaced by a smooth random field of a few pixels, then
    softened by a small blur; the mask stays close to the truth (IoU ~0.9+).
    """
    g = gt.astype(np.float32)
    h, w = g.shape
    size = _object_size(_binary(g))
    if size == 0:
        return np.zeros_like(g)
    amp = rng.uniform(0.5, max(1.0, 0.025 * size))
    cells = int(rng.integers(3, 9))
    field = rng.standard_normal((2, cells, cells)).astype(np.float32) * amp
    dx = cv2.resize(field[0], (w, h), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(field[1], (w, h), interpolation=cv2.INTER_CUBIC)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    out = cv2.remap(g, gx + dx, gy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    sigma = rng.uniform(0.5, 2.5)
    out = cv2.GaussianBlur(out, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
    if rng.random() < 0.25:
        out = (out > 0.5).astype(np.float32)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def missing_extra(gt: np.ndarray, rng: np.random.Generator, coarse: np.ndarray | None = None) -> np.ndarray:
    """Semantic errors on top of a coarse mask: erase a part of the object or add a false blob.

    ``coarse`` is the mask to damage (another generator's output); without it
    the ground truth itself is used. The blob is 8-30% of the object size;
    a false positive is placed near the object (centred just outside its
    boundary), where segmenters usually leak.
    """
    g = _binary(gt)
    base = (gt if coarse is None else coarse).astype(np.float32).copy()
    h, w = g.shape
    size = _object_size(g)
    if size == 0:
        return base
    radius = size * rng.uniform(0.08, 0.3)
    soft_edge = rng.random() < 0.5  # match soft coarse masks half of the time
    if rng.random() < 0.5:
        # missing part: a blob centred on an object pixel
        ys, xs = np.nonzero(g)
        i = int(rng.integers(len(ys)))
        blob = _random_blob(h, w, ys[i], xs[i], radius, rng)
        if soft_edge:
            blob = cv2.GaussianBlur(blob, (0, 0), max(0.5, radius * 0.1))
        base = base * (1.0 - blob)
    else:
        # false positive: a blob centred a little outside a boundary pixel
        edge = g - cv2.erode(g, _ellipse(1, 1), borderType=cv2.BORDER_CONSTANT, borderValue=0)
        ys, xs = np.nonzero(edge)
        if len(ys) == 0:
            return base
        i = int(rng.integers(len(ys)))
        ang = rng.uniform(0, 2 * np.pi)
        dist = radius * rng.uniform(0.3, 1.2)
        cy, cx = ys[i] + dist * math.sin(ang), xs[i] + dist * math.cos(ang)
        blob = _random_blob(h, w, cy, cx, radius, rng)
        if soft_edge:
            blob = cv2.GaussianBlur(blob, (0, 0), max(0.5, radius * 0.1))
        base = np.maximum(base, blob * rng.uniform(0.6, 1.0))
    return np.clip(base, 0.0, 1.0).astype(np.float32)


def distractor(coarse: np.ndarray, image: np.ndarray, gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A soft false positive that follows the photo, added to ``coarse``.

    Segmenters such as ISNet paint background structures that look like
    objects (lettering on a wall, a railing) at 0.2-0.6, and the refiner,
    seeing a mask aligned with image edges, made them solid (weights/
    MODEL_CARD.md: most Carvana and DAVIS ISNet IoU drops). ``missing_extra``'s
    blobs do not teach that: their shapes ignore the photo. Here the region is
    grown from a background pixel near the object over similar colours
    (Lab flood fill, tolerance 6-20), cut to a disk of 10-40% of the object
    size, and added at 0.2-0.6; the ground truth stays background there.
    ``image`` is the crop (H x W x 3, uint8 RGB); ``coarse`` is returned
    unchanged when no region of at least 16 pixels is found.
    """
    g = _binary(gt)
    h, w = g.shape
    size = _object_size(g)
    if size == 0:
        return coarse
    dist = cv2.distanceTransform((1 - g).astype(np.uint8), cv2.DIST_L2, 3)
    ys, xs = np.nonzero((dist > 2) & (dist < max(8.0, 0.6 * size)))
    if len(ys) == 0:
        return coarse
    i = int(rng.integers(len(ys)))
    lab = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB)
    tol = float(rng.uniform(6, 20))
    fill = np.zeros((h + 2, w + 2), np.uint8)
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (255 << 8)
    cv2.floodFill(lab, fill, (int(xs[i]), int(ys[i])), 0, (tol,) * 3, (tol,) * 3, flags)
    yy, xx = np.mgrid[0:h, 0:w]
    radius = size * rng.uniform(0.1, 0.4)
    region = (fill[1:-1, 1:-1] > 0) & ((yy - ys[i]) ** 2 + (xx - xs[i]) ** 2 <= radius ** 2) & (g == 0)
    if np.count_nonzero(region) < 16:
        return coarse
    soft = cv2.GaussianBlur(region.astype(np.float32), (0, 0), rng.uniform(0.5, 2.0))
    return np.maximum(coarse, soft * np.float32(rng.uniform(0.2, 0.6))).astype(np.float32)


# --------------------------------------------------------------------------
# the mix used in training

# Shares of each generator. perturb gives hard, polygonal, moderately wrong
# masks (the paper's recipe); lowres and blurred give what upsampled network
# masks look like; wobble stands for the model's own previous stage.
# lowres and wobble carry more weight since the third run: many of their
# masks are already nearly right, and the model must learn to leave a right
# boundary where it is instead of moving every edge it sees.
MIX = (("perturb", 0.25), ("lowres", 0.35), ("blurred", 0.15), ("wobble", 0.25))
MISSING_EXTRA_PROB = 0.2


def random_coarse(gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw a generator from ``MIX``; 20% of the time add semantic errors on top."""
    names = [n for n, _ in MIX]
    probs = np.array([p for _, p in MIX], np.float64)
    name = names[int(rng.choice(len(names), p=probs / probs.sum()))]
    out = globals()[name](gt, rng)
    if rng.random() < MISSING_EXTRA_PROB:
        out = missing_extra(gt, rng, coarse=out)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
