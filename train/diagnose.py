"""Does a checkpoint read the photo, or only copy the coarse mask?

A refiner that ignores the image can at best smooth the coarse mask. This
script measures, on seeded training crops (never the evaluation sets):

* band accuracy: pixel accuracy within 3 px of the ground truth's boundary,
  of the coarse mask (thresholded) and of the model;
* image reliance: mean |p(image, coarse) - p(gray image, coarse)|, how much
  the output changes when the photo is replaced by a flat gray one;
* mask-free IoU: IoU of the prediction made with an uninformative mask (0.5).

Usage: /usr/bin/python3 train/diagnose.py CHECKPOINT [--samples 24] [--size 320] [--raw]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data import RefineDataset  # noqa: E402
from model import CRM  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SETS = ["human-seg", "davis", "carvana", "ccp", "composite"]


def band_accuracy(pred: torch.Tensor, gt: torch.Tensor) -> float | None:
    band = F.max_pool2d(gt, 7, 1, 3) != -F.max_pool2d(-gt, 7, 1, 3)
    if not band.any():
        return None
    return float(((pred > 0.5) == (gt > 0.5))[band].float().mean())


def iou(pred: torch.Tensor, gt: torch.Tensor) -> float:
    p, g = pred > 0.5, gt > 0.5
    return float((p & g).sum()) / max(1, int((p | g).sum()))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--samples", type=int, default=24)
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--raw", action="store_true", help="the trained weights, not their EMA")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    ck = torch.load(args.checkpoint, map_location="cpu")
    model = CRM(ck["config"])
    model.load_state_dict(ck["model"] if args.raw else ck["ema"])
    model.eval()
    ds = RefineDataset(args.data, sets=SETS)
    S = args.size

    def prob(img, mask):
        return torch.sigmoid(model(img, mask, (S, S)))

    acc_c, acc_m, reliance, free_iou = [], [], [], []
    with torch.no_grad():
        for i in range(args.samples):
            s = ds[(i * 7919, S, 99)]  # fixed crops: checkpoints compare on the same pixels
            img, gt, co = s["image"][None], s["gt"][None], s["coarse"][None]
            p = prob(img, co)
            a, b = band_accuracy(co, gt), band_accuracy(p, gt)
            if a is not None:
                acc_c.append(a)
                acc_m.append(b)
            reliance.append(float((p - prob(torch.full_like(img, 0.45), co)).abs().mean()))
            free_iou.append(iou(prob(img, torch.full_like(co, 0.5)), gt))
    print(f"checkpoint {args.checkpoint}: step {ck['step']}, {ck['samples']} samples")
    print(f"band accuracy (3 px): coarse {np.mean(acc_c):.3f}, model {np.mean(acc_m):.3f} "
          f"over {len(acc_c)} crops")
    print(f"image reliance: {np.mean(reliance):.4f} mean |dp| when the photo is replaced by gray")
    print(f"mask-free IoU: {np.mean(free_iou):.3f} (prediction from the photo alone)")


if __name__ == "__main__":
    main()
