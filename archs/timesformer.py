"""TimeSformer: a ViT-B/16 on every frame with divided space-time attention.

Reference:
    Bertasius, Wang & Torresani, "Is Space-Time Attention All You Need for
    Video Understanding?", ICML 2021. The network is the authors'
    ``timesformer/models/vit.py`` (facebookresearch/TimeSformer,
    ``attention_type='divided_space_time'``, the ``TimeSformer_divST_8x32_224``
    configuration) and Hugging Face's ``TimesformerForVideoClassification``
    (default config), which compute the same function.

The network::

    clip (B, 3, T, H, W) -> Conv2d 16x16 / stride 16 on every frame -> T x (h*w) patch tokens, D = 768
      + a class token; + learned spatial positions (1 + h*w); + learned time positions (T)
      -> 12 divided blocks -> LayerNorm -> the class token -> head (Linear)

A divided block::

    patch tokens -+-> temporal_norm1 -> temporal_attn (each position over its T frames) -> temporal_fc -+
                  +--------------------------------------------------------------------------------- + = xt
    xt, class token repeated per frame -> norm1 -> attn (each frame over its 1 + h*w tokens)
      -> patch outputs added to xt; class outputs averaged over frames, added to the class token
      -> + mlp(norm2(.)) as in any pre-norm block

Tokens are kept as the references keep them: the class token, then the patch
tokens ordered (h, w, t), time fastest. 121,566,352 parameters with 400
classes; LayerNorm epsilon 1e-6 (both references).

The model contract: TimeSformer's classifier reads only the class token, which
attention has mixed with every patch; no map of patch tokens determines the
logits. :meth:`TimeSformer.forward_features` therefore returns the final-normed
class token as a 1x1x1 map, (B, 768, 1, 1, 1), and the head is the linear
layer on it.

Inputs: the tables are sized to the paper's clip, 8x224x224 (8 frames of 14x14
patches), or to the ``frames`` and ``size`` options (TimeSformer-HR's weights are
16x448). Other clips, of at least one frame of 16x16, are accepted as the
authors' code accepts them: the spatial table (without the class entry) and
the time table are resized to the token grid by nearest-neighbour
interpolation (``F.interpolate(..., mode='nearest')``, ``vit.py``). Hugging
Face's embeddings do the same, but its blocks take the frame count and width
from the config, so it only runs at the config's clip.

Checkpoints (:func:`archs.create_model` ``weights=``): a Hugging Face
``save_pretrained`` folder of ``TimesformerForVideoClassification`` (layout
``huggingface``), or the authors' ``.pyth`` files (layout ``timesformer``,
``{"model_state": ...}`` with ``model.`` before our keys).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archs._blocks import ConvKind, VideoClassifier
from archs._registry import Family, Stages, register_arch
from archs._vit import Attention, Mlp, PatchEmbed, ViTConfig, huggingface_layer_rules, init_vit_weights, key_map
from archs._weights import Layout, Preprocess, Pretrained, Protocol, identity, register_protocol

__all__ = ["DividedBlock", "TemporalProjection", "TimeSformer", "TimeSformerConfig"]

EPS = 1e-6
"""LayerNorm epsilon of both references."""

_PAPER = "Bertasius et al., Is Space-Time Attention All You Need for Video Understanding?, ICML 2021"


class TemporalProjection(nn.Linear):
    """``temporal_fc``, the linear layer on temporal attention's output: attention's work, like its ``proj``."""

    work_kind = "attention"


class DividedBlock(nn.Module):
    """Divided space-time attention, then the MLP (see the module docstring); names as the authors' ``Block``."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, eps: float = EPS) -> None:
        super().__init__()
        self.temporal_norm1 = nn.LayerNorm(dim, eps=eps)
        self.temporal_attn = Attention(dim, heads, qkv_bias=True)
        self.temporal_fc = TemporalProjection(dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads, qkv_bias=True)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, mlp_dim)

    def forward(self, x: Tensor, frames: int) -> Tensor:
        """``x``: (B, 1 + S*T, D), the class token then the patch tokens ordered (space, time)."""
        b, n, d = x.shape
        t = frames
        s = (n - 1) // t
        cls, patches = x[:, :1], x[:, 1:]
        xt = patches.reshape(b * s, t, d)
        xt = patches + self.temporal_fc(self.temporal_attn(self.temporal_norm1(xt)).reshape(b, s * t, d))

        xs = xt.reshape(b, s, t, d).transpose(1, 2).reshape(b * t, s, d)
        xs = torch.cat((cls.expand(b, t, d).reshape(b * t, 1, d), xs), dim=1)
        res = self.attn(self.norm1(xs))
        res_cls = res[:, 0].reshape(b, t, d).mean(1, keepdim=True)
        res_patches = res[:, 1:].reshape(b, t, s, d).transpose(1, 2).reshape(b, s * t, d)
        x = torch.cat((cls + res_cls, xt + res_patches), dim=1)
        return x + self.mlp(self.norm2(x))


class TimeSformer(VideoClassifier):
    """TimeSformer with divided space-time attention (see the module docstring).

    Args:
        dim: Token width D.
        depth: Blocks.
        heads: Attention heads.
        mlp_dim: Hidden width of each MLP.
        frames: Frames of the clip the time table is sized for.
        size: Side of the frames the spatial table is sized for.
        patch: Patch side.
        num_classes: Logits.
    """

    def __init__(
        self,
        dim: int = 768,
        depth: int = 12,
        heads: int = 12,
        mlp_dim: int = 3072,
        frames: int = 8,
        size: int = 224,
        patch: int = 16,
        num_classes: int = 400,
    ) -> None:
        super().__init__()
        side = size // patch
        self.grid = (frames, side, side)
        self.patch_embed = PatchEmbed(3, dim, patch, conv_dim=2)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + side * side, dim))
        self.time_embed = nn.Parameter(torch.zeros(1, frames, dim))
        self.blocks = nn.ModuleList(DividedBlock(dim, heads, mlp_dim) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=EPS)
        self.head = nn.Linear(dim, num_classes)
        self.num_classes = num_classes
        self.num_features = dim
        init_vit_weights(self)
        if not self.cls_token.is_meta:
            for p in (self.cls_token, self.pos_embed, self.time_embed):
                nn.init.normal_(p, std=0.02)

    def _space_table(self, h: int, w: int) -> Tensor:
        """The spatial table of the patches (1, h*w, D), resized by nearest neighbour when the grid is not the paper's."""
        table = self.pos_embed[:, 1:]
        _, h0, w0 = self.grid
        if (h, w) == (h0, w0):
            return table
        grid = table.transpose(1, 2).reshape(1, -1, h0, w0)
        return F.interpolate(grid, size=(h, w), mode="nearest").flatten(2).transpose(1, 2)

    def _time_table(self, t: int) -> Tensor:
        """The time table (1, t, D), resized by nearest neighbour when the clip is not the paper's."""
        if t == self.grid[0]:
            return self.time_embed
        return F.interpolate(self.time_embed.transpose(1, 2), size=t, mode="nearest").transpose(1, 2)

    def forward_features(self, x: Tensor) -> Tensor:
        grid = self.patch_embed(x)  # (B, D, T, h, w)
        b, d, t, h, w = grid.shape
        # (B, D, T, h, w) -> (B, h, w, T, D): space-major, time fastest.
        patches = grid.permute(0, 3, 4, 2, 1).reshape(b, h * w, t, d)
        patches = patches + self._space_table(h, w)[:, :, None] + self._time_table(t)[:, None]
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(b, 1, d)
        tokens = torch.cat((cls, patches.reshape(b, h * w * t, d)), dim=1)
        for block in self.blocks:
            tokens = block(tokens, t)
        return self.norm(tokens[:, 0]).reshape(b, d, 1, 1, 1)

    def forward_head(self, x: Tensor) -> Tensor:
        return self.head(x.flatten(1))

    @property
    def classifier(self) -> nn.Module:
        return self.head


@dataclass(frozen=True)
class TimeSformerConfig(ViTConfig):
    """One TimeSformer (:class:`archs._vit.ViTConfig`): ViT-B/16's sizes by default.

    The tables are sized by default for the paper's clip, 8x224x224
    (``TimeSformer_divST_8x32_224.yaml``); other ``frames`` and ``size`` fit other
    checkpoints (TimeSformer-HR is 16x448, TimeSformer-L 96x224). The smallest
    clip is one frame of one patch, 1x16x16.
    """

    dim: int = 768
    depth: int = 12
    heads: int = 12
    mlp_dim: int = 3072
    frames: int = 8
    size: int = 224

    model = TimeSformer
    min_frames = 1

    @property
    def stages(self) -> Stages:
        """The patch embedding is 2D (per frame); the blocks factorise space and time as separable convolutions do ("sep")."""
        return (("patch_embed", ConvKind.TWO_D), ("blocks", ConvKind.SEPARABLE))


# ---------------------------------------------------------------------------------------- checkpoint layouts

_HF_LAYER = "timesformer.encoder.layer"

to_huggingface = key_map(
    [
        (r"(cls_token)", r"timesformer.embeddings.\1"),
        (r"pos_embed", r"timesformer.embeddings.position_embeddings"),
        (r"time_embed", r"timesformer.embeddings.time_embeddings"),
        (r"patch_embed\.proj\.(\w+)", r"timesformer.embeddings.patch_embeddings.projection.\1"),
        (r"blocks\.(\d+)\.temporal_norm1\.(\w+)", _HF_LAYER + r".\1.temporal_layernorm.\2"),
        (r"blocks\.(\d+)\.temporal_attn\.qkv\.(\w+)", _HF_LAYER + r".\1.temporal_attention.attention.qkv.\2"),
        (r"blocks\.(\d+)\.temporal_attn\.proj\.(\w+)", _HF_LAYER + r".\1.temporal_attention.output.dense.\2"),
        (r"blocks\.(\d+)\.temporal_fc\.(\w+)", _HF_LAYER + r".\1.temporal_dense.\2"),
        (r"blocks\.(\d+)\.attn\.qkv\.(\w+)", _HF_LAYER + r".\1.attention.attention.qkv.\2"),
        *huggingface_layer_rules(_HF_LAYER),
        (r"norm\.(\w+)", r"timesformer.layernorm.\1"),
        (r"head\.(\w+)", r"classifier.\1"),
    ]
)
"""Our keys -> ``TimesformerForVideoClassification``'s."""

HF_PATTERN = r"^timesformer\.(embeddings|encoder|layernorm)\."
"""Keys of a Hugging Face TimeSformer checkpoint."""
ORIGINAL_PATTERN = r"^(model\.)?blocks\.\d+\.temporal_(attn|fc|norm1)\."
"""Keys of the authors' checkpoints (``{"model_state": ...}``, ``model.`` before our keys)."""


# ---------------------------------------------------------------------------------------- preprocessing, protocol

# The authors' Kinetics-400 test (configs/Kinetics/TimeSformer_divST_8x32_224.yaml): TEST.NUM_ENSEMBLE_VIEWS 1,
# TEST.NUM_SPATIAL_CROPS 3 -- one clip in the middle of the video, 3 crops along the long side, softmax averaged.
TIMESFORMER_PROTOCOL = register_protocol(
    Protocol(
        "timesformer",
        1,
        3,
        source="facebookresearch/TimeSformer configs/Kinetics/TimeSformer_divST_8x32_224.yaml "
        "(TEST.NUM_ENSEMBLE_VIEWS 1, TEST.NUM_SPATIAL_CROPS 3)",
    )
)

PREPROCESS = Preprocess((0.45, 0.45, 0.45), (0.225, 0.225, 0.225), resize=224, crop=224, frames=8, frame_stride=32)
"""TimeSformer's Kinetics-400 test: the PySlowFast defaults it inherits (``DATA.MEAN`` 0.45, ``DATA.STD`` 0.225),
the short side resized to the 224 test crop (3-crop testing), 8 frames taken every 32nd (``NUM_FRAMES 8``,
``SAMPLING_RATE 32`` at 30 fps). Hugging Face's processor for facebook/timesformer-base-finetuned-k400 says the
same (mean 0.45, std 0.225, ``shortest_edge`` 224, crop 224)."""


def _pretrained(config: TimeSformerConfig) -> Pretrained:
    """The authors' preprocessing and protocol (at the tables' clip), and the two checkpoint layouts."""
    preprocess = replace(PREPROCESS, resize=config.size, crop=config.size, frames=config.frames)
    protocol = TIMESFORMER_PROTOCOL.name
    layouts = (
        Layout("huggingface", to_huggingface, preprocess, protocol, pattern=HF_PATTERN),
        Layout("timesformer", identity, preprocess, protocol, pattern=ORIGINAL_PATTERN),
    )
    return Pretrained(preprocess, protocol, layouts)


_TIMESFORMER = Family("timesformer", color="#7b4173")


@register_arch(
    family=_TIMESFORMER,
    paper=_PAPER,
    description="ViT-B/16 per frame, divided space-time attention",
    pretrained=_pretrained,
)
def timesformer(**options: Any) -> TimeSformerConfig:
    """TimeSformer (divided space-time), 8x224: ViT-B/16, 12 blocks (``TimeSformer_divST_8x32_224``)."""
    return TimeSformerConfig().with_options(**options)
