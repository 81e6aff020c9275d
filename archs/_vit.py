"""Vision-transformer parts shared by the video ViTs (TimeSformer, VideoMAE): attention, MLP, block, patch embedding.

The names of parameters follow timm's ViT, as the authors' code of both
families does (``attn.qkv``, ``attn.proj``, ``mlp.fc1``, ``norm1``...), so that
their checkpoints map onto these modules nearly by name.

Attention runs through :func:`torch.nn.functional.scaled_dot_product_attention`
(one fused kernel where the device has one). It computes the same function as
the explicit ``softmax(q k^T / sqrt(d)) v`` of the references, and its
multiply-accumulates are the two matmuls' (``2 N^2 d`` per head-sum: ``N^2 d``
for ``q k^T`` and ``N^2 d`` for the weighted sum of ``v``), which vbench's
counters charge to the fused operator.

Each module states the kind of work it is (``work_kind``, read by
``bench.measure.breakdown``): ``attention``, ``mlp``, ``patch_embedding``.

:func:`init_transformer_weights` is also the initialisation of the
hierarchical transformers (MViT, Video Swin), with their own tables.

:class:`ViTConfig` is the configuration both families share: the same sizes,
the same options and the same rule for the clip their position tables fit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import ClassVar, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "Attention",
    "Block",
    "Mlp",
    "PatchEmbed",
    "ViTConfig",
    "huggingface_layer_rules",
    "init_transformer_weights",
    "init_vit_weights",
    "key_map",
    "sinusoid_table",
]


class Attention(nn.Module):
    """Multi-head self-attention over the tokens of its input (B, N, dim): fused ``qkv``, SDPA, ``proj``.

    Args:
        dim: Token width.
        heads: Attention heads (``dim`` divisible by it).
        qkv_bias: A bias on the fused ``qkv`` projection (TimeSformer).
        qv_bias: Separate ``q_bias`` and ``v_bias`` and no key bias (VideoMAE's
            ``modeling_finetune.Attention``). A key bias adds ``q . b_k`` to every
            score of a query alike, which softmax removes, so a model without one
            computes what a model with any key bias computes.
    """

    work_kind = "attention"

    def __init__(self, dim: int, heads: int, *, qkv_bias: bool = False, qv_bias: bool = False) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        if qkv_bias and qv_bias:
            raise ValueError("qkv_bias and qv_bias are exclusive")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.q_bias: nn.Parameter | None = None
        self.v_bias: nn.Parameter | None = None
        if qv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        if self.q_bias is not None and self.v_bias is not None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.q_bias), self.v_bias))
            qkv = F.linear(x, self.qkv.weight, bias)
        else:
            qkv = self.qkv(x)
        q, k, v = qkv.reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    """Linear, GELU (exact, erf), Linear."""

    work_kind = "mlp"

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block::

    x -+-> norm1 -> attn -+-> norm2 -> mlp -+->
       +------------------+-----------------+
    """

    def __init__(
        self, dim: int, heads: int, mlp_dim: int, eps: float, *, qkv_bias: bool = False, qv_bias: bool = False
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads, qkv_bias=qkv_bias, qv_bias=qv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, mlp_dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """Non-overlapping patches (tubelets) of a clip projected to tokens: a convolution of kernel = stride.

    ``dim=3`` is a Conv3d of kernel (tubelet, p, p) on the clip (VideoMAE);
    ``dim=2`` a Conv2d of kernel (p, p) on every frame (TimeSformer), whose
    output keeps the clip's frames. Input (B, C, T, H, W), output the token grid
    (B, D, t, h, w). A size that the patch does not divide drops its remainder,
    as the references' convolutions do.
    """

    work_kind = "patch_embedding"

    def __init__(self, in_ch: int, dim: int, patch: int, tubelet: int = 1, *, conv_dim: int = 3) -> None:
        super().__init__()
        self.conv_dim = conv_dim
        self.proj: nn.Conv2d | nn.Conv3d
        if conv_dim == 3:
            self.proj = nn.Conv3d(in_ch, dim, (tubelet, patch, patch), (tubelet, patch, patch))
        elif conv_dim == 2:
            self.proj = nn.Conv2d(in_ch, dim, patch, patch)
        else:
            raise ValueError(f"conv_dim must be 2 or 3, got {conv_dim}")

    def forward(self, x: Tensor) -> Tensor:
        if self.conv_dim == 3:
            return self.proj(x)
        b, c, t, h, w = x.shape
        y = self.proj(x.transpose(1, 2).reshape(b * t, c, h, w))
        return y.reshape(b, t, *y.shape[1:]).transpose(1, 2)


def sinusoid_table(positions: int, dim: int) -> Tensor:
    """The fixed sinusoidal position table (1, positions, dim) of "Attention is all you need", as VideoMAE builds it.

    Entry (p, j) is ``sin(p / 10000^(2 floor(j/2) / dim))`` for even j and ``cos`` of
    the same for odd j; computed in float64, returned in float32 (as the
    references compute it with numpy).
    """
    p = torch.arange(positions, dtype=torch.float64)[:, None]
    j = torch.arange(dim, dtype=torch.float64)
    angles = p / torch.pow(10000.0, 2 * torch.div(j, 2, rounding_mode="floor") / dim)
    table = torch.where(j.long() % 2 == 0, torch.sin(angles), torch.cos(angles))
    return table.to(torch.float32)[None]


def init_vit_weights(module: nn.Module, std: float = 0.02) -> None:
    """timm's ViT initialisation: normal linear and patch weights of std 0.02, zero biases, unit LayerNorms.

    timm draws ``trunc_normal_(std=.02)``, whose bounds (+-2, absolute) lie 100
    standard deviations out: the same distribution as a plain normal, which is
    drawn in half the time. Nothing is drawn on the meta device (counting builds
    there, and the first draw there costs seconds of torch's set-up).
    """
    init_transformer_weights(module, (nn.Linear, nn.Conv2d, nn.Conv3d), nn.init.normal_, std=std)


def init_transformer_weights(
    module: nn.Module,
    layers: tuple[type[nn.Module], ...] = (nn.Linear,),
    draw: Callable[..., Tensor] = nn.init.trunc_normal_,
    module_tables: Callable[[nn.Module], Iterable[Tensor]] = lambda m: (),
    named_tables: tuple[str, ...] = (),
    std: float = 0.02,
) -> None:
    """The random initialisation of the transformers here, after timm's ViT; by default MViT's and Video Swin's.

    One walk over the modules in order: the weight of each of ``layers`` is drawn
    by ``draw`` with std ``std`` (a truncated normal by default), its bias (if
    any) zeroed; a LayerNorm is made the identity (weight one, bias zero); of any
    other module, the tensors ``module_tables`` returns for it (learned tables,
    such as a window's relative-position bias) are drawn at their place in the
    walk. Then each parameter whose own name (the last part of its dotted name)
    starts with one of ``named_tables`` is drawn. The draws keep that order, so a
    seeded build is the same model every time. Nothing is drawn on the meta
    device.
    """
    if any(p.is_meta for p in module.parameters()):
        return
    for m in module.modules():
        if isinstance(m, layers):
            draw(m.weight, std=std)
            if isinstance(m.bias, Tensor):  # None where the layer has no bias
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        else:
            for table in module_tables(m):
                draw(table, std=std)
    if named_tables:
        for name, p in module.named_parameters():
            if name.rsplit(".", 1)[-1].startswith(named_tables):
                draw(p, std=std)


def key_map(rules: Sequence[tuple[str, str]]) -> Callable[[str], str | None]:
    """A checkpoint key map from rename rules: ``(our key regex, checkpoint key template)``, first full match wins.

    A rule ``("blocks[.](\\d+)[.]norm1[.](\\w+)", "layer.\\1.ln_1.\\2")`` maps ``blocks.3.norm1.weight``
    to ``layer.3.ln_1.weight``; a key that no rule matches has no counterpart (None).
    """
    compiled = [(re.compile(pattern), template) for pattern, template in rules]

    def to_ref(key: str) -> str | None:
        for pattern, template in compiled:
            m = pattern.fullmatch(key)
            if m is not None:
                return m.expand(template)
        return None

    return to_ref


def huggingface_layer_rules(layer: str) -> list[tuple[str, str]]:
    """:func:`key_map` rules for what a block here shares with Hugging Face's ViT layer, whose names its TimeSformer
    and VideoMAE keep: ``norm1``, the attention's output projection, ``norm2`` and the MLP's two linear layers, for
    the layers under ``layer`` (``"videomae.encoder.layer"``). The attention's input projection differs between the
    two (fused or not), so each family maps it, and anything else it has, itself."""
    return [
        (r"blocks\.(\d+)\.norm1\.(\w+)", layer + r".\1.layernorm_before.\2"),
        (r"blocks\.(\d+)\.attn\.proj\.(\w+)", layer + r".\1.attention.output.dense.\2"),
        (r"blocks\.(\d+)\.norm2\.(\w+)", layer + r".\1.layernorm_after.\2"),
        (r"blocks\.(\d+)\.mlp\.fc1\.(\w+)", layer + r".\1.intermediate.dense.\2"),
        (r"blocks\.(\d+)\.mlp\.fc2\.(\w+)", layer + r".\1.output.dense.\2"),
    ]


_Config = TypeVar("_Config", bound="ViTConfig")
_Shape = tuple[int, int, int, int]
"""A clip's (C, T, H, W), as the registry's ``Shape`` (this module imports nothing of the package)."""


@dataclass(frozen=True)
class ViTConfig:
    """What a video ViT of this package is built from: its sizes, the clip its position tables fit, its classes.

    A family subclasses it, names its network in :attr:`model` (whose constructor
    takes ``dim, depth, heads, mlp_dim, frames, size`` in that order and
    ``num_classes`` by name) and the fewest frames its tokens need in
    :attr:`min_frames`, and may give the sizes defaults. ``frames`` and ``size``
    are options as well as sizes: a checkpoint trained on another clip brings
    tables of another length, and that clip is then the default input.

    Attributes:
        dim: Token width.
        depth: Blocks.
        heads: Attention heads.
        mlp_dim: MLP hidden width.
        frames: Frames of the clip the position tables are sized for (an option).
        size: Side of the frames the position tables are sized for (an option).
        num_classes: Logits (an option).
    """

    dim: int
    depth: int
    heads: int
    mlp_dim: int
    frames: int
    size: int
    num_classes: int = 400

    model: ClassVar[Callable[..., nn.Module]]
    """The network this configuration builds."""
    min_frames: ClassVar[int] = 1
    """Frames of one token: the shortest clip, and the fewest frames the tables may be sized for."""
    patch: ClassVar[int] = 16
    """Side of a patch: the smallest frame."""

    def __post_init__(self) -> None:
        if self.frames < self.min_frames or self.size < self.patch:
            raise ValueError(
                f"frames must be at least {self.min_frames} and size at least {self.patch}, "
                f"got {self.frames} and {self.size}"
            )

    def with_options(
        self: _Config, *, num_classes: int | None = None, frames: int | None = None, size: int | None = None
    ) -> _Config:
        """The options every video ViT takes; any other keyword is a TypeError."""
        given = {"num_classes": num_classes, "frames": frames, "size": size}
        return replace(self, **{k: v for k, v in given.items() if v is not None})

    @property
    def default_input(self) -> _Shape:
        """The clip the position tables are sized for (C, T, H, W)."""
        return (3, self.frames, self.size, self.size)

    @property
    def min_input(self) -> _Shape:
        """One token's clip: ``min_frames`` frames of one patch (the tables interpolated to it)."""
        return (3, self.min_frames, self.patch, self.patch)

    def build(self) -> nn.Module:
        return self.model(
            self.dim, self.depth, self.heads, self.mlp_dim, self.frames, self.size, num_classes=self.num_classes
        )
