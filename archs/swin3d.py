"""Video Swin Transformer: Swin3D-T, -S and -B.

Reference:
    Liu, Ning, Cao, Wei, Zhang, Lin & Hu, "Video Swin Transformer", CVPR 2022.
    Where the paper is silent the authors' code is followed
    (SwinTransformer/Video-Swin-Transformer,
    ``mmaction/models/backbones/swin_transformer.py``), and torchvision's
    ``torchvision/models/video/swin_transformer.py``, which ports the authors'
    Kinetics-400 weights, is the reference the tests hold these models equal to.

The network: a 2x4x4 patch embedding (a strided convolution, then LayerNorm);
four stages of Swin blocks of widths C, 2C, 4C, 8C, each stage but the last
ending in a patch merging that concatenates 2x2 spatial neighbours and projects
4 x width to 2 x width; a final LayerNorm, global average pool and linear
classifier (torchvision's head; the authors' ``I3DHead`` adds dropout 0.5 before
the classifier, which changes nothing in evaluation). A Swin block::

    x -+-> LN -> 3D window attention (shifted in odd blocks) -+-> (+) -+-> LN -> MLP -+-> (+) ->
       +------------------------------------------------------+        +--------------+

Attention is computed within non-overlapping windows of 8x7x7 tokens, with a
learned relative position bias per head ((2x8-1)(2x7-1)(2x7-1) entries).
Every other block shifts the windows by half a window (a cyclic roll) and masks
the pairs of tokens that the roll brought together from distant places (-100
on their scores, as the authors and torchvision do). The rules for clips of any
size are the authors':

- the clip is padded (zeros, after the end) to a multiple of the patch, each
  block's input to a multiple of its window, and each merging's input to even
  height and width, and the padding is cropped away after each attention;
- a dimension no larger than the window takes a window of its own size and is
  not shifted (at 224 the last stage is 7x7: no shift in space there; at 16
  frames the token grid is 8 long: no shift in time anywhere);
- the bias table is indexed by the relative positions of the full window,
  truncated to the smaller window's volume (``relative_position_index[:N, :N]``,
  in both references).

Attention runs in ``torch.nn.functional.scaled_dot_product_attention`` with the
bias (and the shift mask) as its additive mask; counted on the meta device it
shows its two matmuls.

Cost: the MACs of Video Swin's README (87.9, 165.9, 281.6 G for T, S, B) are for
the 32-frame view that its accuracy is for (32x224x224); torchvision's ``_ops``
(43.882, 82.841, 140.667 G) count the same model on 16 frames. The default input
here is the 32-frame view.

The model contract: :meth:`SwinTransformer3d.forward_features` returns the last
stage's tokens, layer-normed, as a map (B, 8C, T/2, H/32, W/32).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archs._blocks import ConvKind, DropPath, Mlp, VideoClassifier
from archs._registry import ClassesOption, Family, Shape, Stages, register_arch
from archs._vit import init_transformer_weights
from archs._weights import IMAGENET_MEAN, IMAGENET_STD, Layout, Preprocess, Pretrained, Protocol, register_protocol

__all__ = ["PatchMerging3d", "SwinBlock3d", "SwinConfig", "SwinTransformer3d", "WindowAttention3d"]

Triple = tuple[int, int, int]

_PATCH: Triple = (2, 4, 4)
_WINDOW: Triple = (8, 7, 7)
_MASKED = -100.0
"""The score given to pairs of tokens from different regions of a shifted window (the authors' value)."""


def _pad_to(x: Tensor, sizes: Sequence[int], multiples: Sequence[int], first_dim: int) -> Tensor:
    """``x`` zero-padded after the end of dims ``first_dim...`` to multiples of ``multiples``.

    ``torch.constant_pad_nd`` (what ``F.pad`` runs) is called directly: fvcore
    knows it costs nothing.
    """
    # int(): under torch.jit.trace (fvcore) sizes are traced tensors; the padding is a constant of the trace.
    extra = [(-int(n)) % m for n, m in zip(sizes, multiples, strict=True)]
    if not any(extra):
        return x
    trailing = x.ndim - first_dim - len(sizes)
    pads = [0, 0] * trailing
    for e in reversed(extra):
        pads += [0, e]
    return torch.constant_pad_nd(x, pads)


def _window_and_shift(window: Triple, shift: Triple, size: Sequence[int]) -> tuple[Triple, Triple]:
    """A dimension no larger than the window takes a window of its size and no shift (the authors' ``get_window_size``)."""
    w = tuple(s if s <= k else k for s, k in zip(size, window, strict=True))
    sh = tuple(0 if s <= k else d for s, k, d in zip(size, window, shift, strict=True))
    return (w[0], w[1], w[2]), (sh[0], sh[1], sh[2])


def _relative_position_index(window: Triple) -> Tensor:
    """The bias table's row for each pair of positions of a full window: (N, N), N = the window's volume."""
    coords = torch.stack(torch.meshgrid(*(torch.arange(k) for k in window), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # (N, N, 3), each in [-(k-1), k-1]
    t, h, w = window
    rel = rel + torch.tensor([t - 1, h - 1, w - 1])
    return rel[..., 0] * (2 * h - 1) * (2 * w - 1) + rel[..., 1] * (2 * w - 1) + rel[..., 2]


def _shift_mask(padded: Triple, window: Triple, shift: Triple, device: torch.device) -> Tensor:
    """The additive mask of a shifted window: (windows, N, N), -100 between tokens of different regions.

    After the cyclic roll, the last window along a shifted dimension holds two
    regions: tokens from the end and tokens rolled in from the start. Each token
    is labelled by its region in every dimension; pairs with different labels
    are masked. The labels are a constant of the shapes, built on the CPU from
    three short lists; only the comparison runs on ``device``.
    """

    def regions(n: int, k: int, s: int) -> Tensor:
        return torch.tensor([0 if i < n - k or not s else (1 if i < n - s else 2) for i in range(n)])

    rt, rh, rw = (regions(n, k, s) for n, k, s in zip(padded, window, shift, strict=True))
    label = rt[:, None, None] * 9 + rh[None, :, None] * 3 + rw[None, None, :]
    (t, h, w), (kt, kh, kw) = padded, window
    label = label.reshape(t // kt, kt, h // kh, kh, w // kw, kw).permute(0, 2, 4, 1, 3, 5).reshape(-1, kt * kh * kw)
    label = label.to(device=device, dtype=torch.float32)
    return (label[:, :, None] != label[:, None, :]).to(torch.float32) * _MASKED


class WindowAttention3d(nn.Module):
    """Multi-head self-attention within (shifted) 3D windows, with a relative position bias.

    Args:
        dim: Token width.
        heads: Attention heads.
        window: Window (t, h, w) before adapting to small inputs.
        shift: Shift (t, h, w) of this block's windows (0 for unshifted blocks).
    """

    work_kind = "attention"

    def __init__(self, dim: int, heads: int, window: Triple, shift: Triple) -> None:
        super().__init__()
        self.heads = heads
        self.window = window
        self.shift = shift
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        t, h, w = window
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * t - 1) * (2 * h - 1) * (2 * w - 1), heads))
        self.register_buffer("relative_position_index", _relative_position_index(window), persistent=False)
        self.relative_position_index: Tensor

    def _bias(self, volume: int) -> Tensor:
        """(heads, N, N) bias for a window of ``volume`` tokens (the full window's index, truncated)."""
        index = self.relative_position_index[:volume, :volume].reshape(-1)
        return self.relative_position_bias_table[index].reshape(volume, volume, -1).permute(2, 0, 1)

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, H, W, C) -> (B, T, H, W, C)."""
        b, t, h, w, c = x.shape
        window, shift = _window_and_shift(self.window, self.shift, (t, h, w))
        x = _pad_to(x, (t, h, w), window, first_dim=1)
        tp, hp, wp = x.shape[1:4]
        shifted = any(shift)
        if shifted:
            x = torch.roll(x, shifts=(-shift[0], -shift[1], -shift[2]), dims=(1, 2, 3))
        (kt, kh, kw), grid = window, (tp // window[0], hp // window[1], wp // window[2])
        volume, windows = kt * kh * kw, grid[0] * grid[1] * grid[2]
        x = x.reshape(b, grid[0], kt, grid[1], kh, grid[2], kw, c).permute(0, 1, 3, 5, 2, 4, 6, 7)
        x = x.reshape(b, windows, volume, c)
        head_dim = c // self.heads
        q, k, v = self.qkv(x).reshape(b, windows, volume, 3, self.heads, head_dim).permute(3, 0, 1, 4, 2, 5).unbind(0)
        bias = self._bias(volume)  # (heads, N, N), broadcast over batch and windows
        if shifted:
            bias = bias + _shift_mask((tp, hp, wp), window, shift, x.device)[:, None]  # (windows, heads, N, N)
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        x = self.proj(x.transpose(2, 3).reshape(b, windows, volume, c))
        x = x.reshape(b, grid[0], grid[1], grid[2], kt, kh, kw, c).permute(0, 1, 4, 2, 5, 3, 6, 7)
        x = x.reshape(b, tp, hp, wp, c)
        if shifted:
            x = torch.roll(x, shifts=shift, dims=(1, 2, 3))
        return x[:, :t, :h, :w] if (tp, hp, wp) != (t, h, w) else x


class SwinBlock3d(nn.Module):
    """LN -> window attention -> residual, LN -> MLP (4x) -> residual, on (B, T, H, W, C) tokens."""

    def __init__(self, dim: int, heads: int, window: Triple, shift: Triple, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention3d(dim, heads, window, shift)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging3d(nn.Module):
    """2x2 spatial neighbours concatenated (width x4), LayerNorm, Linear to width x2 without bias; time is kept.

    The concatenation order is the authors' and torchvision's: (0, 0), (1, 0),
    (0, 1), (1, 1) as (row, column) offsets. Odd heights and widths are padded.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x = _pad_to(x, x.shape[2:4], (2, 2), first_dim=2)
        x = torch.cat((x[:, :, 0::2, 0::2], x[:, :, 1::2, 0::2], x[:, :, 0::2, 1::2], x[:, :, 1::2, 1::2]), dim=-1)
        return self.reduction(self.norm(x))


class PatchEmbed3d(nn.Module):
    """The clip, padded to whole patches, cut into 2x4x4 patches by a strided convolution, then LayerNorm."""

    work_kind = "patch_embedding"

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv3d(3, dim, _PATCH, _PATCH)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, T, H, W) -> (B, T/2, H/4, W/4, C)."""
        x = self.proj(_pad_to(x, x.shape[2:], _PATCH, first_dim=2))
        return self.norm(x.permute(0, 2, 3, 4, 1))


class SwinStage(nn.Module):
    """The blocks of one width, alternately unshifted and shifted by half a window, then an optional patch merging."""

    def __init__(self, dim: int, depth: int, heads: int, drop_paths: Sequence[float], downsample: bool) -> None:
        super().__init__()
        half: Triple = (_WINDOW[0] // 2, _WINDOW[1] // 2, _WINDOW[2] // 2)
        self.blocks = nn.Sequential(
            *(SwinBlock3d(dim, heads, _WINDOW, (0, 0, 0) if i % 2 == 0 else half, drop_paths[i]) for i in range(depth))
        )
        self.downsample = PatchMerging3d(dim) if downsample else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(x)
        return x if self.downsample is None else self.downsample(x)


def _bias_table(module: nn.Module) -> tuple[Tensor, ...]:
    """The learned table of a window attention (drawn where the initialisation walk meets it), none elsewhere."""
    return (module.relative_position_bias_table,) if isinstance(module, WindowAttention3d) else ()


class SwinTransformer3d(VideoClassifier):
    """A Video Swin Transformer (see the module docstring).

    Args:
        embed: Width C of the first stage.
        depths: Blocks of each stage.
        heads: Attention heads of each stage.
        num_classes: Logits.
        drop_path: Stochastic depth of the last block; it grows linearly from 0 at the first.
    """

    def __init__(
        self, embed: int, depths: Sequence[int], heads: Sequence[int], num_classes: int = 400, drop_path: float = 0.1
    ) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed3d(embed)
        total = sum(depths)
        rates = [drop_path * i / (total - 1) for i in range(total)] if total > 1 else [0.0]
        stages = []
        start = 0
        for i, (depth, n_heads) in enumerate(zip(depths, heads, strict=True)):
            last = i == len(depths) - 1
            stage_rates = rates[start : start + depth]
            stages.append(SwinStage(embed * 2**i, depth, n_heads, stage_rates, downsample=not last))
            start += depth
        self.layers = nn.Sequential(*stages)
        self.num_features = embed * 2 ** (len(depths) - 1)
        self.norm = nn.LayerNorm(self.num_features)
        self.head = nn.Linear(self.num_features, num_classes)
        self.num_classes = num_classes
        init_transformer_weights(self, module_tables=_bias_table)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.norm(self.layers(self.patch_embed(x))).permute(0, 4, 1, 2, 3)

    def forward_head(self, x: Tensor) -> Tensor:
        return self.head(x.mean(dim=(2, 3, 4)))

    @property
    def classifier(self) -> nn.Module:
        return self.head


@dataclass(frozen=True)
class SwinConfig(ClassesOption):
    """One Video Swin: what :class:`SwinTransformer3d` is built from and what its spec says.

    Attributes:
        embed: Width of the first stage (96 for T and S, 128 for B).
        depths: Blocks per stage.
        heads: Heads per stage.
        drop_path: Stochastic depth of the last block (training only; torchvision's 0.1).
        num_classes: Logits (an option).
    """

    embed: int
    depths: tuple[int, ...]
    heads: tuple[int, ...]
    drop_path: float = 0.1
    num_classes: int = 400

    @property
    def default_input(self) -> Shape:
        """The 32-frame view of the published accuracy (Video Swin's ``clip_len=32``, ``frame_interval=2``)."""
        return (3, 32, 224, 224)

    @property
    def min_input(self) -> Shape:
        """One patch in time; in space the total stride (4 x 2^3 = 32). Smaller clips are padded, so this is a floor
        of usefulness rather than of validity: no stage then works on padding alone."""
        spatial = _PATCH[1] * 2 ** (len(self.depths) - 1)
        return (3, _PATCH[0], spatial, spatial)

    @property
    def stages(self) -> Stages:
        """The patch embedding and the four stages: all attend over space and time (3D windows)."""
        names = ("patch_embed", *(f"stage{i + 1}" for i in range(len(self.depths))))
        return tuple((name, str(ConvKind.THREE_D)) for name in names)

    def build(self) -> SwinTransformer3d:
        return SwinTransformer3d(self.embed, self.depths, self.heads, self.num_classes, self.drop_path)


# ------------------------------------------------------------------------------- weights
#
# torchvision's ``swin3d_t/s/b`` (``Swin3D_*_Weights.KINETICS400_V1``, and ``Swin3D_B_Weights.KINETICS400_IMAGENET22K_V1``,
# ported from Video Swin): a flat ``features`` list holds the stages (even indices) and the patch mergings (odd
# ones); the MLP is a numbered Sequential; the relative position index is a persistent buffer there (ours is
# derived, so that tensor is dropped). Their preprocessing (``transforms``): short side resized to 256, a 224 centre
# crop, ImageNet's mean and std; 32-frame clips at 15 fps (``_docs``: ``frame_rate=15``, ``clip_len=32``: every
# 2nd frame of a 30 fps video, Video Swin's ``frame_interval=2``); torchvision evaluated 12 clips x 1 crop per video
# (``clips_per_video=12``), the authors 4 clips x 3 crops (Video Swin README; config ``test_pipeline``: ``num_clips=4``,
# ``ThreeCrop``, short side 224).

TORCHVISION_KEYS = r"^patch_embed\.(proj|norm)\.|^features\.\d+\.(\d+\.attn\.relative_position_bias_table|reduction\.)"
"""A regular expression torchvision's Swin3D keys match."""


def torchvision_key(key: str) -> str:
    """Our state-dict key -> torchvision's (``layers.1.blocks.0.mlp.fc1.weight`` -> ``features.2.0.mlp.0.weight``)."""
    key = re.sub(r"^layers\.(\d+)\.blocks\.(\d+)\.", lambda m: f"features.{2 * int(m[1])}.{m[2]}.", key)
    key = re.sub(r"^layers\.(\d+)\.downsample\.", lambda m: f"features.{2 * int(m[1]) + 1}.", key)
    return re.sub(r"\.mlp\.fc([12])\.", lambda m: f".mlp.{0 if m[1] == '1' else 3}.", key)


def prepare_torchvision(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """torchvision's state dict without its relative position indices (a constant of the window, derived here)."""
    return {k: v for k, v in state.items() if not k.endswith(".relative_position_index")}


VIDEO_SWIN_PROTOCOL = register_protocol(
    Protocol(
        "video_swin",
        4,
        3,
        source="SwinTransformer/Video-Swin-Transformer configs/recognition/swin/*_kinetics400_*.py test_pipeline "
        "(SampleFrames num_clips=4, ThreeCrop 224), the protocol of its README's accuracies",
    )
)
TORCHVISION_SWIN_PROTOCOL = register_protocol(
    Protocol(
        "torchvision_swin3d",
        12,
        1,
        source="torchvision's Swin3D weights docs (accuracy 'estimated on video-level with frame_rate=15, "
        "clips_per_video=12, and clip_len=32', one centre crop)",
    )
)
VIDEO_SWIN_PREPROCESS = Preprocess(IMAGENET_MEAN, IMAGENET_STD, resize=224, crop=224, frames=32, frame_stride=2)
"""Video Swin's test pipeline: 32 frames every 2nd (``clip_len=32, frame_interval=2``), short side 224, 224 crops,
ImageNet's mean and std (``img_norm_cfg``: 123.675/116.28/103.53 and 58.395/57.12/57.375 on 0..255)."""
TORCHVISION_SWIN_PREPROCESS = Preprocess(IMAGENET_MEAN, IMAGENET_STD, resize=256, crop=224, frames=32, frame_stride=2)
"""torchvision's Swin3D ``transforms``: short side 256, a 224 centre crop, ImageNet's mean and std; 32 frames at
15 fps (every 2nd frame of a 30 fps video)."""
_TORCHVISION_URLS = {
    "swin3d_t": "https://download.pytorch.org/models/swin3d_t-7615ae03.pth",
    "swin3d_s": "https://download.pytorch.org/models/swin3d_s-da41c237.pth",
    # KINETICS400_V1 (ImageNet-1K); KINETICS400_IMAGENET22K_V1 (swin3d_b_22k-7c6ae6fa.pth) is the same layout
    "swin3d_b": "https://download.pytorch.org/models/swin3d_b_1k-24f7c7c6.pth",
}


def _pretrained(name: str) -> Callable[[SwinConfig], Pretrained]:
    """Video Swin's preprocessing and protocol; torchvision's layout (its ports of the authors' weights)."""
    layout = Layout(
        "torchvision",
        torchvision_key,
        TORCHVISION_SWIN_PREPROCESS,
        TORCHVISION_SWIN_PROTOCOL.name,
        prepare=prepare_torchvision,
        pattern=TORCHVISION_KEYS,
        url=_TORCHVISION_URLS[name],
    )
    return lambda config: Pretrained(VIDEO_SWIN_PREPROCESS, VIDEO_SWIN_PROTOCOL.name, (layout,))


_SWIN = Family("swin3d", color="#17803d")
_PAPER = "Liu et al., Video Swin Transformer, CVPR 2022"


@register_arch(
    family=_SWIN,
    paper=_PAPER,
    description="shifted 8x7x7 windows, C = 96, depths 2-2-6-2",
    pretrained=_pretrained("swin3d_t"),
)
def swin3d_t(**options: Any) -> SwinConfig:
    """Swin3D-T (torchvision ``swin3d_t``: 28,158,070 parameters)."""
    return SwinConfig(96, (2, 2, 6, 2), (3, 6, 12, 24)).with_options(**options)


@register_arch(
    family=_SWIN,
    paper=_PAPER,
    description="shifted 8x7x7 windows, C = 96, depths 2-2-18-2",
    pretrained=_pretrained("swin3d_s"),
)
def swin3d_s(**options: Any) -> SwinConfig:
    """Swin3D-S (torchvision ``swin3d_s``: 49,816,678 parameters)."""
    return SwinConfig(96, (2, 2, 18, 2), (3, 6, 12, 24)).with_options(**options)


@register_arch(
    family=_SWIN,
    paper=_PAPER,
    description="shifted 8x7x7 windows, C = 128, depths 2-2-18-2",
    pretrained=_pretrained("swin3d_b"),
)
def swin3d_b(**options: Any) -> SwinConfig:
    """Swin3D-B (torchvision ``swin3d_b``: 88,048,984 parameters)."""
    return SwinConfig(128, (2, 2, 18, 2), (4, 8, 16, 32)).with_options(**options)
