"""IoU and mBA: the OpenCV reference of crispmask's evaluation metrics.

src/metrics/ (TypeScript) implements exactly the same definitions and is
checked against this module (train/check_metrics.py writes the fixtures).
Every convention is spelled out here because the two must agree to 1e-6:

Binarisation
    An 8-bit mask is foreground where value >= 128; a probability map where
    p >= 0.5. The two agree: 8-bit v >= 128 <=> v/255 >= 0.5, and an engine
    output quantised as round(255 p) is >= 128 exactly when p >= 0.5.
    (CascadePSP's script uses v > 128; the two differ only on pixels whose
    value is exactly 128, which occur only in soft masks.)

Ignore pixels
    Where the ground truth has an ignore value (GrabCut: 128), those pixels
    count for neither IoU nor mBA. The ignore test comes before binarisation.

IoU
    Per image: intersection and union of the binary prediction and ground
    truth over the non-ignored pixels. Dataset IoU = sum of intersections /
    sum of unions (the CRM/CascadePSP figure); mean IoU = mean of per-image
    IoU. An empty union (both masks empty) counts as IoU = 1.

mBA (CascadePSP's mean boundary accuracy)
    For an image of width w and height h, with R = (w + h) / 300 (a float),
    the 5 radii are r_i = 1 + trunc((R - 1) / 5 * i) for i = 0..4, computed
    in double precision in exactly this order. This is CascadePSP's own
    formula (util/compute_boundary_acc.py), *not* linspace(1, R, 5): the
    largest radius stays below R, and all radii are 1 when R < 1.
    For each radius, the boundary region is the morphological gradient
    (dilation minus erosion) of the binary ground truth with OpenCV's
    MORPH_ELLIPSE kernel of size (2r+1)x(2r+1), OpenCV's default borders
    (pixels outside the image never change a dilation or an erosion).
    Accuracy = fraction of region pixels where prediction == ground truth.
    mBA = mean of the 5 accuracies, in [0, 1] (x100 when reported as a
    percentage). An empty region gives accuracy 1 for that radius
    (CascadePSP would divide by zero).
    With ignore pixels, "foreground" is ambiguous inside the ignore band, so
    the region is dilate(fg | ignore) minus erode(fg), ignore pixels removed:
    the pixels within the disk of both a possibly-foreground and a
    not-surely-foreground pixel. It reduces to the plain gradient when there
    is no ignore pixel, and covers both sides of GrabCut's unknown band.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

FG_THRESHOLD_8BIT = 128
FG_THRESHOLD_PROB = 0.5
N_RADII = 5


# --------------------------------------------------------------------------
# binarisation


def binarize(mask: np.ndarray) -> np.ndarray:
    """Boolean foreground of a mask: bool as is, uint8 >= 128, float >= 0.5."""
    mask = np.asarray(mask)
    if mask.dtype == np.bool_:
        return mask
    if mask.dtype == np.uint8:
        return mask >= FG_THRESHOLD_8BIT
    if np.issubdtype(mask.dtype, np.floating):
        return mask >= FG_THRESHOLD_PROB
    raise TypeError(f"unsupported mask dtype {mask.dtype}: use bool, uint8 or float")


def split_gt(gt: np.ndarray, ignore_value: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """8-bit ground truth -> (foreground, valid); valid is False on ignore pixels."""
    gt = np.asarray(gt)
    if gt.dtype != np.uint8:
        raise TypeError(f"ground truth must be uint8, got {gt.dtype}")
    valid = np.ones(gt.shape, bool) if ignore_value is None else gt != ignore_value
    return (gt >= FG_THRESHOLD_8BIT) & valid, valid


def _check_shapes(pred: np.ndarray, gt: np.ndarray) -> None:
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in size")


# --------------------------------------------------------------------------
# IoU


def iou_counts(pred: np.ndarray, gt: np.ndarray, ignore_value: Optional[int] = None) -> Tuple[int, int]:
    """(intersection, union) pixel counts over the non-ignored pixels."""
    _check_shapes(np.asarray(pred), np.asarray(gt))
    p = binarize(pred)
    fg, valid = split_gt(gt, ignore_value)
    p = p & valid
    return int(np.count_nonzero(p & fg)), int(np.count_nonzero(p | fg))


def missed_extra_counts(pred: np.ndarray, gt: np.ndarray, ignore_value: Optional[int] = None
                        ) -> Tuple[int, int]:
    """(missed, extra): ground-truth foreground the prediction left out, and
    predicted foreground outside the ground truth, over the non-ignored pixels;
    together they are union - intersection."""
    _check_shapes(np.asarray(pred), np.asarray(gt))
    p = binarize(pred)
    fg, valid = split_gt(gt, ignore_value)
    p = p & valid
    return int(np.count_nonzero(fg & ~p)), int(np.count_nonzero(p & ~fg))


def iou_from_counts(intersection: int, union: int) -> float:
    """IoU, with 1 for an empty union (both masks empty: a perfect answer)."""
    return 1.0 if union == 0 else intersection / union


def iou(pred: np.ndarray, gt: np.ndarray, ignore_value: Optional[int] = None) -> float:
    return iou_from_counts(*iou_counts(pred, gt, ignore_value))


# --------------------------------------------------------------------------
# mBA


def mba_radii(width: int, height: int) -> List[int]:
    """CascadePSP's 5 radii: 1 + trunc((R - 1) / 5 * i), R = (w + h) / 300."""
    max_r = (width + height) / 300
    # int() truncates toward zero, as in CascadePSP (and Math.trunc in TS)
    return [1 + int((max_r - 1) / N_RADII * i) for i in range(N_RADII)]


def ellipse_kernel(radius: int) -> np.ndarray:
    """OpenCV's elliptical disk of size (2r+1) x (2r+1)."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def boundary_region(fg: np.ndarray, valid: np.ndarray, radius: int) -> np.ndarray:
    """dilate(fg | ignore) minus erode(fg), ignore pixels removed (see module doc).

    cv2's default border value for dilate/erode is the identity of max/min,
    so pixels outside the image never contribute (as CascadePSP's
    morphologyEx(MORPH_GRADIENT) call).
    """
    k = ellipse_kernel(radius)
    possibly_fg = (fg | ~valid).astype(np.uint8)
    dil = cv2.dilate(possibly_fg, k) > 0
    ero = cv2.erode(fg.astype(np.uint8), k) > 0
    return dil & ~ero & valid


def boundary_counts(pred: np.ndarray, gt: np.ndarray, ignore_value: Optional[int] = None
                    ) -> List[Dict[str, int]]:
    """Per radius: {radius, region (pixel count), correct (pixels where pred == gt)}."""
    _check_shapes(np.asarray(pred), np.asarray(gt))
    p = binarize(pred)
    fg, valid = split_gt(gt, ignore_value)
    h, w = fg.shape
    out = []
    for r in mba_radii(w, h):
        region = boundary_region(fg, valid, r)
        correct = np.count_nonzero((p == fg) & region)
        out.append({"radius": r, "region": int(np.count_nonzero(region)), "correct": int(correct)})
    return out


def mba_from_counts(counts: List[Dict[str, int]]) -> float:
    """Mean over radii of correct / region, an empty region counting as 1."""
    accs = [1.0 if c["region"] == 0 else c["correct"] / c["region"] for c in counts]
    return sum(accs) / len(accs)


def mba(pred: np.ndarray, gt: np.ndarray, ignore_value: Optional[int] = None) -> float:
    """Mean boundary accuracy in [0, 1]."""
    return mba_from_counts(boundary_counts(pred, gt, ignore_value))


# --------------------------------------------------------------------------
# dataset accumulator


def _mean(xs: List[float]) -> float:
    """Plain left-to-right mean, the order src/metrics/mod.ts uses; NaN when empty."""
    return sum(xs) / len(xs) if xs else float("nan")


@dataclass
class MaskStats:
    """Accumulates per-image figures into dataset IoU, mean IoU and mean mBA."""

    intersection: int = 0
    union: int = 0
    images: List[Dict] = field(default_factory=list)

    def add(self, pred: np.ndarray, gt: np.ndarray, ignore_value: Optional[int] = None,
            name: str = "") -> Dict:
        i, u = iou_counts(pred, gt, ignore_value)
        missed, extra = missed_extra_counts(pred, gt, ignore_value)
        row = {"name": name, "intersection": i, "union": u, "iou": iou_from_counts(i, u),
               # the IoU lost, by direction, as shares of the union (iou + missed + extra = 1)
               "missed": missed / u if u else 0.0, "extra": extra / u if u else 0.0,
               "mba": mba(pred, gt, ignore_value)}
        self.intersection += i
        self.union += u
        self.images.append(row)
        return row

    @property
    def count(self) -> int:
        return len(self.images)

    @property
    def dataset_iou(self) -> float:
        return iou_from_counts(self.intersection, self.union)

    @property
    def mean_iou(self) -> float:
        return _mean([r["iou"] for r in self.images])

    @property
    def mean_mba(self) -> float:
        return _mean([r["mba"] for r in self.images])

    def summary(self) -> Dict:
        return {"images": self.count, "dataset_iou": self.dataset_iou, "mean_iou": self.mean_iou,
                "missed": _mean([r["missed"] for r in self.images]),
                "extra": _mean([r["extra"] for r in self.images]), "mba": self.mean_mba}
