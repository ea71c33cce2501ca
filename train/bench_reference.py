"""PyTorch peer of bench/speed.ts: times train/model.py's dense `refine`.

bench/speed.ts writes the benchmark's inputs as raw bytes (an 8-bit RGB image
and an 8-bit coarse mask) and runs this script on the same files, so both
sides refine exactly the same pixels. The model is loaded from the same
safetensors file as the engine (BatchNorm folded, see evaluate.load_model).

Prints one JSON line: the wall time of each run (seconds), the process's
peak resident memory (kB, ru_maxrss) and the torch thread count.

Usage (as bench/speed.ts calls it):
    /usr/bin/python3 train/bench_reference.py --rgb IMG.rgb --size W H \\
        --coarse MASK.u8 --coarse-size W H --weights weights/crm-lite.safetensors \\
        --runs 1 --threads 2
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate import load_model  # noqa: E402
from model import refine  # noqa: E402


def read_raw(path: str, w: int, h: int, channels: int) -> torch.Tensor:
    """Raw 8-bit pixels as a [1, C, H, W] float tensor in [0, 1] (divided by 255 first, as the engine)."""
    a = np.fromfile(path, dtype=np.uint8)
    if a.size != w * h * channels:
        raise SystemExit(f"{path}: {a.size} bytes, expected {w}x{h}x{channels}")
    t = torch.from_numpy(a.reshape(h, w, channels)).permute(2, 0, 1).unsqueeze(0)
    return t.float() / 255.0


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rgb", required=True)
    p.add_argument("--size", type=int, nargs=2, metavar=("W", "H"), required=True)
    p.add_argument("--coarse", required=True)
    p.add_argument("--coarse-size", type=int, nargs=2, metavar=("W", "H"), required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    model = load_model(args.weights)
    image = read_raw(args.rgb, args.size[0], args.size[1], 3)
    coarse = read_raw(args.coarse, args.coarse_size[0], args.coarse_size[1], 1)
    with torch.no_grad():
        refine(model, image[:, :, :64, :96], coarse[:, :, :16, :24])  # warm-up (allocator, kernels)
        runs = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            logits = refine(model, image, coarse)
            runs.append(time.perf_counter() - t0)
            del logits
    print(json.dumps({
        "runs_s": runs,
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
