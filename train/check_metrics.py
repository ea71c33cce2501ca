"""Checks train/metrics.py against OpenCV and writes the fixtures the TS tests use.

    /usr/bin/python3 train/check_metrics.py [--data ../shared/data/eval]

Writes (small, no image data):
* tests/fixtures/ellipse_kernels.json: cv2.getStructuringElement(MORPH_ELLIPSE)
  for sizes 3..67 (odd, the mBA kernels of radius 1..33) and a few even sizes,
  one string of 0/1 per row; src/metrics/mba.ts must reproduce them exactly.
* tests/fixtures/metrics_crosscheck.json: IoU and mBA counts computed here with
  OpenCV for a few real (coarse-isnet thresholded, ground truth) pairs. Only
  paths relative to the data root and SHA-256 digests are stored; the TS test
  reads the PNGs from ../shared/data when present.

Also asserts, without writing anything: the kernel formula used by the TS code
equals OpenCV for every size 1..1000; the ellipses are nested (the TS fast
path relies on it); OpenCV's default borders behave as documented; and the
boundary region equals CascadePSP's morphologyEx(MORPH_GRADIENT) when the
ground truth has no ignore pixel.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import metrics as M  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"

# (set, name, ignore value): GrabCut with its ignore band, a soft P3M matte,
# DAVIS, and Carvana at 1918x1280.
CASES = [
    ("grabcut", "124080", 128),
    ("grabcut", "person1", 128),
    ("p3m", "p_07141906", None),
    ("davis", "breakdance_00000", None),
    ("carvana", "0d3adbbc9a8b_01", None),
    ("carvana", "0d3adbbc9a8b_05", None),
]


def formula_kernel(size: int) -> np.ndarray:
    """The formula src/metrics/mba.ts implements (ellipseKernel)."""
    r = c = size // 2
    inv_r2 = 1.0 / (r * r) if r > 0 else 0.0
    k = np.zeros((size, size), np.uint8)
    for i in range(size):
        dy = i - r
        if abs(dy) <= r:
            dx = int(np.rint(c * math.sqrt((r * r - dy * dy) * inv_r2)))  # rint: half to even
            k[i, max(c - dx, 0):min(c + dx + 1, size)] = 1
    return k


def check_kernel_formula(max_size: int = 1000) -> None:
    bad = [s for s in range(1, max_size + 1)
           if not np.array_equal(formula_kernel(s), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (s, s)))]
    assert not bad, f"kernel formula differs from OpenCV for sizes {bad[:10]}"
    print(f"kernel formula == cv2 MORPH_ELLIPSE for all sizes 1..{max_size}")


def check_nested(max_radius: int = 500) -> None:
    prev = M.ellipse_kernel(0)
    for r in range(1, max_radius + 1):
        k = M.ellipse_kernel(r)
        assert np.all(k[1:-1, 1:-1] >= prev), f"disk {r - 1} not inside disk {r}"
        prev = k
    print(f"disks nested for radii 0..{max_radius}")


def check_borders() -> None:
    """Outside pixels never change dilate/erode (the TS code assumes so)."""
    k = M.ellipse_kernel(2)
    full = np.ones((7, 9), np.uint8)
    assert np.array_equal(cv2.erode(full, k), full), "erode must treat the outside as foreground"
    empty = np.zeros((7, 9), np.uint8)
    assert np.array_equal(cv2.dilate(empty, k), empty), "dilate must treat the outside as background"
    print("OpenCV default borders: outside is neutral for dilate and erode")


def check_gradient_equivalence(gt: np.ndarray) -> None:
    """Without ignore pixels our region is CascadePSP's MORPH_GRADIENT > 0."""
    fg, valid = M.split_gt(gt, None)
    h, w = gt.shape
    for r in M.mba_radii(w, h):
        ours = M.boundary_region(fg, valid, r)
        theirs = cv2.morphologyEx(fg.astype(np.uint8), cv2.MORPH_GRADIENT, M.ellipse_kernel(r)) > 0
        assert np.array_equal(ours, theirs), f"region differs from MORPH_GRADIENT at radius {r}"


def rows(*lines: str) -> np.ndarray:
    """'#' = 255, '?' = 128, '.' = 0 (as the TS tests' mask())."""
    return np.array([[255 if ch == "#" else 128 if ch == "?" else 0 for ch in ln] for ln in lines], np.uint8)


def check_hand_cases() -> None:
    """The hand-computed cases of tests/metrics_test.ts, recomputed with OpenCV."""
    gt, pred = rows("....", ".##.", ".##.", "...."), rows("....", ".###", ".###", "....")
    assert M.iou_counts(pred, gt) == (4, 6)
    assert M.boundary_counts(pred, gt)[0] == {"radius": 1, "region": 12, "correct": 10}
    gt, pred = rows("..?###."), rows(".###.##")
    assert M.iou_counts(pred, gt, 128) == (2, 5)
    assert M.boundary_counts(pred, gt, 128)[0] == {"radius": 1, "region": 4, "correct": 2}
    line = np.zeros((1, 700), np.uint8)
    line[0, 350] = 255
    assert [c["region"] for c in M.boundary_counts(np.zeros_like(line), line)] == [3, 3, 3, 3, 5]
    assert [c["region"] for c in M.boundary_counts(np.zeros_like(line.T), line.T)] == [3, 3, 3, 3, 5]
    dot = np.zeros((20, 700), np.uint8)
    dot[10, 300] = 255
    assert [c["region"] for c in M.boundary_counts(np.zeros_like(dot), dot)] == [5, 5, 5, 5, 17]
    gt = rows(*["#####....."] * 4)
    pred = rows(*["######...."] * 4)
    assert M.boundary_counts(pred, gt)[0] == {"radius": 1, "region": 8, "correct": 4}
    empty, full = np.zeros((3, 5), np.uint8), np.full((3, 5), 255, np.uint8)
    assert M.iou(empty, empty) == 1.0 and M.mba(empty, empty) == 1.0 and M.mba(empty, full) == 1.0
    print("hand-computed cases of tests/metrics_test.ts hold with OpenCV")


def write_kernels() -> Path:
    sizes = list(range(3, 68, 2)) + [2, 4, 6, 8, 10, 16]
    kernels = {}
    for s in sizes:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (s, s))
        kernels[str(s)] = ["".join(str(int(v)) for v in row) for row in k]
    out = FIXTURES / "ellipse_kernels.json"
    payload = {"generator": "train/check_metrics.py", "opencv": cv2.__version__,
               "what": "cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)), rows of 0/1",
               "kernels": kernels}
    out.write_text(json.dumps(payload, indent=1) + "\n")
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def crosscheck_case(data: Path, set_name: str, name: str, ignore) -> dict:
    gt_path = data / set_name / "gt" / f"{name}.png"
    pred_path = data / set_name / "coarse-isnet" / f"{name}.png"
    gt = np.array(Image.open(gt_path).convert("L"))
    pred = np.array(Image.open(pred_path).convert("L"))
    if ignore is None:
        check_gradient_equivalence(gt)
    inter, union = M.iou_counts(pred, gt, ignore)
    counts = M.boundary_counts(pred, gt, ignore)
    h, w = gt.shape
    return {
        "set": set_name, "name": name,
        "gt": f"{set_name}/gt/{name}.png", "pred": f"{set_name}/coarse-isnet/{name}.png",
        "gt_sha256": sha256(gt_path), "pred_sha256": sha256(pred_path),
        "ignoreValue": ignore, "width": w, "height": h,
        "intersection": inter, "union": union, "iou": M.iou_from_counts(inter, union),
        "radii": [c["radius"] for c in counts], "region": [c["region"] for c in counts],
        "correct": [c["correct"] for c in counts], "mba": M.mba_from_counts(counts),
    }


def write_crosscheck(data: Path) -> Path:
    cases = [crosscheck_case(data, *c) for c in CASES]
    for c in cases:
        print(f"  {c['set']:8s} {c['name']:18s} {c['width']}x{c['height']} radii {c['radii']} "
              f"IoU {c['iou']:.6f} mBA {c['mba']:.6f}")
    out = FIXTURES / "metrics_crosscheck.json"
    payload = {"generator": "train/check_metrics.py", "opencv": cv2.__version__,
               "data_root": "../shared/data/eval",
               "what": "pred = coarse-isnet PNG, gt = gt PNG; both binarised at >= 128; "
                       "counts from train/metrics.py (OpenCV)",
               "cases": cases}
    out.write_text(json.dumps(payload, indent=1) + "\n")
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "eval"))
    args = p.parse_args(argv)
    cv2.setNumThreads(1)
    check_kernel_formula()
    check_nested()
    check_borders()
    check_hand_cases()
    print("wrote", write_kernels().relative_to(REPO))
    data = Path(args.data)
    if not data.is_dir():
        sys.exit(f"no data at {data}: the crosscheck fixture was not written")
    print("wrote", write_crosscheck(data).relative_to(REPO))


if __name__ == "__main__":
    main()
