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
tokens), or to the ``frames`` and ``size`` options. Any other clip of at least one tubelet (2x16x16) is accepted with the
table interpolated to its token grid: bicubic in space (``align_corners=False``),
as VideoMAE's ``run_class_finetuning.py`` interpolates position embeddings for
another resolution, and linear in time, as the VideoMAE V2 fine-tuning code
does for another clip length. At the table's own clip no interpolation happens.

Checkpoints (:func:`archs.create_model` ``weights=``): a Hugging Face
``save_pretrained`` folder of ``VideoMAEForVideoClassification`` (layout
``huggingface``; its separate query/key/value projections are fused into our
``qkv``), or the authors' fine-tuned checkpoints (layout ``videomae``,
``{"module": state}``, whose keys are ours).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archs._blocks import ConvKind, VideoClassifier
from archs._registry import Family, Stages, register_arch
from archs._vit import Block, PatchEmbed, ViTConfig, huggingface_layer_rules, init_vit_weights, key_map, sinusoid_table
from archs._weights import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Layout,
    Preprocess,
    Pretrained,
    Protocol,
    identity,
    register_protocol,
)

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
        # contiguous: a transposed residual stream would make every LayerNorm and residual add copy it
        tokens = x.flatten(2).transpose(1, 2).contiguous() + self.position_table((t, h, w)).to(x.dtype)
        tokens = self.blocks(tokens)
        return tokens.transpose(1, 2).reshape(b, d, t, h, w)

    def forward_head(self, x: Tensor) -> Tensor:
        return self.head(self.fc_norm(x.flatten(2).mean(2)))

    @property
    def classifier(self) -> nn.Module:
        return self.head


@dataclass(frozen=True)
class VideoMAEConfig(ViTConfig):
    """One VideoMAE ViT (:class:`archs._vit.ViTConfig`).

    The table is sized by default for the paper's clip, 16x224x224
    (``--num_frames 16 --input_size 224``); other ``frames`` and ``size`` fit a
    checkpoint fine-tuned on another clip. The smallest clip is one tubelet,
    2x16x16 (one token).
    """

    frames: int = 16
    size: int = 224

    model = VideoMAE
    min_frames = 2

    @property
    def stages(self) -> Stages:
        """The tubelet embedding is a 3D convolution; every block attends jointly over space and time (3D)."""
        return (("patch_embed", ConvKind.THREE_D), ("blocks", ConvKind.THREE_D))


# ---------------------------------------------------------------------------------------- checkpoint layouts
# Declared as plain data and functions; wired into ``register_arch(pretrained=...)`` below.

HF_PREFIX = "videomae.encoder.layer"

to_huggingface = key_map(
    [
        (r"patch_embed\.proj\.(\w+)", r"videomae.embeddings.patch_embeddings.projection.\1"),
        (r"blocks\.(\d+)\.attn\.(qkv\.weight|q_bias|v_bias)", HF_PREFIX + r".\1.attention.attention.\2"),
        *huggingface_layer_rules(HF_PREFIX),
        (r"fc_norm\.(\w+)", r"fc_norm.\1"),
        (r"head\.(\w+)", r"classifier.\1"),
    ]
)
"""Our keys -> ``VideoMAEForVideoClassification``'s (after :func:`fuse_huggingface_qkv`)."""


def fuse_huggingface_qkv(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Hugging Face's separate ``query``/``key``/``value`` projections fused into the authors' ``qkv`` with q/v biases.

    Handles the three ways transformers has written them: 4.x kept bias-free
    Linears and ``q_bias``/``v_bias`` parameters; 5.17 had a bias on all three
    (the key's always zero in converted checkpoints); 5.25 has ``query`` and
    ``value`` biases only. A key bias, whatever its value, is dropped: softmax
    is blind to it (see :class:`archs._vit.Attention`).
    """
    out = dict(state)
    for name in [k for k in state if k.endswith(".attention.attention.query.weight")]:
        at = name[: -len("query.weight")]
        weights = [out.pop(at + f"{part}.weight") for part in ("query", "key", "value")]
        out[at + "qkv.weight"] = torch.cat(weights)
        for part, bias in (("query", "q_bias"), ("value", "v_bias")):
            if at + f"{part}.bias" in out:
                out[at + bias] = out.pop(at + f"{part}.bias")
        out.pop(at + "key.bias", None)
    return out


HF_PATTERN = r"^videomae\.(embeddings|encoder)\."
"""Keys of a Hugging Face VideoMAE checkpoint."""
ORIGINAL_PATTERN = r"^blocks\.\d+\.attn\.(q_bias|v_bias|qkv\.weight)$"
"""Keys of the authors' checkpoints (``modeling_finetune.py``; saved as ``{"module": state}``), which are ours."""


# ---------------------------------------------------------------------------------------- preprocessing, protocol

# VideoMAE's Kinetics-400 test: MODEL_ZOO.md's "#Frame = #input_frame x #clip x #crop" is 16x5x3, the fine-tuning
# scripts pass --test_num_segment 5 --test_num_crop 3: 5 clips spread over the video, each cut into 3 crops (left,
# centre, right) of the short side resized to 224, the softmax averaged.
VIDEOMAE_PROTOCOL = register_protocol(
    Protocol(
        "videomae",
        5,
        3,
        source="MCG-NJU/VideoMAE MODEL_ZOO.md (#Frame 16x5x3) and scripts/kinetics/*/finetune.sh "
        "(--test_num_segment 5 --test_num_crop 3)",
    )
)

PREPROCESS = Preprocess(IMAGENET_MEAN, IMAGENET_STD, resize=224, crop=224, frames=16, frame_stride=4)
"""VideoMAE's Kinetics-400 fine-tuning and test: ImageNet's mean and std (its ``kinetics.py`` normalises with
them), the short side resized to 224 (``--short_side_size 224``), 224 crops, 16 frames taken every 4th
(``--num_frames 16 --sampling_rate 4``). Hugging Face's processor for the MCG-NJU checkpoints says the same
(``shortest_edge`` 224, crop 224, ImageNet mean and std)."""


def _pretrained(config: VideoMAEConfig) -> Pretrained:
    """The authors' preprocessing and protocol (at the table's clip), and the two checkpoint layouts."""
    preprocess = replace(PREPROCESS, resize=config.size, crop=config.size, frames=config.frames)
    protocol = VIDEOMAE_PROTOCOL.name
    layouts = (
        Layout("huggingface", to_huggingface, preprocess, protocol, prepare=fuse_huggingface_qkv, pattern=HF_PATTERN),
        Layout("videomae", identity, preprocess, protocol, pattern=ORIGINAL_PATTERN),
    )
    return Pretrained(preprocess, protocol, layouts)


_VIDEOMAE = Family("videomae", color="#bcbd22")


@register_arch(
    family=_VIDEOMAE,
    paper=_PAPER,
    description="ViT-S/16 on 2x16x16 tubelets, mean-pooled (VideoMAE)",
    pretrained=_pretrained,
)
def videomae_vit_s(**options: Any) -> VideoMAEConfig:
    """VideoMAE ViT-S/16: D 384, 6 heads, MLP 1536, 12 blocks (``vit_small_patch16_224``)."""
    return VideoMAEConfig(384, 12, 6, 1536).with_options(**options)


@register_arch(
    family=_VIDEOMAE,
    paper=_PAPER,
    description="ViT-B/16 on 2x16x16 tubelets, mean-pooled (VideoMAE)",
    pretrained=_pretrained,
)
def videomae_vit_b(**options: Any) -> VideoMAEConfig:
    """VideoMAE ViT-B/16: D 768, 12 heads, MLP 3072, 12 blocks (``vit_base_patch16_224``; HF's default config)."""
    return VideoMAEConfig(768, 12, 12, 3072).with_options(**options)
