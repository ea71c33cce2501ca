"""Deterministic synthetic coarse masks for evaluation.

The evaluation sets ship one real coarse kind (``coarse-isnet``); these kinds
are synthesised from the ground truth when a set has no ``coarse-<kind>/``
folder. They are pure functions of the ground truth (and, for ``perturbed``,
of the image name), so every run and every machine scores the same inputs.
They are deliberately separate from train/coarse.py (the training
generators): evaluation inputs must not change when training augmentations do.

Kinds (all return uint8 HxW masks, 0 or 255, at the ground truth's size):

* ``lowres8`` / ``lowres32``: the ground truth's alpha (gt / 255, so an
  ignore value 128 counts as one half) area-downsampled by 8 / 32
  (cv2.INTER_AREA, size max(1, round(side / factor))), bilinearly upsampled
  back (cv2.INTER_LINEAR), thresholded at >= 0.5. The masks a small
  segmentation network gives.
* ``perturbed``: CascadePSP/CRM-style corruption. Starting from the binary
  ground truth (>= 128), random sub-rectangles centred on boundary pixels are
  dilated or eroded with an elliptical disk until the IoU with the ground
  truth falls into target +- 0.02 (target 0.85). Seeded by the image name
  through SHA-256 (Python's hash() is salted per process).
"""
from __future__ import annotations

import hashlib
from typing import Callable, Dict, Optional, Tuple

import cv2
import numpy as np

KINDS = ("lowres8", "lowres32", "perturbed")
PERTURB_TARGET_IOU = 0.85
PERTURB_TOLERANCE = 0.02
PERTURB_MAX_STEPS = 400


def seed_for(name: str, kind: str) -> int:
    """A stable 64-bit seed from the image name and the kind."""
    return int.from_bytes(hashlib.sha256(f"{kind}:{name}".encode()).digest()[:8], "little")


def _binary(gt: np.ndarray) -> np.ndarray:
    return (gt >= 128).astype(np.uint8)


# --------------------------------------------------------------------------
# low resolution


def lowres(gt: np.ndarray, factor: int) -> np.ndarray:
    """Area-downsample the alpha by ``factor``, upsample bilinearly, threshold at 0.5."""
    h, w = gt.shape
    alpha = gt.astype(np.float32) / 255.0
    small = cv2.resize(alpha, (max(1, round(w / factor)), max(1, round(h / factor))),
                       interpolation=cv2.INTER_AREA)
    up = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.where(up >= 0.5, 255, 0).astype(np.uint8)


# --------------------------------------------------------------------------
# perturbed


def _boundary_pixels(m: np.ndarray) -> np.ndarray:
    """(y, x) of pixels on the inner or outer edge of a {0,1} mask."""
    k = np.ones((3, 3), np.uint8)
    edge = cv2.dilate(m, k) != cv2.erode(m, k)
    return np.argwhere(edge)


def _counts(a: np.ndarray, b: np.ndarray) -> Tuple[int, int]:
    return int(np.count_nonzero(a & b)), int(np.count_nonzero(a | b))


def _perturb_step(m: np.ndarray, rng: np.random.Generator, scale: float
                  ) -> Optional[Tuple[slice, slice, np.ndarray]]:
    """One random dilation or erosion of a sub-rectangle; None if no boundary.

    Returns the rectangle and its new content; the morphology runs on a crop
    with a margin of the disk radius so the rectangle's content is exact.
    """
    pts = _boundary_pixels(m)
    if len(pts) == 0:
        return None
    h, w = m.shape
    cy, cx = pts[rng.integers(len(pts))]
    rh = max(3, int(h * rng.uniform(0.05, 0.35)))
    rw = max(3, int(w * rng.uniform(0.05, 0.35)))
    y0, x0 = max(0, cy - rh // 2), max(0, cx - rw // 2)
    y1, x1 = min(h, y0 + rh), min(w, x0 + rw)
    radius = max(1, int(round(scale * rng.uniform(0.3, 1.0))))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    py0, px0 = max(0, y0 - radius), max(0, x0 - radius)
    py1, px1 = min(h, y1 + radius), min(w, x1 + radius)
    crop = m[py0:py1, px0:px1]
    op = cv2.dilate if rng.random() < 0.5 else cv2.erode
    new = op(crop, k)[y0 - py0:y1 - py0, x0 - px0:x1 - px0]
    return slice(y0, y1), slice(x0, x1), new


def perturbed(gt: np.ndarray, name: str, target_iou: float = PERTURB_TARGET_IOU) -> np.ndarray:
    """Random dilate/erode of boundary sub-rectangles until IoU ~ target."""
    fg = _binary(gt)
    m = fg.copy()
    rng = np.random.default_rng(seed_for(name, "perturbed"))
    inter, union = _counts(m, fg)
    h, w = fg.shape
    scale = 0.03 * (h + w) / 2  # disk radius scale: 3% of the mean side
    lo, hi = target_iou - PERTURB_TOLERANCE, target_iou + PERTURB_TOLERANCE
    for _ in range(PERTURB_MAX_STEPS):
        if union == 0 or inter / union <= hi:
            break
        step = _perturb_step(m, rng, scale)
        if step is None:
            break
        ys, xs, new = step
        old = m[ys, xs]
        g = fg[ys, xs]
        oi, ou = _counts(old, g)
        ni, nu = _counts(new, g)
        ti, tu = inter - oi + ni, union - ou + nu
        if tu > 0 and ti / tu < lo:
            scale = max(1.0, scale * 0.7)  # overshot: smaller steps from now on
            continue
        m[ys, xs] = new
        inter, union = ti, tu
    return m * np.uint8(255)


# --------------------------------------------------------------------------


GENERATORS: Dict[str, Callable[[np.ndarray, str], np.ndarray]] = {
    "lowres8": lambda gt, name: lowres(gt, 8),
    "lowres32": lambda gt, name: lowres(gt, 32),
    "perturbed": perturbed,
}


def synthesize(kind: str, gt: np.ndarray, name: str) -> np.ndarray:
    """The ``kind`` coarse mask (uint8 0/255) for ground truth ``gt`` of image ``name``."""
    if kind not in GENERATORS:
        raise KeyError(f"no synthetic coarse kind {kind!r}; known: {', '.join(KINDS)}")
    if gt.dtype != np.uint8 or gt.ndim != 2:
        raise TypeError("gt must be a uint8 HxW mask")
    return GENERATORS[kind](gt, name)
