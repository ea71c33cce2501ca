"""Reference evaluation: coarse masks, the guided filter and CRM on the eval sets.

    /usr/bin/python3 train/evaluate.py --data ../shared/data/eval \\
        --weights train/runs/main/last.pt --kinds isnet,lowres8,lowres32,perturbed \\
        --sets p3m,grabcut,davis,carvana --out results.json [--limit N] \\
        [--methods coarse,guided,crm]

A data directory holds sets laid out as ``<set>/images/<name>.jpg``,
``<set>/gt/<name>.png`` and optionally ``<set>/coarse-<kind>/<name>.png``.
A kind with no folder is synthesised from the ground truth when
train/coarse_eval.py knows it (lowres8, lowres32, perturbed) and skipped,
with a message, otherwise. GrabCut's ground truth value 128 is ignored (see
train/metrics.py for every metric convention; ``--ignore set=value`` adds
others).

Methods: ``coarse`` (the coarse mask itself), ``guided`` (train/guided_filter.py
at its tuned defaults) and ``crm`` (train/model.py's multi-resolution
``refine`` with the weights from ``--weights``: a training checkpoint, whose
EMA weights are used when present, or an exported safetensors file; its
output leans toward the coarse mask by ``--coarse-trust`` logits, 0.5 by
default, as the engine's does).

Prints a markdown table (set x kind x method: dataset IoU, mean IoU, mBA,
boundary error removed = (mBA - mBA_coarse) / (100 - mBA_coarse), and the
number of images whose IoU dropped by more than 2 points against the coarse
mask) and writes everything, per image too, to ``--out`` as JSON.
"""
from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import coarse_eval  # noqa: E402
import guided_filter  # noqa: E402
import metrics as M  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
IGNORE = {"grabcut": 128}
IOU_DROP = 0.02  # "IoU dropped": by more than 2 points against the coarse mask


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# model loading


def load_model(path, weights_key: str = "auto"):
    """CRM from a training checkpoint (.pt/.pth) or an exported .safetensors.

    Checkpoint: torch.load dict with ``config`` and ``model`` (state_dict),
    and ``ema`` from train/train.py. weights_key "auto" uses ``ema`` when
    present (the weights export.py ships), else ``model``.
    Safetensors: BatchNorm was folded into the convolutions at export, so each
    BatchNorm is set to the identity plus the folded bias (eps 0, mean 0,
    var 1): the model computes exactly what the exported file describes.
    """
    import torch
    from model import CRM
    path = Path(path)
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    ck = torch.load(path, map_location="cpu")
    if not isinstance(ck, dict) or "config" not in ck:
        raise ValueError(f"{path}: not a crispmask checkpoint (a dict with 'config' and 'model')")
    key = ("ema" if "ema" in ck else "model") if weights_key == "auto" else weights_key
    if key not in ck:
        raise ValueError(f"{path}: checkpoint has no '{key}' weights (keys: {', '.join(ck)})")
    model = CRM(ck["config"])
    model.load_state_dict(ck[key])
    return model.eval()


def read_safetensors(path: Path) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """F32 tensors and the string metadata of a safetensors file."""
    raw = path.read_bytes()
    if len(raw) < 8:
        raise ValueError(f"{path}: truncated safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} is {info['dtype']}, expected F32")
        a, b = info["data_offsets"]
        tensors[name] = np.frombuffer(raw[base + a:base + b], dtype="<f4").reshape(info["shape"])
    return tensors, meta


def _convbns(model):
    """(exported name, ConvBN) pairs, named as model.folded_tensors names them."""
    enc = model.encoder
    yield "stem", enc.stem
    for i, stage in enumerate(enc.stages):
        for j, blk in enumerate(stage):
            yield f"stage{i}.{j}.conv1", blk.conv1
            yield f"stage{i}.{j}.conv2", blk.conv2
            if blk.down is not None:
                yield f"stage{i}.{j}.down", blk.down
    for name in ("proj2", "proj4", "proj8", "fuse"):
        yield name, getattr(enc, name)


def _load_safetensors(path: Path):
    import torch
    from model import CRM
    tensors, meta = read_safetensors(path)
    if "config" not in meta:
        raise ValueError(f"{path}: no architecture config in the safetensors metadata")
    model = CRM(json.loads(meta["config"]))
    used = set()

    def take(name: str, shape) -> torch.Tensor:
        if name not in tensors:
            raise ValueError(f"{path}: missing tensor {name}")
        t = torch.from_numpy(tensors[name].copy())
        if t.numel() != int(np.prod(shape)):
            raise ValueError(f"{path}: tensor {name} has shape {list(t.shape)}, expected {list(shape)}")
        used.add(name)
        return t.reshape(shape)

    with torch.no_grad():
        for name, cb in _convbns(model):
            cb.conv.weight.copy_(take(f"{name}.weight", cb.conv.weight.shape))
            bn = cb.bn
            bn.eps = 0.0
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0)
            bn.weight.fill_(1.0)
            bn.bias.copy_(take(f"{name}.bias", bn.bias.shape))
        dec = model.decoder
        dec.feat_proj.weight.copy_(take("mlp.feat.weight", dec.feat_proj.weight.shape))
        dec.feat_proj.bias.copy_(take("mlp.feat.bias", dec.feat_proj.bias.shape))
        pos = take("mlp.pos.weight", (dec.pos_proj.weight.shape[0], model.cfg["pos_dims"]))
        dec.pos_proj.weight.copy_(pos[:, :6])
        if dec.prior_proj is not None:
            dec.prior_proj.weight.copy_(pos[:, 6:])
        for i, layer in enumerate(dec.hidden):
            layer.weight.copy_(take(f"mlp.hidden{i}.weight", layer.weight.shape))
            layer.bias.copy_(take(f"mlp.hidden{i}.bias", layer.bias.shape))
        dec.out.weight.copy_(take("mlp.out.weight", dec.out.weight.shape))
        dec.out.bias.copy_(take("mlp.out.bias", dec.out.bias.shape))
    extra = set(tensors) - used
    if extra:
        raise ValueError(f"{path}: tensors the model does not use: {', '.join(sorted(extra))}")
    return model.eval()


# --------------------------------------------------------------------------
# methods: each maps (image RGB uint8, coarse uint8) to a mask (uint8 or float prob)


def method_coarse(image: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    return coarse


def method_guided(image: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    return guided_filter.refine(image, coarse)


# the engine's default RefineOptions.coarseTrust (src/coarse_trust.ts)
COARSE_TRUST = 0.5


def make_crm(model, coarse_trust: float = COARSE_TRUST):
    import torch
    from model import refine

    def method_crm(image: np.ndarray, coarse: np.ndarray) -> np.ndarray:
        img = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
        msk = torch.from_numpy(coarse)[None, None].float() / 255.0
        logits = refine(model, img.contiguous(), msk)
        # lean toward the coarse mask (here at full size already) as the engine does
        logits = logits + coarse_trust * (2 * msk - 1)
        return torch.sigmoid(logits)[0, 0].numpy()

    return method_crm


# --------------------------------------------------------------------------
# data


def read_rgb(path: Path) -> np.ndarray:
    return np.array(Image.open(path).convert("RGB"))


def read_gray(path: Path) -> np.ndarray:
    return np.array(Image.open(path).convert("L"))


def coarse_source(set_dir: Path, kind: str) -> Optional[str]:
    """'file', 'synthetic', or None when this set cannot provide the kind."""
    if (set_dir / f"coarse-{kind}").is_dir():
        return "file"
    if kind in coarse_eval.GENERATORS:
        return "synthetic"
    return None


def load_coarse(set_dir: Path, kind: str, source: str, name: str, gt: np.ndarray) -> Optional[np.ndarray]:
    if source == "synthetic":
        return coarse_eval.synthesize(kind, gt, name)
    path = set_dir / f"coarse-{kind}" / f"{name}.png"
    if not path.exists():
        return None
    c = read_gray(path)
    if c.shape != gt.shape:  # a coarse mask at another size: bilinear to the image's size
        c = cv2.resize(c, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_LINEAR)
    return c


# --------------------------------------------------------------------------
# evaluation


def evaluate_set(set_dir: Path, kinds: List[str], methods: Dict, limit: Optional[int],
                 ignore: Optional[int]) -> List[Dict]:
    """Results rows for one set: one per (kind, method)."""
    names = sorted(p.stem for p in (set_dir / "gt").glob("*.png"))
    if limit:
        names = names[:limit]
    sources = {}
    for kind in kinds:
        src = coarse_source(set_dir, kind)
        if src is None:
            log(f"  {set_dir.name}: no coarse-{kind}/ and no generator for it; skipping {kind}")
        else:
            sources[kind] = src
    # the coarse masks are always scored: every method is measured against them
    coarse_stats = {k: M.MaskStats() for k in sources}
    stats = {(k, m): (coarse_stats[k] if m == "coarse" else M.MaskStats()) for k in sources for m in methods}
    seconds = {(k, m): 0.0 for k in sources for m in methods}
    for n, name in enumerate(names):
        img_path = set_dir / "images" / f"{name}.jpg"
        if not img_path.exists():
            log(f"  {set_dir.name}/{name}: no image; skipped")
            continue
        image, gt = read_rgb(img_path), read_gray(set_dir / "gt" / f"{name}.png")
        if image.shape[:2] != gt.shape:
            log(f"  {set_dir.name}/{name}: image {image.shape[:2]} and gt {gt.shape} differ; skipped")
            continue
        for kind, src in sources.items():
            coarse = load_coarse(set_dir, kind, src, name, gt)
            if coarse is None:
                log(f"  {set_dir.name}/{name}: no coarse-{kind} mask; skipped for {kind}")
                continue
            coarse_stats[kind].add(coarse, gt, ignore, name)
            for mname, fn in methods.items():
                t = time.perf_counter()
                pred = fn(image, coarse)
                seconds[(kind, mname)] += time.perf_counter() - t
                if mname != "coarse":
                    stats[(kind, mname)].add(pred, gt, ignore, name)
        log(f"  {set_dir.name}: {n + 1}/{len(names)} {name}")
    rows = []
    for (kind, mname), st in stats.items():
        if st.count == 0:
            continue
        ref = coarse_stats[kind]
        ref_iou = {r["name"]: r["iou"] for r in ref.images}
        drops = [r["name"] for r in st.images if r["iou"] < ref_iou[r["name"]] - IOU_DROP]
        rows.append({"set": set_dir.name, "kind": kind, "coarse_source": sources[kind], "method": mname,
                     **st.summary(), "mba_coarse": ref.mean_mba,
                     "boundary_error_removed": boundary_error_removed(st.mean_mba, ref.mean_mba),
                     "iou_drops": len(drops), "iou_drop_images": drops,
                     "seconds_per_image": seconds[(kind, mname)] / st.count, "per_image": st.images})
    return rows


def boundary_error_removed(mba: float, mba_coarse: float) -> Optional[float]:
    """(mBA - mBA_coarse) / (100 - mBA_coarse) in percent units, i.e. the share
    of the coarse mask's boundary error that the method removed (negative:
    added). None when the coarse mask's mBA is already 100."""
    ref = 100 * mba_coarse
    return None if ref >= 100 else (100 * mba - ref) / (100 - ref)


def print_table(rows: List[Dict]) -> None:
    print("| set | kind | method | images | IoU (dataset) | mean IoU | mBA | boundary error removed "
          "| IoU drops > 2 pt | IoU lost: missed / extra | s/image |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ber = "—" if r["method"] == "coarse" or r["boundary_error_removed"] is None \
            else f"{100 * r['boundary_error_removed']:.1f}%"
        drops = "—" if r["method"] == "coarse" else str(r["iou_drops"])
        print(f"| {r['set']} | {r['kind']} | {r['method']} | {r['images']} | {100 * r['dataset_iou']:.2f} | "
              f"{100 * r['mean_iou']:.2f} | {100 * r['mba']:.2f} | {ber} | {drops} | "
              f"{100 * r['missed']:.2f} / {100 * r['extra']:.2f} | {r['seconds_per_image']:.2f} |")


def parse_ignore(items: List[str]) -> Dict[str, int]:
    out = dict(IGNORE)
    for it in items:
        k, _, v = it.partition("=")
        if not v:
            raise SystemExit(f"--ignore expects set=value, got {it!r}")
        out[k] = int(v)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "eval"))
    p.add_argument("--weights", help="CRM checkpoint (.pt) or exported .safetensors (needed for crm)")
    p.add_argument("--weights-key", default="auto", help="checkpoint weights: auto (ema if present), ema, model")
    p.add_argument("--kinds", default="isnet,lowres8,lowres32,perturbed")
    p.add_argument("--sets", default="p3m,grabcut,davis,carvana")
    p.add_argument("--methods", help="comma list of coarse,guided,crm (default: all; crm only with --weights)")
    p.add_argument("--out", default="results.json")
    p.add_argument("--limit", type=int, help="first N images of each set (sorted by name)")
    p.add_argument("--ignore", action="append", default=[], help="set=value: ground-truth value to ignore")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--coarse-trust", type=float, default=COARSE_TRUST,
                   help="logits added toward the coarse mask's label at the output (the engine's "
                        "RefineOptions.coarseTrust; 0: off)")
    args = p.parse_args(argv)

    cv2.setNumThreads(args.threads)
    methods_wanted = (args.methods or ("coarse,guided,crm" if args.weights else "coarse,guided")).split(",")
    unknown = set(methods_wanted) - {"coarse", "guided", "crm"}
    if unknown:
        raise SystemExit(f"unknown methods: {', '.join(sorted(unknown))}")
    methods = {}
    for m in methods_wanted:
        if m == "coarse":
            methods[m] = method_coarse
        elif m == "guided":
            methods[m] = method_guided
        else:
            if not args.weights:
                raise SystemExit("method crm needs --weights")
            import torch
            torch.set_num_threads(args.threads)
            if not args.coarse_trust >= 0:
                raise SystemExit("--coarse-trust must be >= 0")
            methods[m] = make_crm(load_model(args.weights, args.weights_key), args.coarse_trust)
    ignore = parse_ignore(args.ignore)
    data = Path(args.data)
    rows: List[Dict] = []
    for set_name in args.sets.split(","):
        set_dir = data / set_name
        if not (set_dir / "gt").is_dir() or not (set_dir / "images").is_dir():
            log(f"{set_name}: no {set_dir}/gt or /images; skipping the set")
            continue
        log(f"{set_name}:")
        rows += evaluate_set(set_dir, args.kinds.split(","), methods, args.limit, ignore.get(set_name))
    print_table(rows)
    out = {"data": str(data), "weights": args.weights, "kinds": args.kinds, "sets": args.sets,
           "limit": args.limit, "ignore": ignore, "coarse_trust": args.coarse_trust,
           "guided": {"radius": guided_filter.DEFAULT_RADIUS, "eps": guided_filter.DEFAULT_EPS,
                      "guide": guided_filter.DEFAULT_GUIDE},
           "results": rows}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
