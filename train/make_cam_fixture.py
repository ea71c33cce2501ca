"""Golden fixture for the CAM + implicit function: tests/fixtures/cam_small.json.

Random seeded decoder weights and a random per-cell grid ``proj`` (Hf=5,
Wf=7), queried by model.py's ``ImplicitDecoder.query`` on the full 12x16
target grid and on a window of it; also ``axis_support``'s outputs, which the
engine must reproduce bit for bit. The Deno tests check the scalar TS
reference and the wasm kernel against it without Python.

Usage: python3 train/make_cam_fixture.py
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import ImplicitDecoder, axis_support  # noqa: E402

HF, WF, HT, WT = 5, 7, 12, 16
WINDOW = (3, 5, 6, 7)  # y0, x0, h, w
WIDTHS = [16, 12, 8]


def floats(t: torch.Tensor):
    # each float32 as its shortest decimal (Math.fround of it is the exact value)
    return [float(str(v)) for v in t.detach().float().reshape(-1).numpy()]


def main():
    torch.manual_seed(20240611)
    dec = ImplicitDecoder({"latent": 8, "mlp": WIDTHS, "pos_dims": 6}).eval()
    with torch.no_grad():
        # scale the positional weights up so the offsets matter next to proj
        dec.pos_proj.weight.mul_(2.0)
        proj = torch.rand(1, WIDTHS[0], HF, WF) * 2.0 - 1.0
        full = dec.query(proj, (HT, WT))
        win = dec.query(proj, (HT, WT), WINDOW)
    axes = {}
    for name, (nt, nf) in {"y": (HT, HF), "x": (WT, WF)}.items():
        lo, hi, rlo, rhi, coord = axis_support(nt, nf, 0, nt)
        axes[name] = {"lo": lo.tolist(), "hi": hi.tolist(), "relLo": floats(rlo),
                      "relHi": floats(rhi), "coord": floats(coord)}
    fixture = {
        "about": "train/make_cam_fixture.py: ImplicitDecoder.query on random weights (torch "
                 + torch.__version__ + ")",
        "Hf": HF, "Wf": WF, "Ht": HT, "Wt": WT, "widths": WIDTHS, "window": list(WINDOW),
        # proj in NHWC (the engine's layout): [Hf][Wf][w0]
        "proj": floats(proj[0].permute(1, 2, 0)),
        "tensors": {
            "mlp.pos.weight": floats(dec.pos_proj.weight),
            **{f"mlp.hidden{i}.weight": floats(l.weight) for i, l in enumerate(dec.hidden)},
            **{f"mlp.hidden{i}.bias": floats(l.bias) for i, l in enumerate(dec.hidden)},
            "mlp.out.weight": floats(dec.out.weight),
            "mlp.out.bias": floats(dec.out.bias),
        },
        "axes": axes,
        "logits": floats(full[0, 0]),
        "windowLogits": floats(win[0, 0]),
    }
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "cam_small.json")
    with open(path, "w") as fh:
        json.dump(fixture, fh, separators=(",", ":"))
        fh.write("\n")
    print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
