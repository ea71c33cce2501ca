"""Export CRM-lite for the WebAssembly engine, and the golden fixtures.

    /usr/bin/python3 train/export.py --ckpt train/runs/main/last.pt
    /usr/bin/python3 train/export.py --random-seed 1   # untrained, for engine work

Writes
* weights/crm-lite.safetensors: BatchNorm folded into the convolutions; the
  architecture config and provenance as JSON strings in ``__metadata__``.
* tests/fixtures/golden.safetensors: for fixed small inputs of odd sizes, the
  encoder taps (stem, each stage, latent grid, per-cell first-layer term) and
  the logits on several target grids (same size, 2x, a non-integer scale, a
  window), computed by the reference model in float32 from the exported
  (folded) weights, so the engine's parity tests check every stage.
"""
from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import CRM, count_params, folded_tensors, receptive_radius, refine, resize, stage_sizes  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def write_safetensors(path: Path, tensors: dict, metadata: dict) -> None:
    """Minimal safetensors writer: u64 header length, JSON header, raw LE data."""
    header = {"__metadata__": {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}}
    blobs, offset = [], 0
    for name, t in tensors.items():
        data = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # keep tensor data 8-byte aligned
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)
    tmp.replace(path)


def randomise_bn(model: CRM, gen: torch.Generator) -> None:
    """Give an untrained model non-trivial BatchNorm statistics, so folding is exercised."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = 0.5 + torch.rand(n, generator=gen)
            m.bias.data = 0.2 * torch.randn(n, generator=gen)
            m.running_mean = 0.1 * torch.randn(n, generator=gen)
            m.running_var = 0.5 + torch.rand(n, generator=gen)


def folded_model(model: CRM) -> CRM:
    """A copy whose BatchNorms are identities and convs carry the folded weights.

    The golden fixtures are computed with it, so they test exactly the tensors
    that ship (folding changes float rounding slightly).
    """
    folded = CRM(model.cfg)
    tensors = folded_tensors(model)
    enc = folded.encoder

    def put(cb, name):
        cb.conv.weight.data = tensors[f"{name}.weight"].clone()
        cb.bn.weight.data.fill_(1.0)
        cb.bn.bias.data = tensors[f"{name}.bias"].clone()
        cb.bn.running_mean.zero_()
        cb.bn.running_var.fill_(1.0)
        cb.bn.eps = 0.0

    put(enc.stem, "stem")
    for i, stage in enumerate(enc.stages):
        for j, blk in enumerate(stage):
            put(blk.conv1, f"stage{i}.{j}.conv1")
            put(blk.conv2, f"stage{i}.{j}.conv2")
            if blk.down is not None:
                put(blk.down, f"stage{i}.{j}.down")
    for name in ("proj2", "proj4", "proj8", "fuse"):
        put(getattr(enc, name), name)
    folded.decoder.load_state_dict(model.decoder.state_dict())
    return folded.eval()


def golden_fixtures(model: CRM, seed: int) -> tuple[dict, dict]:
    """Reference outputs on small odd-sized inputs, for the engine's parity tests."""
    gen = torch.Generator().manual_seed(seed)
    h, w = 61, 83  # odd, not multiples of the stride: exercises every rounding rule
    image = torch.rand(1, 3, h, w, generator=gen)
    # a blob-shaped soft mask, like a real coarse mask (not noise, not zeros)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    mask = torch.sigmoid(6 * (0.55 - torch.sqrt((yy * 1.2) ** 2 + (xx + 0.1) ** 2)))[None, None]
    taps: dict = {}
    with torch.no_grad():
        proj = model.encode(image, mask, taps)
        grids = {"same": (h, w), "x2": (2 * h, 2 * w), "x137": (84, 114)}
        out = {"input.image": image, "input.mask": mask}
        for k, v in taps.items():
            out[f"tap.{k}"] = v
        meta = {"image_size": [h, w], "targets": {}}
        for name, size in grids.items():
            out[f"logits.{name}"] = model.decoder.query(proj, size, None, model.prior(mask, size))
            meta["targets"][name] = {"size": list(size), "window": [0, 0, size[0], size[1]]}
        win = (37, 19, 29, 51)  # a window of the x2 grid touching no border
        out["logits.window"] = model.decoder.query(proj, (2 * h, 2 * w), win, model.prior(mask, (2 * h, 2 * w), win))
        meta["targets"]["window"] = {"size": [2 * h, 2 * w], "window": list(win)}
        if model.decoder.use_prior:
            # the kernel's prior input (probabilities), so the logits are checked on their own;
            # the pipeline below checks the engine's own upsampling of it
            for name, t in meta["targets"].items():
                y0, x0, hh, ww = t["window"]
                out[f"prior.{name}"] = resize(mask, tuple(t["size"]))[:, :, y0:y0 + hh, x0:x0 + ww]
        # the whole multi-resolution procedure: 8-bit image, a low-resolution
        # coarse mask, and a small first stage so that three stages run
        ph, pw, base = 97, 131, 40
        pimg = torch.floor(resize(image, (ph, pw)) * 255.0 + 0.5).clamp(0, 255)
        pmask = torch.floor(resize(mask, (13, 17)) * 255.0 + 0.5).clamp(0, 255)
        model.cfg = dict(model.cfg, base_long_side=base)
        out["pipeline.image"] = pimg
        out["pipeline.coarse"] = pmask
        out["pipeline.logits"] = refine(model, pimg / 255.0, pmask / 255.0)
        meta["pipeline"] = {"base_long_side": base, "stages": [list(s) for s in stage_sizes(ph, pw, base)]}
    return out, meta


def averaged_state(a: dict, b: dict) -> dict:
    """The element-wise mean of two state dicts of the same architecture.

    Integer buffers (BatchNorm's batch counters) are not weights; ``a``'s are kept.
    """
    if a.keys() != b.keys():
        raise SystemExit("--average: the two checkpoints have different parameters")
    return {k: (a[k] + b[k]) / 2 if a[k].is_floating_point() else a[k] for k in a}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", help="training checkpoint (its EMA weights unless --weights-key model)")
    p.add_argument("--weights-key", choices=("ema", "model"), default="ema",
                   help="the checkpoint's EMA weights, or the trained weights themselves (model): the EMA "
                   "(decay 0.999) lags a short fine-tuning run by about 1000 steps")
    p.add_argument("--average", metavar="CKPT",
                   help="export the mean of --ckpt's weights and this checkpoint's (same --weights-key): "
                   "two states of one lineage, e.g. a run and the run it continued")
    p.add_argument("--random-seed", type=int, help="export an untrained model instead")
    p.add_argument("--out", default=str(REPO / "weights" / "crm-lite.safetensors"))
    p.add_argument("--fixtures", default=str(REPO / "tests" / "fixtures" / "golden.safetensors"))
    p.add_argument("--metrics", help="JSON file of evaluation figures to record in the provenance")
    args = p.parse_args(argv)
    torch.set_num_threads(2)

    if args.ckpt:
        ck = torch.load(args.ckpt, map_location="cpu")
        model = CRM(ck["config"])
        state = ck[args.weights_key]
        if args.average:
            other = torch.load(args.average, map_location="cpu")
            state = averaged_state(state, other[args.weights_key])
        model.load_state_dict(state)
        prov = {"trained": True, "checkpoint": Path(args.ckpt).name, "weights": args.weights_key,
                "init_from": ck.get("init_from"), "schedule_start": ck.get("schedule_start"), "steps": ck["step"],
                "samples_seen": ck["samples"], "train_minutes": round(ck["elapsed"] / 60, 1),
                "train_args": ck.get("args", {}), "commit": ck.get("commit", "unknown")}
        if args.average:
            prov["averaged_with"] = {"checkpoint": Path(args.average).name, "steps": other["step"],
                                     "samples_seen": other["samples"]}
    elif args.random_seed is not None:
        torch.manual_seed(args.random_seed)
        model = CRM()
        randomise_bn(model, torch.Generator().manual_seed(args.random_seed))
        prov = {"trained": False, "random_seed": args.random_seed,
                "note": "untrained weights for engine development; not for use"}
    else:
        p.error("give --ckpt or --random-seed")
    model.eval()
    if args.metrics:
        prov["metrics"] = json.loads(Path(args.metrics).read_text())
    prov["exported"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    prov["parameters"] = count_params(model)
    prov["receptive_radius_px"] = receptive_radius(model.cfg)

    tensors = folded_tensors(model)
    write_safetensors(Path(args.out), tensors, {"format": "crispmask-crm", "config": model.cfg,
                                                "provenance": prov})
    fixtures, meta = golden_fixtures(folded_model(model), seed=1234)
    write_safetensors(Path(args.fixtures), fixtures, {"format": "crispmask-golden", "golden": meta,
                                                      "weights": Path(args.out).name})
    print(f"wrote {args.out} ({sum(t.numel() for t in tensors.values())} floats) and {args.fixtures}")


if __name__ == "__main__":
    main()
