"""VideoMAE's video ViTs: ViT-S/16 and ViT-B/16 on tubelets of 2x16x16, fine-tuned for classification.

Reference:
    Tong, Song, Wang & Wang, "VideoMAE: Masked Autoencoders are Data-Efficient
    Learners for Self-Supervised Video Pre-Training", NeurIPS 2022. The network
    is the authors' ``modeling_finetune.py`` (MCG-NJU/VideoMAE,
    ``vit_small_patch16_224`` and ``vit_base_patch16_224``) and Hugging Face's
    ``VideoMAEForVideoClassification``, which compute the same function up to
    LayerNorm epsilons (below).

The network::

    clip (B, 3, T, H, W) -> Conv3d 2x16x16 / stride 2x16x16 -> tokens (B, T/2 * H/16 * W/16, D)
      + fixed sinusoidal position table (not learned)
      -> 12 pre-norm blocks (attention with q and v biases, no k bias; MLP 4D, GELU)
      -> mean over tokens -> fc_norm (LayerNorm) -> head (Linear)

There is no class token and no final norm before the pooling
(``use_mean_pooling``). ViT-S: D = 384, 6 heads, MLP 1536; ViT-B: D = 768, 12
heads, MLP 3072.

Parameters: 22,033,936 (S) and 86,534,800 (B) with 400 classes, equal to
``VideoMAEForVideoClassification`` of transformers 5.25 and to the authors'
model. (transformers 5.17 had a key bias as well, +12 D; a key bias does not
change the output, see :class:`archs._vit.Attention`.)

LayerNorm epsilon: 1e-6 everywhere, as the authors' code (``partial(nn.LayerNorm,
eps=1e-6)``), which trained the weights. Hugging Face's configs say 1e-12 for
the blocks and its ``fc_norm`` uses PyTorch's 1e-5; the logits differ by a few
parts in a million.

The model contract: :meth:`VideoMAE.forward_features` returns the last
block's tokens as their grid, (B, D, T/2, H/16, W/16); the head averages the
grid, which is the reference's mean over tokens.

Inputs: the position table is sized to the paper's clip, 16x224x224 (8x14x14
tokens). Any other clip of at least one tubelet (2x16x16) is accepted with the
table interpolated to its token grid: bicubic in space (``align_corners=False``),
as VideoMAE's ``run_class_finetuning.py`` interpolates position embeddings for
another resolution, and linear in time, as the VideoMAE V2 fine-tuning code
does for another clip length. At 16x224 no interpolation happens.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from archs._blocks import VideoClassifier
from archs._registry import Family, Shape, Stages, register_arch
from archs._vit import Block, PatchEmbed, init_vit_weights, sinusoid_table

__all__ = ["VideoMAE", "VideoMAEConfig"]

EPS = 1e-6
"""LayerNorm epsilon of the authors' ``modeling_finetune.py``."""

_PAPER = "Tong et al., VideoMAE: Masked Autoencoders are Data-Efficient Learners, NeurIPS 2022"


class VideoMAE(VideoClassifier):
    """VideoMAE's fine-tuning ViT (see the module docstring).

    Args:
        dim: Token width D.
        depth: Blocks.
        heads: Attention heads.
        mlp_dim: Hidden width of each MLP.
        frames: Frames of the clip the position table is sized for.
        size: Side of the frames the position table is sized for.
        patch: Spatial patch side.
        tubelet: Frames per tubelet.
        num_classes: Logits.
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        heads: int,
        mlp_dim: int,
        frames: int = 16,
        size: int = 224,
        patch: int = 16,
        tubelet: int = 2,
        num_classes: int = 400,
    ) -> None:
        super().__init__()
        self.grid = (frames // tubelet, size // patch, size // patch)
        self.patch_embed = PatchEmbed(3, dim, patch, tubelet)
        self.pos_embed: Tensor
        self.register_buffer("pos_embed", sinusoid_table(self.grid[0] * self.grid[1] * self.grid[2], dim), False)
        self.blocks = nn.Sequential(*(Block(dim, heads, mlp_dim, EPS, qv_bias=True) for _ in range(depth)))
        self.fc_norm = nn.LayerNorm(dim, eps=EPS)
        self.head = nn.Linear(dim, num_classes)
        self.num_classes = num_classes
        self.num_features = dim
        init_vit_weights(self)

    def position_table(self, grid: tuple[int, int, int]) -> Tensor:
        """The position table (1, t*h*w, D) for a token grid; interpolated when it is not the paper's (module docstring)."""
        if grid == self.grid:
            return self.pos_embed
        t0, h0, w0 = self.grid
        t, h, w = grid
        table = self.pos_embed.reshape(t0, h0, w0, -1).permute(0, 3, 1, 2)  # (t0, D, h0, w0)
        if (h, w) != (h0, w0):
            table = F.interpolate(table, size=(h, w), mode="bicubic", align_corners=False)
        table = table.permute(2, 3, 1, 0).reshape(h * w, -1, t0)  # (h*w, D, t0)
        if t != t0:
            table = F.interpolate(table, size=t, mode="linear", align_corners=False)
        return table.permute(2, 0, 1).reshape(1, t * h * w, -1)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x)  # (B, D, t, h, w)
        b, d, t, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2) + self.position_table((t, h, w)).to(x.dtype)
        tokens = self.blocks(tokens)
        return tokens.transpose(1, 2).reshape(b, d, t, h, w)

    def forward_head(self, x: Tensor) -> Tensor:
        return self.head(self.fc_norm(x.flatten(2).mean(2)))

    @property
    def classifier(self) -> nn.Module:
        return self.head


@dataclass(frozen=True)
class VideoMAEConfig:
    """One VideoMAE ViT: what :class:`VideoMAE` is built from and what its spec says.

    Attributes:
        dim: Token width.
        depth: Blocks.
        heads: Attention heads.
        mlp_dim: MLP hidden width.
        frames: Frames of the paper's clip (the position table's).
        size: Side of the paper's frames.
        num_classes: Logits (an option).
    """

    dim: int
    depth: int
    heads: int
    mlp_dim: int
    frames: int = 16
    size: int = 224
    num_classes: int = 400

    def with_options(self, *, num_classes: int | None = None) -> VideoMAEConfig:
        """The options every VideoMAE takes; any other keyword is a TypeError."""
        return replace(self, num_classes=self.num_classes if num_classes is None else num_classes)

    @property
    def default_input(self) -> Shape:
        """The paper's clip: 16 frames of 224x224 (the fine-tuning scripts' ``--num_frames 16 --input_size 224``)."""
        return (3, self.frames, self.size, self.size)

    @property
    def min_input(self) -> Shape:
        """One tubelet, 2x16x16 (one token; the position table interpolated to it)."""
        return (3, 2, 16, 16)

    @property
    def stages(self) -> Stages:
        return ()

    def build(self) -> VideoMAE:
        return VideoMAE(
            self.dim, self.depth, self.heads, self.mlp_dim, self.frames, self.size, num_classes=self.num_classes
        )


_VIDEOMAE = Family("videomae", color="#bcbd22")


@register_arch(family=_VIDEOMAE, paper=_PAPER, description="ViT-S/16 on 2x16x16 tubelets, mean-pooled (VideoMAE)")
def videomae_vit_s(**options: Any) -> VideoMAEConfig:
    """VideoMAE ViT-S/16: D 384, 6 heads, MLP 1536, 12 blocks (``vit_small_patch16_224``)."""
    return VideoMAEConfig(384, 12, 6, 1536).with_options(**options)


@register_arch(family=_VIDEOMAE, paper=_PAPER, description="ViT-B/16 on 2x16x16 tubelets, mean-pooled (VideoMAE)")
def videomae_vit_b(**options: Any) -> VideoMAEConfig:
    """VideoMAE ViT-B/16: D 768, 12 heads, MLP 3072, 12 blocks (``vit_base_patch16_224``; HF's default config)."""
    return VideoMAEConfig(768, 12, 12, 3072).with_options(**options)
