"""Train CRM-lite.

    /usr/bin/python3 train/train.py --out train/runs/main --steps 9000

Resumable: rerunning the same command continues from <out>/last.pt. The run
also stops by itself after --minutes of wall time (checkpointing first), so a
long schedule can be spread over several sessions. Logs go to <out>/train.log.

What it teaches beyond same-size refinement (design brief, "Training for the
resolution gap"): for a share of the batches the encoder sees the crop
downsampled by a factor s in [1, 4] while the implicit function is queried on
the full-resolution ground truth, with the cell size set accordingly.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import CRM, resize  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="data root (default ../shared/data)")
    p.add_argument("--sets", default="human-seg,davis,carvana,ccp,composite",
                   help="comma-separated training sets; leave any out to exclude its licence terms")
    p.add_argument("--out", default=str(REPO / "train" / "runs" / "main"))
    p.add_argument("--steps", type=int, default=9000, help="total optimiser steps of the schedule")
    p.add_argument("--minutes", type=float, default=150.0, help="stop (after checkpointing) after this much wall time")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--crop-min", type=int, default=224)
    p.add_argument("--crop-max", type=int, default=448)
    p.add_argument("--query", type=int, default=128, help="side of the dense query window per sample")
    p.add_argument("--gap-prob", type=float, default=0.6, help="share of batches trained across a resolution gap")
    p.add_argument("--wrong-weight", type=float, default=1.0,
                   help="BCE weight of pixels on the wrong side of 0.5 in the coarse mask")
    p.add_argument("--boundary-weight", type=float, default=0.0,
                   help="extra BCE weight of pixels within --boundary-radius px of the true boundary")
    p.add_argument("--boundary-radius", type=int, default=3)
    p.add_argument("--blank-prob", type=float, default=0.0,
                   help="share of samples encoded with an uninformative coarse mask (0.5)")
    p.add_argument("--low-contrast", type=float, default=0.0,
                   help="share of composites whose object's local colour is matched to the background's "
                   "(data.match_colours); runs up to the eighth used 0")
    p.add_argument("--distractors", type=float, default=0.0,
                   help="share of samples whose coarse mask gets a soft false positive that follows the "
                   "photo (coarse.distractor); runs up to the tenth used 0")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    p.add_argument("--workers", type=int, default=1, help="data loader processes")
    p.add_argument("--prior", action="store_true",
                   help="give the implicit function the stage's mask at the target pixel (pos_dims 7)")
    p.add_argument("--prior-lr", type=float, default=10.0,
                   help="learning-rate multiplier of the prior's weights (with --prior): they start at "
                   "zero in a trained model and must grow to matter")
    p.add_argument("--init", help="start a new schedule from this checkpoint's weights (model and EMA): "
                   "its step, samples and minutes carry over, the optimiser and the learning rate restart; "
                   "a 6-input decoder gains the prior's input with zero weights (same function at the start)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ckpt-every", type=float, default=5.0, help="minutes between checkpoints")
    return p.parse_args(argv)


# --------------------------------------------------------------------------
# loss


_SOBEL_X = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]).view(1, 1, 3, 3)


def sobel(x: torch.Tensor) -> torch.Tensor:
    kx = _SOBEL_X.to(x)
    ky = kx.transpose(2, 3)
    return torch.cat([F.conv2d(x, kx, padding=1), F.conv2d(x, ky, padding=1)], dim=1)


def refinement_loss(logits: torch.Tensor, gt: torch.Tensor, weight: torch.Tensor | None = None) -> dict:
    """BCE + 0.5 L1 + 0.5 L2 on the probability + 2.0 Sobel gradient L1 (CRM's weights).

    ``weight`` (same shape as ``gt``) reweights the BCE per pixel, normalised
    to mean 1 so the terms keep their balance.
    """
    prob = torch.sigmoid(logits)
    bce = F.binary_cross_entropy_with_logits(logits, gt, reduction="none")
    if weight is not None:
        bce = bce * (weight / weight.mean())
    parts = {
        "bce": bce.mean(),
        "l1": (prob - gt).abs().mean(),
        "l2": ((prob - gt) ** 2).mean(),
        "grad": (sobel(prob) - sobel(gt)).abs().mean(),
    }
    parts["total"] = parts["bce"] + 0.5 * parts["l1"] + 0.5 * parts["l2"] + 2.0 * parts["grad"]
    return parts


# --------------------------------------------------------------------------
# one batch


def near_boundary(gt: torch.Tensor, radius: int) -> torch.Tensor:
    """1.0 where a pixel lies within ``radius`` px of the ground truth's boundary (square window)."""
    k = 2 * radius + 1
    return (F.max_pool2d(gt, k, 1, radius) != -F.max_pool2d(-gt, k, 1, radius)).float()


def boundary_centre(gt: torch.Tensor, gen: random.Random) -> tuple[int, int] | None:
    """A random pixel on the ground truth's boundary, or None if it has none."""
    edge = near_boundary(gt, 1)[0] > 0
    ys, xs = torch.nonzero(edge, as_tuple=True)
    if len(ys) == 0:
        return None
    i = gen.randrange(len(ys))
    return int(ys[i]), int(xs[i])


def query_window(gt: torch.Tensor, q: int, gen: random.Random) -> tuple[int, int]:
    """Top-left of a q x q window, centred on a boundary 80% of the time."""
    S = gt.shape[-1]
    c = boundary_centre(gt, gen) if gen.random() < 0.8 else None
    if c is None:
        return gen.randint(0, S - q), gen.randint(0, S - q)
    jitter = q // 4
    y = c[0] - q // 2 + gen.randint(-jitter, jitter)
    x = c[1] - q // 2 + gen.randint(-jitter, jitter)
    return min(max(0, y), S - q), min(max(0, x), S - q)


def train_step(model: CRM, batch: dict, args, gen: random.Random, device) -> dict:
    image = batch["image"].to(device, non_blocking=True)
    gt = batch["gt"].to(device, non_blocking=True)
    coarse = batch["coarse"].to(device, non_blocking=True)
    S = image.shape[-1]
    # resolution gap: encode a downsampled crop, query the full-resolution grid
    s = 1.0 if gen.random() >= args.gap_prob else math.exp(gen.uniform(0.0, math.log(4.0)))
    n = max(48, round(S / s))
    enc_img = resize(image, (n, n)).contiguous(memory_format=torch.channels_last)
    # Without a coarse mask now and then, the encoder must read the photo: the first weights
    # learned to copy and smooth the mask and ignored the image (train/README.md).
    blank = [gen.random() < args.blank_prob for _ in range(image.shape[0])]
    enc_coarse = coarse.clone()
    for b, is_blank in enumerate(blank):
        if is_blank:
            enc_coarse[b] = 0.5
    enc_mask = resize(enc_coarse, (n, n)).contiguous(memory_format=torch.channels_last)
    proj = model.encode(enc_img, enc_mask)
    q = min(args.query, S)
    losses = []
    for b in range(image.shape[0]):
        y0, x0 = query_window(gt[b], q, gen)
        win = (y0, x0, q, q)
        logits = model.decoder.query(proj[b:b + 1], (S, S), win, model.prior(enc_mask[b:b + 1], (S, S), win))
        g = gt[b:b + 1, :, y0:y0 + q, x0:x0 + q]
        # pixels the coarse mask gets wrong carry the signal that only the image can give
        wrong = ((coarse[b:b + 1, :, y0:y0 + q, x0:x0 + q] > 0.5) != (g > 0.5)).float()
        weight = None if blank[b] else 1.0 + (args.wrong_weight - 1.0) * wrong
        if args.boundary_weight > 0:
            # mBA scores the last few pixels of the contour; most of a window is far from it and easy
            edge = args.boundary_weight * near_boundary(g, args.boundary_radius)
            weight = (1.0 if weight is None else weight) + edge
        losses.append(refinement_loss(logits, g, weight))
    return {k: torch.stack([d[k] for d in losses]).mean() for k in losses[0]}


# --------------------------------------------------------------------------
# checkpoints


def save_checkpoint(path: Path, model, ema, opt, step, samples, elapsed, args, history):
    tmp = path.with_suffix(".tmp")
    torch.save({
        "model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
        "step": step, "samples": samples, "elapsed": elapsed, "config": model.cfg,
        "args": vars(args), "commit": git_commit(), **history,
    }, tmp)
    os.replace(tmp, path)  # never leave a half-written checkpoint


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except Exception:
        return "unknown"


def widened_state(state: dict, model: CRM) -> dict:
    """``state`` (a CRM state_dict) fitted to ``model``: a model that reads the
    prior gets zero prior weights when ``state`` has none, so it computes
    exactly what the old one did until training moves them."""
    out = dict(state)
    prior = "decoder.prior_proj.weight"
    mine = model.state_dict()
    if prior in mine and prior not in out:
        out[prior] = torch.zeros_like(mine[prior])
    if prior in out and prior not in mine:
        raise ValueError("the checkpoint reads the prior; train it with --prior")
    return out


def lr_at(step: int, total: int, base: float) -> float:
    warm = min(300, total // 20)
    if step < warm:
        return base * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return 1e-2 * base + (base - 1e-2 * base) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "train.log", "a", buffering=1)

    def say(msg: str):
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        print(line, flush=True)
        log.write(line + "\n")

    torch.manual_seed(args.seed)
    cfg = {"pos_dims": 7} if args.prior else None
    model = CRM(cfg).to(device).to(memory_format=torch.channels_last)
    ema = CRM(cfg).to(device).to(memory_format=torch.channels_last)
    ema.load_state_dict(model.state_dict())
    ema.eval()
    prior_params = [p for n, p in model.named_parameters() if n.startswith("decoder.prior_proj.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("decoder.prior_proj.")]
    groups = [{"params": rest, "lr_mult": 1.0}]
    if prior_params:
        groups.append({"params": prior_params, "lr_mult": args.prior_lr})
    opt = torch.optim.AdamW(groups, lr=args.lr, weight_decay=1e-4)
    step, samples, elapsed = 0, 0, 0.0
    # where the current learning-rate schedule began, and the run it continues
    history = {"schedule_start": 0, "init_from": None}
    last = out / "last.pt"
    if last.exists():
        ck = torch.load(last, map_location=device)
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        step, samples, elapsed = ck["step"], ck["samples"], ck["elapsed"]
        history = {k: ck.get(k, v) for k, v in history.items()}
        say(f"resumed from {last} at step {step} ({samples} samples, {elapsed / 60:.1f} min)")
    elif args.init:
        ck = torch.load(args.init, map_location=device)
        model.load_state_dict(widened_state(ck["model"], model))
        ema.load_state_dict(widened_state(ck["ema"], ema))
        step, samples, elapsed = ck["step"], ck["samples"], ck["elapsed"]
        history = {"schedule_start": step, "init_from": Path(args.init).name}
        say(f"new schedule from {args.init}'s weights at step {step} ({samples} samples, {elapsed / 60:.1f} min)")
    if step >= args.steps:
        say("schedule already complete")
        return

    from data import RefineDataset, make_loader  # imported late: heavy
    dataset = RefineDataset(args.data, sets=args.sets.split(","), low_contrast=args.low_contrast,
                             distractors=args.distractors)
    # a different seed per resume keeps samples fresh without replaying a stream
    loader = make_loader(dataset, args.batch, sizes=(args.crop_min, args.crop_max),
                         seed=args.seed * 1000003 + step, num_workers=args.workers)
    gen = random.Random(args.seed * 7919 + step)
    say(f"training on {device}, {args.threads} threads, sets={args.sets}, steps {step}->{args.steps}")

    # SIGTERM/SIGINT end the run cleanly at the next step, with a checkpoint
    stop = {"now": False}
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.update(now=True))

    start = time.time()
    last_ckpt = start
    running = {}
    model.train()
    for batch in loader:
        if stop["now"] or step >= args.steps or time.time() - start > args.minutes * 60:
            break
        for g in opt.param_groups:
            # checkpoints from before --prior-lr saved groups without a multiplier
            start_step = history["schedule_start"]
            g["lr"] = g.get("lr_mult", 1.0) * lr_at(step - start_step, args.steps - start_step, args.lr)
        parts = train_step(model, batch, args, gen, device)
        opt.zero_grad(set_to_none=True)
        parts["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        with torch.no_grad():
            decay = min(0.999, (1 + step) / (10 + step))
            for pe, pm in zip(ema.state_dict().values(), model.state_dict().values()):
                if pe.dtype.is_floating_point:
                    pe.mul_(decay).add_(pm.detach(), alpha=1 - decay)
                else:
                    pe.copy_(pm)
        step += 1
        samples += batch["image"].shape[0]
        for k, v in parts.items():
            running[k] = 0.98 * running.get(k, float(v)) + 0.02 * float(v)
        now = time.time()
        if step % 50 == 0:
            rate = samples / max(1e-9, elapsed + now - start)
            lr = opt.param_groups[0]["lr"]
            say(f"step {step} samples {samples} lr {lr:.2e} "
                + " ".join(f"{k} {v:.4f}" for k, v in running.items()) + f" | {rate:.1f} samples/s")
        if now - last_ckpt > args.ckpt_every * 60:
            save_checkpoint(last, model, ema, opt, step, samples, elapsed + now - start, args, history)
            last_ckpt = now
    elapsed += time.time() - start
    save_checkpoint(last, model, ema, opt, step, samples, elapsed, args, history)
    say(f"stopped at step {step}, {samples} samples, {elapsed / 60:.1f} min of training in total")


if __name__ == "__main__":
    main()
