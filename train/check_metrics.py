"""Checks train/metrics.py against OpenCV and writes the fixtures the TS tests use.

    /usr/bin/python3 train/check_metrics.py [--data ../shared/data/eval]
    /usr/bin/python3 train/check_metrics.py --synthetic    # needs no data

Writes (small, no image data):
* tests/fixtures/ellipse_kernels.json: cv2.getStructuringElement(MORPH_ELLIPSE)
  for sizes 3..67 (odd, the mBA kernels of radius 1..33) and a few even sizes,
  one string of 0/1 per row; src/metrics/mba.ts must reproduce them exactly.
* tests/fixtures/metrics_crosscheck.json: IoU and mBA counts computed here with
  OpenCV for a few real (coarse-isnet thresholded, ground truth) pairs. Only
  paths relative to the data root and SHA-256 digests are stored; the TS test
  reads the PNGs from ../shared/data when present.

--synthetic writes instead (and only) tests/fixtures/metrics/*.png and
tests/fixtures/metrics_synthetic.json: a few synthetic, deterministic mask pairs
drawn here (our own content, ~50 KB of 8-bit greyscale PNG) and OpenCV's
figures for them, so the TS cross-check also runs where ../shared/data is
absent (CI). The pairs cover sizes with different mBA radii (all 1 up to
[1, 2, 4, 6, 8]), holes and islands, 1-pixel strokes, shapes cut by the image
border, soft 0..255 masks with exact 127/128 values, a GrabCut-style 128
ignore band, a one-row image and an empty ground truth.

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
    assert M.missed_extra_counts(pred, gt) == (0, 2) and M.missed_extra_counts(gt, pred) == (2, 0)
    assert M.boundary_counts(pred, gt)[0] == {"radius": 1, "region": 12, "correct": 10}
    gt, pred = rows("..?###."), rows(".###.##")
    assert M.iou_counts(pred, gt, 128) == (2, 5)
    assert M.missed_extra_counts(pred, gt, 128) == (1, 2)
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


def figures(pred: np.ndarray, gt: np.ndarray, ignore) -> dict:
    """OpenCV's IoU and mBA figures of one pair, as the fixtures record them."""
    if ignore is None:
        check_gradient_equivalence(gt)
    inter, union = M.iou_counts(pred, gt, ignore)
    counts = M.boundary_counts(pred, gt, ignore)
    h, w = gt.shape
    return {
        "ignoreValue": ignore, "width": w, "height": h,
        "intersection": inter, "union": union, "iou": M.iou_from_counts(inter, union),
        "radii": [c["radius"] for c in counts], "region": [c["region"] for c in counts],
        "correct": [c["correct"] for c in counts], "mba": M.mba_from_counts(counts),
    }


def crosscheck_case(data: Path, set_name: str, name: str, ignore) -> dict:
    gt_path = data / set_name / "gt" / f"{name}.png"
    pred_path = data / set_name / "coarse-isnet" / f"{name}.png"
    gt = np.array(Image.open(gt_path).convert("L"))
    pred = np.array(Image.open(pred_path).convert("L"))
    return {
        "set": set_name, "name": name,
        "gt": f"{set_name}/gt/{name}.png", "pred": f"{set_name}/coarse-isnet/{name}.png",
        "gt_sha256": sha256(gt_path), "pred_sha256": sha256(pred_path),
        **figures(pred, gt, ignore),
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


# --------------------------------------------------------------------------
# synthetic pairs (--synthetic): our own drawings, committed as small PNGs


def _soft(binary: np.ndarray, scale: int = 4) -> np.ndarray:
    """Anti-aliased 0..255 mask: a binary mask drawn `scale` times larger, area-averaged."""
    h, w = binary.shape[0] // scale, binary.shape[1] // scale
    return cv2.resize(binary, (w, h), interpolation=cv2.INTER_AREA)


def _jitter(pts, rng, amount: float) -> np.ndarray:
    pts = np.asarray(pts, np.float64)
    return np.rint(pts + rng.uniform(-amount, amount, pts.shape)).astype(np.int32)


def _star(cx, cy, r_out, r_in, n, phase=0.0):
    t = phase + np.arange(2 * n) * math.pi / n
    r = np.where(np.arange(2 * n) % 2 == 0, r_out, r_in)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)


def synthetic_cases():
    """(name, gt, pred, ignore value) for each synthetic pair; deterministic."""
    rng = np.random.default_rng(20240611)  # PCG64: the same stream on every numpy
    cases = []

    # 97x61, radii all 1: two overlapping ellipses, a little speckle in pred
    gt = np.zeros((61, 97), np.uint8)
    cv2.ellipse(gt, (48, 30), (30, 18), 20, 0, 360, 255, -1)
    pred = np.zeros_like(gt)
    cv2.ellipse(pred, (50, 31), (28, 19), 25, 0, 360, 255, -1)
    pred[rng.integers(0, 61, 40), rng.integers(0, 97, 40)] ^= 255
    cases.append(("ellipse_97x61", gt, pred, None))

    # 300x200: a concave star with holes and an island in a hole; pred jittered
    gt = np.zeros((200, 300), np.uint8)
    star = _star(150, 100, 90, 45, 7, 0.3)
    cv2.fillPoly(gt, [np.rint(star).astype(np.int32)], 255)
    for (x, y, r) in [(150, 100, 22), (120, 70, 6), (185, 125, 4), (100, 110, 2)]:
        cv2.circle(gt, (x, y), r, 0, -1)
    cv2.circle(gt, (150, 100), 7, 255, -1)
    pred = np.zeros_like(gt)
    cv2.fillPoly(pred, [_jitter(star, rng, 4)], 255)
    for (x, y, r) in [(151, 101, 20), (121, 70, 5), (185, 126, 5)]:
        cv2.circle(pred, (x, y), r, 0, -1)
    cases.append(("star_holes_300x200", gt, pred, None))

    # 640x480, radii [1, 1, 2, 2, 3]: soft ground truth and soft prediction
    big = np.zeros((480 * 4, 640 * 4), np.uint8)
    cv2.ellipse(big, (1200, 900), (700, 500), -15, 0, 360, 255, -1)
    cv2.rectangle(big, (300, 1400), (1100, 1800), 255, -1)
    cv2.circle(big, (1300, 950), 160, 0, -1)
    gt = _soft(big)
    shifted = np.zeros((480, 640), np.uint8)
    cv2.ellipse(shifted, (305, 228), (172, 128), -12, 0, 360, 255, -1)
    cv2.rectangle(shifted, (78, 352), (272, 452), 255, -1)
    pred = cv2.GaussianBlur(shifted, (0, 0), 3.0)
    # exact threshold values: 127 is background, 128 foreground, in both masks
    for img in (gt, pred):
        edge = np.argwhere((img > 40) & (img < 215))
        pick = edge[rng.choice(len(edge), 400, replace=False)]
        img[pick[:200, 0], pick[:200, 1]] = 127
        img[pick[200:, 0], pick[200:, 1]] = 128
    cases.append(("soft_640x480", gt, pred, None))

    # 481x321 (GrabCut's size), radii [1, 1, 1, 2, 2]: a 128 ignore band
    fg = np.zeros((321, 481), np.uint8)
    cv2.fillPoly(fg, [np.array([[90, 280], [160, 60], [250, 40], [380, 120], [420, 300],
                                [300, 250], [230, 300]], np.int32)], 255)
    cv2.circle(fg, (260, 160), 30, 0, -1)
    inner = cv2.erode(fg, M.ellipse_kernel(3))
    outer = cv2.dilate(fg, M.ellipse_kernel(4))
    gt = fg.copy()
    gt[(outer > 0) & (inner == 0)] = 128
    gt[(fg > 0) & (inner > 0) & (np.arange(481)[None, :] % 37 == 0)] = 200  # fg too (>= 128)
    gt[130:140, 420:470] = 128  # an ignored patch away from the object
    pred = np.zeros_like(fg)
    cv2.fillPoly(pred, [np.array([[95, 284], [158, 64], [255, 36], [385, 118], [414, 296],
                                  [296, 246], [226, 296]], np.int32)], 255)
    cv2.circle(pred, (262, 158), 24, 0, -1)
    cases.append(("grabcut_band_481x321", gt, pred, 128))

    # 1000x37, radii [1, 1, 1, 2, 2]: 1- and 2-pixel strokes
    gt = np.zeros((37, 1000), np.uint8)
    pred = np.zeros_like(gt)
    cv2.line(gt, (0, 18), (999, 18), 255, 1)
    cv2.line(pred, (0, 19), (999, 17), 255, 1)
    cv2.line(gt, (50, 0), (400, 36), 255, 2)
    cv2.line(pred, (52, 0), (402, 36), 255, 2)
    cv2.polylines(gt, [np.array([[500, 5], [560, 30], [620, 5], [680, 30]], np.int32)], False, 255, 1)
    cv2.rectangle(gt, (800, 8), (950, 28), 255, -1)
    cv2.rectangle(pred, (803, 9), (948, 29), 255, -1)
    cases.append(("strokes_1000x37", gt, pred, None))

    # 23x900 (tall, narrow), radii [1, 1, 1, 2, 2]: blobs cut by every border
    gt = np.zeros((900, 23), np.uint8)
    pred = np.zeros_like(gt)
    for y0, y1, x0, x1 in [(0, 120, 0, 10), (200, 420, 5, 22), (500, 520, 0, 22), (850, 899, 3, 15)]:
        gt[y0:y1 + 1, x0:x1 + 1] = 255
    for y0, y1, x0, x1 in [(0, 124, 0, 11), (204, 410, 4, 22), (498, 521, 0, 21), (840, 899, 4, 16)]:
        pred[y0:y1 + 1, x0:x1 + 1] = 255
    cv2.circle(gt, (11, 700), 9, 255, -1)
    cases.append(("column_23x900", gt, pred, None))

    # 1500x1000, radii [1, 2, 3, 5, 6]: a disk full of holes of every size, islands
    gt = np.zeros((1000, 1500), np.uint8)
    cv2.ellipse(gt, (750, 500), (600, 420), 10, 0, 360, 255, -1)
    for i in range(40):
        x, y = int(300 + (i % 8) * 130), int(200 + (i // 8) * 140)
        r = 1 + (i * 7) % 30
        cv2.circle(gt, (x, y), r, 0, -1)
        if r > 15:
            cv2.circle(gt, (x, y), r // 3, 255, -1)
    cv2.ellipse(gt, (100, 880), (60, 40), 0, 0, 360, 255, -1)
    pred = (cv2.GaussianBlur(gt, (0, 0), 4.0) >= 110).astype(np.uint8) * 255
    pred = np.roll(pred, (2, -3), (0, 1))
    cases.append(("holes_1500x1000", gt, pred, None))

    # 2400x600, radii [1, 2, 4, 6, 8]: polygons cut by the image border, a thin stroke
    gt = np.zeros((600, 2400), np.uint8)
    cv2.fillPoly(gt, [np.array([[-50, 100], [500, 0], [700, 599], [-50, 599]], np.int32)], 255)
    cv2.fillPoly(gt, [np.rint(_star(1400, 300, 280, 150, 5)).astype(np.int32)], 255)
    cv2.line(gt, (1800, 50), (2399, 400), 255, 1)
    cv2.rectangle(gt, (2200, 450), (2399, 599), 255, -1)
    pred = np.zeros_like(gt)
    cv2.fillPoly(pred, [np.array([[-50, 110], [505, 6], [690, 599], [-50, 599]], np.int32)], 255)
    cv2.fillPoly(pred, [_jitter(_star(1405, 303, 285, 145, 5), rng, 6)], 255)
    cv2.rectangle(pred, (2190, 460), (2399, 599), 255, -1)
    cases.append(("border_2400x600", gt, pred, None))

    # 700x1 (one row), radii [1, 1, 1, 1, 2]
    gt = np.zeros((1, 700), np.uint8)
    pred = np.zeros_like(gt)
    for x0, x1 in [(0, 40), (100, 101), (300, 450), (699, 699)]:
        gt[0, x0:x1 + 1] = 255
    for x0, x1 in [(0, 38), (102, 102), (298, 452), (600, 610)]:
        pred[0, x0:x1 + 1] = 255
    cases.append(("row_700x1", gt, pred, None))

    # 120x80 with an empty ground truth: IoU 0, no boundary region (mBA 1)
    gt = np.zeros((80, 120), np.uint8)
    pred = np.zeros_like(gt)
    cv2.circle(pred, (60, 40), 20, 255, -1)
    cases.append(("empty_gt_120x80", gt, pred, None))
    return cases


def write_png(path: Path, img: np.ndarray) -> None:
    """8-bit greyscale PNG, read back to make sure it holds exactly `img`."""
    assert img.dtype == np.uint8 and img.ndim == 2
    ok = cv2.imwrite(str(path), img, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert ok, f"could not write {path}"
    back = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert back is not None and back.dtype == np.uint8 and np.array_equal(back, img), path


def write_synthetic() -> Path:
    folder = FIXTURES / "metrics"
    folder.mkdir(exist_ok=True)
    cases, total = [], 0
    for name, gt, pred, ignore in synthetic_cases():
        gt_path, pred_path = folder / f"{name}_gt.png", folder / f"{name}_pred.png"
        write_png(gt_path, gt)
        write_png(pred_path, pred)
        total += gt_path.stat().st_size + pred_path.stat().st_size
        c = {"name": name, "gt": f"metrics/{gt_path.name}", "pred": f"metrics/{pred_path.name}",
             "gt_sha256": sha256(gt_path), "pred_sha256": sha256(pred_path),
             **figures(pred, gt, ignore)}
        # each pair must test something: a boundary with mistakes on it
        assert name.startswith("empty") or (min(c["region"]) > 0 and c["correct"] != c["region"]), name
        cases.append(c)
        print(f"  {name:22s} radii {c['radii']} IoU {c['iou']:.6f} mBA {c['mba']:.6f}")
    assert len({tuple(c["radii"]) for c in cases}) >= 5, "the radii should differ between pairs"
    assert total < 200_000, f"synthetic PNGs take {total} bytes"
    print(f"  {2 * len(cases)} PNGs, {total} bytes")
    out = FIXTURES / "metrics_synthetic.json"
    payload = {"generator": "train/check_metrics.py --synthetic", "opencv": cv2.__version__,
               "what": "synthetic mask pairs drawn by train/check_metrics.py (paths relative to "
                       "tests/fixtures/); both binarised at >= 128, gt pixels equal to ignoreValue "
                       "ignored; counts from train/metrics.py (OpenCV)",
               "cases": cases}
    out.write_text(json.dumps(payload, indent=1) + "\n")
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "eval"))
    p.add_argument("--synthetic", action="store_true",
                   help="only write the synthetic pairs and tests/fixtures/metrics_synthetic.json")
    args = p.parse_args(argv)
    cv2.setNumThreads(1)
    if args.synthetic:
        print("wrote", write_synthetic().relative_to(REPO))
        return
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
