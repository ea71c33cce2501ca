"""Multiply-adds of CRM-lite, per encoder layer and per output pixel.

    /usr/bin/python3 train/flops.py [--size 720x960]

Counts by hooking every convolution of the reference model on one forward
pass (so it follows the config), and the implicit function analytically.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import CRM, count_params  # noqa: E402


def encoder_macs(model: CRM, h: int, w: int) -> list[tuple[str, int]]:
    rows = []

    def hook(name):
        def f(mod, inp, out):
            k = mod.weight.shape
            rows.append((name, out.shape[-2] * out.shape[-1] * k[0] * k[1] * k[2] * k[3]))
        return f

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules()
               if isinstance(m, torch.nn.Conv2d) and not n.startswith("decoder.hidden") and n != "decoder.out"]
    with torch.no_grad():
        model.encode(torch.rand(1, 3, h, w), torch.rand(1, 1, h, w))
    for hd in handles:
        hd.remove()
    return rows


def implicit_macs_per_pixel(cfg: dict) -> int:
    widths = cfg["mlp"]
    per_support = cfg["pos_dims"] * widths[0] + sum(a * b for a, b in zip(widths[:-1], widths[1:])) + widths[-1]
    return 4 * per_support


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", default="720x960", help="HxW of the encoder input")
    p.add_argument("--pos-dims", type=int, default=7, help="positional inputs: 7 reads the prior (shipped), 6 is CRM's")
    a = p.parse_args()
    h, w = map(int, a.size.split("x"))
    model = CRM({"pos_dims": a.pos_dims}).eval()
    rows = encoder_macs(model, h, w)
    total = sum(m for _, m in rows)
    print(f"parameters: {count_params(model)}")
    print(f"encoder at {h}x{w}: {total / 1e9:.2f} GMAC ({2 * total / 1e9:.1f} GFLOP), "
          f"{total / (h * w):.0f} MAC per input pixel")
    for name, m in rows:
        print(f"  {name:32s} {m / 1e6:9.1f} MMAC  {100 * m / total:5.1f}%")
    print(f"implicit function: {implicit_macs_per_pixel(model.cfg)} MAC per output pixel (4 supports)")


if __name__ == "__main__":
    main()
