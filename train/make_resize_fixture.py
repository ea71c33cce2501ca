"""Golden fixture for image resizing: tests/fixtures/resize_small.json.

model.py's ``resize()`` (area when shrinking both axes, bilinear with
half-pixel centres otherwise) on small random NHWC images with integer and
non-integer ratios; the Deno tests check the TS reference and the kernels
against it without Python.

Usage: python3 train/make_resize_fixture.py
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import resize  # noqa: E402

# (in_h, in_w, channels, out_h, out_w)
CASES = [
    (5, 7, 3, 12, 16),   # up ~2.4x / ~2.3x
    (5, 6, 5, 11, 13),   # up 2.2x / 2.17x, 5 channels (the SIMD path)
    (6, 5, 2, 12, 10),   # up 2x
    (4, 6, 1, 19, 14),   # up 4.75x / 2.33x
    (9, 10, 3, 4, 13),   # down in y, up in x: bilinear
    (13, 11, 3, 5, 4),   # down, non-integer: area
    (12, 16, 2, 6, 8),   # down 2x: area
    (7, 9, 1, 7, 3),     # same height, down in x: area
]


def floats(t: torch.Tensor):
    # each float32 as its shortest decimal (Math.fround of it is the exact value)
    return [float(str(v)) for v in t.detach().float().reshape(-1).numpy()]


def main():
    torch.manual_seed(7)
    cases = []
    for ih, iw, c, oh, ow in CASES:
        x = torch.rand(1, c, ih, iw) * 4.0 - 2.0
        y = resize(x, (oh, ow))
        cases.append({"in": [ih, iw, c], "out": [oh, ow],
                      "mode": "area" if (oh <= ih and ow <= iw) else "bilinear",
                      "x": floats(x[0].permute(1, 2, 0)), "y": floats(y[0].permute(1, 2, 0))})
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "resize_small.json")
    with open(path, "w") as fh:
        json.dump({"about": "train/make_resize_fixture.py (torch " + torch.__version__ + ")",
                   "cases": cases}, fh, separators=(",", ":"))
        fh.write("\n")
    print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
