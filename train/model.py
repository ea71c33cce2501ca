"""CRM-lite: the PyTorch reference of crispmask's Continuous Refinement Model.

This module is the numerical oracle for the WebAssembly engine, so every
convention the engine must mirror is written out explicitly here rather than
left to a library default:

* layouts: NCHW in PyTorch (channels_last memory format for speed only);
* image resizing: ``resize`` (area average when shrinking, bilinear with
  half-pixel centres when enlarging);
* the CAM support-cell indices are computed with integer arithmetic, and the
  positional inputs with a fixed order of float32 operations, so the engine
  can reproduce them bit for bit.

The architecture is read from a config dict (stored in the safetensors
metadata at export), so a wider or narrower model needs no code change.
"""
from __future__ import annotations

import copy
import math
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

DEFAULT_CONFIG: Dict = {
    "arch": "crm-lite",
    "in_channels": 4,
    "stem": 32,
    # one entry per residual stage: output width, blocks, stride, dilation
    "stages": [
        {"width": 32, "blocks": 2, "stride": 1, "dilation": 1},
        {"width": 64, "blocks": 2, "stride": 2, "dilation": 1},
        {"width": 128, "blocks": 2, "stride": 1, "dilation": 2},
    ],
    # projection widths for the stride-2 (stem), stride-4 (stage 0) and
    # last-stage features; fused by a 3x3 conv into the latent grid.
    # Half the design brief's 32/32/64: the 3x3 fuse conv at stride 2 was 55%
    # of the encoder's multiply-adds (train/flops.py); this halves it.
    "proj": [16, 16, 32],
    "latent": 64,
    "mlp": [32, 32, 32],
    # 6: CRM's positional inputs (rel_y, rel_x, cell_y, cell_x, coord_y,
    # coord_x); 7 adds the *prior*: the stage's input mask upsampled to the
    # target pixel, as 2p - 1 (see ImplicitDecoder).
    "pos_dims": 6,
    "mean": IMAGENET_MEAN,
    "std": IMAGENET_STD,
    # long side (px) of the first inference stage, near the training scale
    "base_long_side": 960,
}


def merged_config(overrides: Optional[Dict] = None) -> Dict:
    cfg = copy.deepcopy(DEFAULT_CONFIG)
    if overrides:
        cfg.update(overrides)
    return cfg


# --------------------------------------------------------------------------
# resizing convention shared with the engine


def resize(x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Resize NCHW ``x`` to ``size`` (h, w).

    Shrinking in both axes averages over adaptive bins (``area``), which does
    not alias when a 6K photo becomes a 1K stage; otherwise bilinear with
    half-pixel centres (align_corners=False). The engine implements the same.
    """
    h, w = size
    if (h, w) == tuple(x.shape[-2:]):
        return x
    if h <= x.shape[-2] and w <= x.shape[-1]:
        return F.adaptive_avg_pool2d(x, (h, w))
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)


def encoder_input(image: torch.Tensor, mask: torch.Tensor, cfg: Dict) -> torch.Tensor:
    """image: [B,3,H,W] in [0,1]; mask: [B,1,H,W] in [0,1] -> [B,4,H,W]."""
    mean = torch.tensor(cfg["mean"], dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"], dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    return torch.cat([(image - mean) / std, mask * 2.0 - 1.0], dim=1)


# --------------------------------------------------------------------------
# encoder


class ConvBN(nn.Module):
    """Conv (no bias) + BatchNorm (+ ReLU); folded into conv+bias at export."""

    def __init__(self, cin, cout, k, stride=1, dilation=1, relu=True):
        super().__init__()
        pad = dilation * (k - 1) // 2
        self.conv = nn.Conv2d(cin, cout, k, stride, pad, dilation, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = relu

    def forward(self, x):
        x = self.bn(self.conv(x))
        return F.relu(x) if self.relu else x


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride, dilation):
        super().__init__()
        self.conv1 = ConvBN(cin, cout, 3, stride, dilation, relu=True)
        self.conv2 = ConvBN(cout, cout, 3, 1, dilation, relu=False)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = ConvBN(cin, cout, 1, stride, 1, relu=False)

    def forward(self, x):
        skip = x if self.down is None else self.down(x)
        # the engine fuses "+ skip, ReLU" into conv2's epilogue
        return F.relu(self.conv2(self.conv1(x)) + skip)


class Encoder(nn.Module):
    """ResNet-style encoder held at stride 8, fused into a stride-2 latent grid."""

    def __init__(self, cfg: Dict):
        super().__init__()
        self.stem = ConvBN(cfg["in_channels"], cfg["stem"], 7, 2, 1, relu=True)
        stages: List[nn.Module] = []
        cin = cfg["stem"]
        for st in cfg["stages"]:
            blocks = []
            for b in range(st["blocks"]):
                blocks.append(BasicBlock(cin, st["width"], st["stride"] if b == 0 else 1, st["dilation"]))
                cin = st["width"]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        p2, p4, p8 = cfg["proj"]
        self.proj2 = ConvBN(cfg["stem"], p2, 1)
        self.proj4 = ConvBN(cfg["stages"][0]["width"], p4, 1)
        self.proj8 = ConvBN(cfg["stages"][-1]["width"], p8, 1)
        self.fuse = ConvBN(p2 + p4 + p8, cfg["latent"], 3)

    def forward(self, x, taps: Optional[Dict[str, torch.Tensor]] = None):
        s2 = self.stem(x)
        h = F.max_pool2d(s2, 3, 2, 1)
        s4 = None
        for i, stage in enumerate(self.stages):
            h = stage(h)
            if taps is not None:
                taps[f"stage{i}"] = h
            if i == 0:
                s4 = h
        size = s2.shape[-2:]
        up = lambda t: F.interpolate(t, size=size, mode="bilinear", align_corners=False)
        cat = torch.cat([self.proj2(s2), up(self.proj4(s4)), up(self.proj8(h))], dim=1)
        latent = self.fuse(cat)
        if taps is not None:
            taps["stem"] = s2
            taps["latent"] = latent
        return latent


# --------------------------------------------------------------------------
# Continuous Alignment Module + implicit function


def axis_support(n_target: int, n_feat: int, start: int, count: int, device=None):
    """Support cells and positional inputs along one axis.

    For target pixels j in [start, start+count) of a grid of ``n_target``
    pixels over the same extent as ``n_feat`` feature cells, returns
    (idx_lo, idx_hi, rel_lo, rel_hi, coord):

    * u = (j + 0.5) * n_feat / n_target is the pixel centre in cell units;
      the supporting cells are floor(u - 0.5) and floor(u - 0.5) + 1 (LIIF's
      "nearest cell to x_t shifted by half a cell"), clamped to the grid.
      Computed in integers: floor(((2j+1)*n_feat - n_target) / (2*n_target)).
    * rel = (x_t - c(cell)) * n_feat in [-1,1]-coordinates = 2u - (2i+1).
    * coord = x_t = (2j+1)/n_target - 1.
    All float32, in exactly this order of operations (the engine mirrors it).
    """
    j = torch.arange(start, start + count, device=device, dtype=torch.int64)
    lo = torch.div((2 * j + 1) * n_feat - n_target, 2 * n_target, rounding_mode="floor")
    hi = lo + 1
    lo = lo.clamp(0, n_feat - 1)
    hi = hi.clamp(0, n_feat - 1)
    two_u = ((2 * j + 1) * n_feat).to(torch.float32) / float(n_target)
    rel_lo = two_u - (2 * lo + 1).to(torch.float32)
    rel_hi = two_u - (2 * hi + 1).to(torch.float32)
    coord = (2 * j + 1).to(torch.float32) / float(n_target) - 1.0
    return lo, hi, rel_lo, rel_hi, coord


def prior_window(mask: torch.Tensor, target: Tuple[int, int],
                 window: Optional[Tuple[int, int, int, int]] = None) -> torch.Tensor:
    """The prior input of a target window: ``mask`` (the stage's encoder-input
    mask, [B,1,h,w] in [0,1]) resized to the target grid, cropped to the
    window, as 2p - 1. The engine computes the same with its bilinear kernel.
    """
    up = resize(mask, target)
    if window is not None:
        y0, x0, h, w = window
        up = up[:, :, y0:y0 + h, x0:x0 + w]
    return up * 2.0 - 1.0


class ImplicitDecoder(nn.Module):
    """MLP (latent + pos_dims) -> mlp[0] -> ... -> 1, first layer factorised.

    W1 [F(z), P] = W1f F(z) + W1p P: ``feat_proj`` (a 1x1 conv, with the
    first layer's bias) runs once per feature cell; per target pixel only the
    positional part and the hidden layers remain.

    With ``pos_dims`` 7 the positional part also gets the *prior*, the stage's
    input mask at the target pixel itself (``prior_window``). CRM's MLP sees
    the mask only through the stride-2 feature cells, so reproducing a coarse
    boundary that is already right means regressing its sub-cell position
    from features; measured with the fourth run's 6-input weights, the 960 px first
    stage queried at 1920 px turned Carvana's 1/8 masks from 89.6 to 81.6 mBA
    (weights/MODEL_CARD.md). The prior hands that position to every pixel.
    """

    def __init__(self, cfg: Dict):
        super().__init__()
        if cfg["pos_dims"] not in (6, 7):
            raise ValueError(f"pos_dims must be 6 or 7, got {cfg['pos_dims']}")
        self.use_prior = cfg["pos_dims"] == 7
        widths = cfg["mlp"]
        self.feat_proj = nn.Conv2d(cfg["latent"], widths[0], 1, bias=True)
        self.pos_proj = nn.Linear(6, widths[0], bias=False)
        # the prior's weights (W1p's 7th column) on their own, so that training can give them
        # their own learning rate; zero at the start: the model begins by ignoring the prior
        self.prior_proj = nn.Linear(1, widths[0], bias=False) if self.use_prior else None
        if self.prior_proj is not None:
            nn.init.zeros_(self.prior_proj.weight)
        hidden = []
        for a, b in zip(widths[:-1], widths[1:]):
            hidden.append(nn.Conv2d(a, b, 1, bias=True))
        self.hidden = nn.ModuleList(hidden)
        self.out = nn.Conv2d(widths[-1], 1, 1, bias=True)

    def query(self, proj: torch.Tensor, target: Tuple[int, int],
              window: Optional[Tuple[int, int, int, int]] = None,
              prior: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Logits for target pixels.

        proj: [B, W0, Hf, Wf], the per-cell first-layer term (feat_proj(latent)).
        target: (Ht, Wt), the full target grid over the same extent.
        window: (y0, x0, h, w) sub-window of the target grid (default: all).
        prior: [B, 1, h, w], ``prior_window`` of the window (pos_dims 7 only).
        Returns [B, 1, h, w] logits.
        """
        B, C, Hf, Wf = proj.shape
        Ht, Wt = target
        y0, x0, h, w = window if window is not None else (0, 0, Ht, Wt)
        dev = proj.device
        ylo, yhi, rylo, ryhi, cy = axis_support(Ht, Hf, y0, h, dev)
        xlo, xhi, rxlo, rxhi, cx = axis_support(Wt, Wf, x0, w, dev)
        cell_y = float(2 * Hf) / float(Ht)
        cell_x = float(2 * Wf) / float(Wt)
        wp = self.pos_proj.weight  # [W0, 6]: rel_y, rel_x, cell_y, cell_x, coord_y, coord_x
        # cell is constant per query grid; coords vary per row / column
        const = (wp[:, 2] * cell_y + wp[:, 3] * cell_x).view(1, C, 1, 1)
        row_c = (wp[:, 4:5] * cy.view(1, h)).view(1, C, h, 1)
        col_c = (wp[:, 5:6] * cx.view(1, w)).view(1, C, 1, w)
        if self.use_prior:
            if prior is None or tuple(prior.shape[-2:]) != (h, w):
                raise ValueError(f"this model needs the prior of its {h}x{w} window")
            # the same for the four supports: folded into the per-pixel constant
            col_c = col_c + self.prior_proj.weight.view(1, C, 1, 1) * prior
        elif prior is not None:
            raise ValueError("this model takes no prior (pos_dims 6)")
        preds, areas = [], []
        for iy, ry in ((ylo, rylo), (yhi, ryhi)):
            for ix, rx in ((xlo, rxlo), (xhi, rxhi)):
                g = proj[:, :, iy[:, None], ix[None, :]]  # [B,C,h,w]
                pos = (wp[:, 0:1] * ry.view(1, h)).view(1, C, h, 1) + (wp[:, 1:2] * rx.view(1, w)).view(1, C, 1, w)
                z = F.relu(g + pos + const + row_c + col_c)
                for layer in self.hidden:
                    z = F.relu(layer(z))
                preds.append(self.out(z))
                areas.append((ry.view(h, 1) * rx.view(1, w)).abs() + 1e-9)
        total = areas[0] + areas[1] + areas[2] + areas[3]
        # each support's weight is the area opposite to it (bilinear-like)
        out = (preds[0] * areas[3] + preds[1] * areas[2] + preds[2] * areas[1] + preds[3] * areas[0]) / total
        return out


class CRM(nn.Module):
    def __init__(self, cfg: Optional[Dict] = None):
        super().__init__()
        self.cfg = merged_config(cfg)
        self.encoder = Encoder(self.cfg)
        self.decoder = ImplicitDecoder(self.cfg)

    def encode(self, image: torch.Tensor, mask: torch.Tensor, taps=None) -> torch.Tensor:
        """image [B,3,H,W] in [0,1], mask [B,1,H,W] in [0,1] -> per-cell first-layer term."""
        latent = self.encoder(encoder_input(image, mask, self.cfg), taps)
        proj = self.decoder.feat_proj(latent)
        if taps is not None:
            taps["proj"] = proj
        return proj

    def forward(self, image, mask, target: Tuple[int, int], window=None, taps=None):
        return self.decoder.query(self.encode(image, mask, taps), target, window, self.prior(mask, target, window))

    def prior(self, mask: torch.Tensor, target: Tuple[int, int], window=None) -> Optional[torch.Tensor]:
        """The decoder's prior input for ``mask`` (the encoder's), or None when it takes none."""
        return prior_window(mask, target, window) if self.decoder.use_prior else None


# --------------------------------------------------------------------------
# multi-resolution inference (the reference procedure the engine reproduces)


def stage_sizes(h: int, w: int, base_long_side: int) -> List[Tuple[int, int]]:
    """Encoder sizes of each stage: first near base_long_side, doubling to full.

    Sizes keep the aspect ratio with rounding; the last stage is the full size.
    """
    long_side = max(h, w)
    if long_side <= base_long_side:
        return [(h, w)]
    n = max(1, math.ceil(math.log2(long_side / base_long_side) - 1e-9))
    sizes = []
    for k in range(n, 0, -1):
        f = 2.0 ** k
        # floor(x + 0.5), not Python's round-half-even: simple to mirror exactly in TS
        sizes.append((max(1, math.floor(h / f + 0.5)), max(1, math.floor(w / f + 0.5))))
    sizes.append((h, w))
    return sizes


@torch.no_grad()
def refine(model: CRM, image: torch.Tensor, coarse: torch.Tensor, chunk_rows: int = 256) -> torch.Tensor:
    """Dense multi-resolution refinement of one image.

    image [1,3,H,W] in [0,1]; coarse [1,1,h,w] in [0,1] at any size with the
    same aspect ratio. Returns full-size logits [1,1,H,W].
    Each stage encodes the image at its size with the previous stage's
    probability as mask, and is queried at the next stage's size.
    """
    H, W = image.shape[-2:]
    sizes = stage_sizes(H, W, model.cfg["base_long_side"])
    mask = resize(coarse, sizes[0])
    logits = None
    for k, size in enumerate(sizes):
        img = resize(image, size)
        if mask.shape[-2:] != size:
            mask = resize(mask, size)
        proj = model.encode(img, mask)
        target = sizes[k + 1] if k + 1 < len(sizes) else (H, W)
        rows = []
        for y0 in range(0, target[0], chunk_rows):
            hh = min(chunk_rows, target[0] - y0)
            win = (y0, 0, hh, target[1])
            rows.append(model.decoder.query(proj, target, win, model.prior(mask, target, win)))
        logits = torch.cat(rows, dim=2)
        mask = torch.sigmoid(logits)
    return logits


# --------------------------------------------------------------------------
# export helpers


def fold_bn(cb: ConvBN) -> Tuple[torch.Tensor, torch.Tensor]:
    """Conv+BN (eval mode) -> equivalent conv weight [O,I,kh,kw] and bias [O]."""
    bn = cb.bn
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    w = cb.conv.weight * scale.view(-1, 1, 1, 1)
    b = bn.bias - bn.running_mean * scale
    return w.detach().float().contiguous(), b.detach().float().contiguous()


def folded_tensors(model: CRM) -> Dict[str, torch.Tensor]:
    """All inference tensors, BatchNorm folded, named as the engine expects."""
    enc, dec = model.encoder, model.decoder
    out: Dict[str, torch.Tensor] = {}

    def put(name, cb):
        w, b = fold_bn(cb)
        out[f"{name}.weight"], out[f"{name}.bias"] = w, b

    put("stem", enc.stem)
    for i, stage in enumerate(enc.stages):
        for j, blk in enumerate(stage):
            put(f"stage{i}.{j}.conv1", blk.conv1)
            put(f"stage{i}.{j}.conv2", blk.conv2)
            if blk.down is not None:
                put(f"stage{i}.{j}.down", blk.down)
    put("proj2", enc.proj2)
    put("proj4", enc.proj4)
    put("proj8", enc.proj8)
    put("fuse", enc.fuse)
    out["mlp.feat.weight"] = dec.feat_proj.weight.detach().float().contiguous()
    out["mlp.feat.bias"] = dec.feat_proj.bias.detach().float().contiguous()
    pos = dec.pos_proj.weight if dec.prior_proj is None else torch.cat([dec.pos_proj.weight, dec.prior_proj.weight], 1)
    out["mlp.pos.weight"] = pos.detach().float().contiguous()  # [w0, pos_dims]
    for i, layer in enumerate(dec.hidden):
        out[f"mlp.hidden{i}.weight"] = layer.weight.detach().float().reshape(layer.weight.shape[0], -1).contiguous()
        out[f"mlp.hidden{i}.bias"] = layer.bias.detach().float().contiguous()
    out["mlp.out.weight"] = dec.out.weight.detach().float().reshape(1, -1).contiguous()
    out["mlp.out.bias"] = dec.out.bias.detach().float().contiguous()
    return out


def receptive_radius(cfg: Dict) -> int:
    """Receptive radius (input px) of one latent cell plus CAM's neighbour cell.

    Strips and tiles carry at least this halo so their results equal the
    whole-image result. Counted layer by layer: r grows by (k-1)/2*d*jump.
    """
    r, jump = 3, 2  # stem 7x7 stride 2
    r += 1 * jump; jump *= 2  # max-pool 3x3 stride 2
    cin = cfg["stem"]
    for st in cfg["stages"]:
        for b in range(st["blocks"]):
            s = st["stride"] if b == 0 else 1
            r += st["dilation"] * jump  # conv1 3x3
            jump *= s
            r += st["dilation"] * jump  # conv2 3x3
    # bilinear upsampling of stride-4/8 maps reads one neighbour each way
    r += jump
    r += 2  # fuse 3x3 at stride 2
    r += 2  # CAM reads the neighbouring latent cell
    return r


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
