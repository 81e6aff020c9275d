"""Multiscale Vision Transformers: MViT v1-B, MViT v2-S and v2-B.

References:
    Fan, Xiong, Mangalam, Li, Yan, Malik & Feichtenhofer, "Multiscale Vision
    Transformers", ICCV 2021 (v1).
    Li, Wu, Fan, Mangalam, Xiong, Malik & Feichtenhofer, "MViTv2: Improved
    Multiscale Vision Transformers for Classification and Detection", CVPR 2022 (v2).
    Where the papers are silent the authors' code is followed
    (facebookresearch/SlowFast, ``slowfast/models/video_model_builder.py`` class
    ``MViT`` and ``slowfast/models/attention.py``), and torchvision's
    ``torchvision/models/video/mvit.py``, which ports the authors' v1-B and v2-S
    weights, is the reference the tests hold ``mvit_v1_b`` and ``mvit_v2_s`` equal to.

The family is one file of about 600 lines, as timm's and torchvision's model files are: its
configuration, blocks, weights layout and builders are read together.

The network: a 3x7x7 convolution of stride (2, 4, 4) cuts the clip into
patches (96 channels); a class token is prepended; a stack of multiscale
blocks follows; the class token, layer-normed, feeds a linear classifier.
A multiscale block is a pre-norm transformer block whose attention *pools*::

    x -+-> LN -+-> pooling attention -------------+-> (+) -+-> LN -> MLP -+-> (+) ->
       |       +-> [Linear: width change, v2] ----+         |               |
       +-> [max-pool of the skip where Q pools] --+         +-> [Linear: width change, v1]

In the attention, Q, K and V are each pooled by a depthwise 3x3x3 convolution
followed by a LayerNorm over the head's channels (the class token passes the
convolution untouched and joins the norm). K and V are pooled with a stride
that keeps their grid near 7x7 at 224 (``POOL_KV_STRIDE_ADAPTIVE: [1, 8, 8]``,
divided by every Q stride met); Q is pooled with stride (1, 2, 2) in the blocks
where width and heads double, which halves the token grid there.

v1 and v2 differ, as PySlowFast's configurations ``MVIT_B_16x4_CONV`` and
``MVITv2_*`` say:

- v1 adds separable absolute position tables (space, time, class) to the tokens;
  only the stage-changing blocks pool Q; the width changes after attention (in
  front of the MLP).
- v2 has no absolute table: each attention adds a decomposed relative position
  bias (``REL_POS_SPATIAL``, ``REL_POS_TEMPORAL``), pooled Q is added back to
  the attention's output (``RESIDUAL_POOLING``, class token excluded), every
  block pools Q (stride 1 where it does not downsample), and the width changes
  inside attention (``DIM_MUL_IN_ATT``).

Other inputs than the paper's: the position tables are sized to the paper's
clip (16 or 32 frames at 224). v1 resamples its tables to the token grid of
another clip, linearly in time and bilinearly in space (``align_corners=False``),
which is what PySlowFast's ``_get_pos_embed`` does with its trilinear resize of
the summed table (the two agree: resampling is linear and the table is a sum of
a time part and a space part). v2 resamples each relative table linearly to the
distances the grid needs and scales distances between grids of different
sizes, as the authors' ``cal_rel_pos_spatial``/``cal_rel_pos_temporal`` and
torchvision's ``_add_rel_pos`` do. At the paper's clip nothing is resampled.

Attention runs in ``torch.nn.functional.scaled_dot_product_attention`` with the
relative bias as its additive mask; counted on the meta device it shows its two
matmuls (Q K^T and attention x V).

The model contract: the classifier reads the class token alone, so
:meth:`MViT.forward_features` returns the layer-normed class token as a map of
one position, ``(B, num_features, 1, 1, 1)``; :meth:`MViT.forward_head` pools
nothing more and classifies it. The patch tokens are not part of the features.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archs._blocks import ConvKind, DropPath, Mlp, VideoClassifier
from archs._registry import ClassesOption, Family, Shape, Stages, register_arch
from archs._vit import init_transformer_weights
from archs._weights import Layout, Preprocess, Pretrained, Protocol, register_protocol

__all__ = ["BlockSetting", "MViT", "MViTConfig", "MultiscaleBlock", "PoolingAttention", "block_settings"]

Triple = tuple[int, int, int]
THW = tuple[int, int, int]

LN_EPS = 1e-6
"""LayerNorm epsilon of PySlowFast's MViT (``partial(nn.LayerNorm, eps=1e-6)``) and of torchvision's."""

_PATCH_KERNEL: Triple = (3, 7, 7)
_PATCH_STRIDE: Triple = (2, 4, 4)
_PATCH_PADDING: Triple = (1, 3, 3)
_POOL_KERNEL: Triple = (3, 3, 3)
_KV_STRIDE: Triple = (1, 8, 8)
_Q_STRIDE: Triple = (1, 2, 2)
_SIZE = 224


@dataclass(frozen=True)
class BlockSetting:
    """One multiscale block: heads, widths and the pooling of Q and of K/V.

    Attributes:
        heads: Attention heads.
        dim_in: Width of the tokens it takes.
        dim_out: Width of the tokens it gives.
        pool_q: Whether Q is pooled (by a 3x3x3 depthwise conv) at all.
        stride_q: Q's pooling stride (t, h, w); the block's output grid is the input's divided by it.
        stride_kv: K's and V's pooling stride (K and V are always pooled, kernel 3x3x3).
    """

    heads: int
    dim_in: int
    dim_out: int
    pool_q: bool
    stride_q: Triple
    stride_kv: Triple


def block_settings(depth: int, stage_starts: Sequence[int], *, v2: bool, embed: int = 96) -> tuple[BlockSetting, ...]:
    """The blocks of an MViT from the paper's table-1 form, as PySlowFast's ``MViT.__init__`` derives them.

    Width and heads double at each block of ``stage_starts`` (``DIM_MUL``,
    ``HEAD_MUL``), where Q is also pooled with stride (1, 2, 2)
    (``POOL_Q_STRIDE``). K/V strides start at (1, 8, 8) and are divided by each
    Q stride met (``POOL_KV_STRIDE_ADAPTIVE``). v1 changes the width in the block
    before a stage start (its MLP widens: ``dim_mul[i + 1]``), v2 in the stage's
    first block (inside its attention: ``DIM_MUL_IN_ATT``); v2 pools Q in every
    block (``POOL_Q_STRIDE`` lists every block), v1 only at stage starts. The
    widths here are exact doublings of 96 (PySlowFast's ``round_width`` with
    head-count divisors leaves them so).
    """
    starts = set(stage_starts)
    if not starts <= set(range(1, depth)):
        raise ValueError(f"stage starts must be blocks 1..{depth - 1}, got {sorted(starts)}")
    blocks = []
    heads, width, kv = 1, embed, _KV_STRIDE
    for i in range(depth):
        down = i in starts
        if down:
            heads *= 2
            kv = (max(kv[0] // _Q_STRIDE[0], 1), max(kv[1] // _Q_STRIDE[1], 1), max(kv[2] // _Q_STRIDE[2], 1))
        widen = down if v2 else (i + 1) in starts
        dim_out = 2 * width if widen else width
        stride_q = _Q_STRIDE if down else (1, 1, 1)
        blocks.append(BlockSetting(heads, width, dim_out, v2 or down, stride_q, kv))
        width = dim_out
    return tuple(blocks)


def _pool_tokens(x: Tensor, thw: THW, pool: nn.Module, norm: nn.Module | None = None) -> tuple[Tensor, THW]:
    """Pool (B, heads, 1 + T*H*W, C) tokens over their grid; the class token (first) skips the pool, joins the norm."""
    cls, tokens = x[:, :, :1], x[:, :, 1:]
    b, n, _, c = tokens.shape
    grid = tokens.reshape(b * n, *thw, c).permute(0, 4, 1, 2, 3)
    grid = pool(grid)
    t, h, w = grid.shape[2:]
    x = torch.cat((cls, grid.reshape(b, n, c, t * h * w).transpose(2, 3)), dim=2)
    return (x if norm is None else norm(x)), (t, h, w)


def _resample(table: Tensor, length: int) -> Tensor:
    """A (L, C) relative position table linearly resampled to ``length`` rows (itself when L == length)."""
    if table.shape[0] == length:
        return table
    return F.interpolate(table.t().unsqueeze(0), size=length, mode="linear").squeeze(0).t()


def _rel_index(q: int, k: int, device: torch.device) -> Tensor:
    """Table row of each (query, key) distance along one axis; grids of different sizes are scaled to the larger.

    The arithmetic is the authors' (``cal_rel_pos_spatial``), in float32 and
    truncated, so the rows are theirs for any pair of sizes.
    """
    q_ratio, k_ratio = max(k / q, 1.0), max(q / k, 1.0)
    qi = torch.arange(q, device=device)[:, None] * q_ratio
    ki = (torch.arange(k, device=device)[None, :] + (1.0 - k)) * k_ratio
    return (qi - ki).long()


def _project_along(grid_q: Tensor, table: Tensor, axis: int) -> Tensor:
    """Each query (B, heads, T, H, W, C) dotted with the table rows of its own position along ``axis``.

    ``table`` is (q, k, C): for query position i along the axis, the rows for the
    k key positions. Returns (B, heads, T, H, W, k), the authors' einsum
    ``bythwc,hkc->bythwk`` (for the height axis), as one batched matmul over the axis.
    """
    order = [axis, *(d for d in range(grid_q.ndim) if d != axis)]
    moved = grid_q.permute(order)
    out = torch.matmul(moved.reshape(moved.shape[0], -1, moved.shape[-1]), table.transpose(1, 2))
    back = [order.index(d) for d in range(grid_q.ndim)]
    return out.reshape(*moved.shape[:-1], table.shape[1]).permute(back)


class PoolingAttention(nn.Module):
    """Multi-head pooling attention (MViT sec. 3.1), with v2's relative position bias and residual pooling.

    Args:
        dim_in: Width of the tokens it takes.
        dim: Width of Q, K, V and of its output.
        setting: The block's heads and pooling.
        grid: The block's input token grid at the paper's clip (sizes the relative tables).
        rel_pos: Decomposed relative position bias (v2).
        residual_pool: Add pooled Q to the output (v2).
    """

    work_kind = "attention"

    def __init__(self, dim_in: int, dim: int, setting: BlockSetting, grid: THW, *, rel_pos: bool, residual_pool: bool):
        super().__init__()
        self.heads = setting.heads
        self.head_dim = dim // setting.heads
        self.dim = dim
        self.residual_pool = residual_pool
        self.qkv = nn.Linear(dim_in, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        norm = partial(nn.LayerNorm, self.head_dim, eps=LN_EPS)

        def pool(stride: Triple) -> nn.Conv3d:
            pad = (_POOL_KERNEL[0] // 2, _POOL_KERNEL[1] // 2, _POOL_KERNEL[2] // 2)
            return nn.Conv3d(self.head_dim, self.head_dim, _POOL_KERNEL, stride, pad, groups=self.head_dim, bias=False)

        self.pool_q: nn.Module | None = pool(setting.stride_q) if setting.pool_q else None
        self.norm_q: nn.Module | None = norm() if setting.pool_q else None
        self.pool_k, self.norm_k = pool(setting.stride_kv), norm()
        self.pool_v, self.norm_v = pool(setting.stride_kv), norm()
        self.rel_pos_h: nn.Parameter | None = None
        self.rel_pos_w: nn.Parameter | None = None
        self.rel_pos_t: nn.Parameter | None = None
        if rel_pos:
            size = max(grid[1:])
            q_size, kv_size = size // setting.stride_q[1], size // setting.stride_kv[1]
            spatial = 2 * max(q_size, kv_size) - 1
            self.rel_pos_h = nn.Parameter(torch.zeros(spatial, self.head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(spatial, self.head_dim))
            self.rel_pos_t = nn.Parameter(torch.zeros(2 * grid[0] - 1, self.head_dim))

    def _rel_pos_bias(self, q: Tensor, q_thw: THW, k_thw: THW) -> Tensor:
        """The decomposed relative position bias (B, heads, 1 + Nq, 1 + Nk), zero on the class token's row and column.

        Each of time, height and width contributes ``q . R[dist]`` (MViTv2 eq. 4):
        the multiply-adds the authors' einsums do, as batched matmuls (which both
        counters count exactly; fvcore rounds an einsum's cost).
        """
        assert self.rel_pos_h is not None and self.rel_pos_w is not None and self.rel_pos_t is not None
        tables = (self.rel_pos_t, self.rel_pos_h, self.rel_pos_w)
        rel = []
        for table, qs, ks in zip(tables, q_thw, k_thw, strict=True):
            r = _resample(table, 2 * max(qs, ks) - 1)[_rel_index(qs, ks, table.device)]  # (q, k, C)
            rel.append(r)
        b, n, _, c = q.shape
        qt, qh, qw = q_thw
        kt, kh, kw = k_thw
        grid_q = q[:, :, 1:].reshape(b, n, qt, qh, qw, c)
        rel_t, rel_h, rel_w = (_project_along(grid_q, r, axis) for axis, r in zip((2, 3, 4), rel, strict=True))
        bias = (rel_t[..., :, None, None] + rel_h[..., None, :, None] + rel_w[..., None, None, :]).reshape(
            b, n, qt * qh * qw, kt * kh * kw
        )
        return torch.constant_pad_nd(bias, (1, 0, 1, 0))

    def forward(self, x: Tensor, thw: THW) -> tuple[Tensor, THW]:
        b, n, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        k, k_thw = _pool_tokens(k, thw, self.pool_k, self.norm_k)
        v, _ = _pool_tokens(v, thw, self.pool_v, self.norm_v)
        q_thw = thw
        if self.pool_q is not None:
            q, q_thw = _pool_tokens(q, thw, self.pool_q, self.norm_q)
        bias = self._rel_pos_bias(q, q_thw, k_thw) if self.rel_pos_h is not None else None
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        if self.residual_pool:  # pooled Q joins the output, the class token's excepted
            out = torch.cat((out[:, :, :1], out[:, :, 1:] + q[:, :, 1:]), dim=2)
        out = out.transpose(1, 2).reshape(b, -1, self.dim)
        return self.proj(out), q_thw


class MultiscaleBlock(nn.Module):
    """A pre-norm transformer block with pooling attention (see the module docstring's diagram).

    Args:
        setting: Heads, widths and pooling.
        grid: The block's input token grid at the paper's clip.
        v2: Relative position bias, residual pooling, width change inside attention.
        drop_path: Stochastic depth of its two residual branches.
    """

    def __init__(self, setting: BlockSetting, grid: THW, *, v2: bool, drop_path: float = 0.0) -> None:
        super().__init__()
        self.widen_in_attention = v2
        attn_dim = setting.dim_out if v2 else setting.dim_in
        self.norm1 = nn.LayerNorm(setting.dim_in, eps=LN_EPS)
        self.attn = PoolingAttention(setting.dim_in, attn_dim, setting, grid, rel_pos=v2, residual_pool=v2)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(attn_dim, eps=LN_EPS)
        self.mlp = Mlp(attn_dim, 4 * attn_dim, setting.dim_out)
        self.proj: nn.Module | None = None
        if setting.dim_in != setting.dim_out:
            self.proj = nn.Linear(setting.dim_in, setting.dim_out)
        self.pool_skip: nn.Module | None = None
        if math.prod(setting.stride_q) > 1:
            kernel = tuple(s + 1 if s > 1 else s for s in setting.stride_q)
            self.pool_skip = nn.MaxPool3d(kernel, setting.stride_q, tuple(k // 2 for k in kernel))

    def forward(self, x: Tensor, thw: THW) -> tuple[Tensor, THW]:
        x_norm = self.norm1(x)
        attended, thw_out = self.attn(x_norm, thw)
        if self.proj is not None and self.widen_in_attention:
            x = self.proj(x_norm)
        if self.pool_skip is not None:
            x = _pool_tokens(x.unsqueeze(1), thw, self.pool_skip)[0].squeeze(1)
        x = x + self.drop_path(attended)
        x_norm = self.norm2(x)
        if self.proj is not None and not self.widen_in_attention:
            x = self.proj(x_norm)
        return x + self.drop_path(self.mlp(x_norm)), thw_out


class MultiscaleBlocks(nn.ModuleList):
    """The stack of blocks, called as one module (so that a per-module breakdown sees its share whole)."""

    def forward(self, x: Tensor, thw: THW) -> tuple[Tensor, THW]:
        for block in self:
            x, thw = block(x, thw)
        return x, thw


class PatchEmbed(nn.Module):
    """The patch embedding: a 3x7x7 convolution of stride (2, 4, 4), overlapping patches (PySlowFast ``PatchEmbed``)."""

    work_kind = "patch_embedding"

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv3d(3, dim, _PATCH_KERNEL, _PATCH_STRIDE, _PATCH_PADDING)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class MViT(VideoClassifier):
    """A multiscale vision transformer (see the module docstring).

    Args:
        blocks: The blocks, in order (:func:`block_settings`).
        v2: MViTv2's attention (relative bias, residual pooling) and no absolute table.
        table_grid: The patch grid (t, h, w) of the paper's clip, which sizes the
            position tables.
        num_classes: Logits.
        dropout: Dropout before the classifier.
        drop_path: Stochastic depth of the last block; it grows linearly from 0 at the first.
    """

    def __init__(
        self,
        blocks: Sequence[BlockSetting],
        *,
        v2: bool,
        table_grid: THW,
        num_classes: int = 400,
        dropout: float = 0.5,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        embed = blocks[0].dim_in
        self.patch_embed = PatchEmbed(embed)
        self.table_grid = table_grid
        self.cls_token = nn.Parameter(torch.zeros(embed))
        self.pos_embed_spatial: nn.Parameter | None = None
        self.pos_embed_temporal: nn.Parameter | None = None
        self.pos_embed_class: nn.Parameter | None = None
        if not v2:
            t, h, w = table_grid
            self.pos_embed_spatial = nn.Parameter(torch.zeros(h * w, embed))
            self.pos_embed_temporal = nn.Parameter(torch.zeros(t, embed))
            self.pos_embed_class = nn.Parameter(torch.zeros(embed))
        self.blocks = MultiscaleBlocks()
        grid = table_grid
        for i, setting in enumerate(blocks):
            rate = drop_path * i / (len(blocks) - 1) if len(blocks) > 1 else 0.0
            self.blocks.append(MultiscaleBlock(setting, grid, v2=v2, drop_path=rate))
            grid = (grid[0] // setting.stride_q[0], grid[1] // setting.stride_q[1], grid[2] // setting.stride_q[2])
        self.num_features = blocks[-1].dim_out
        self.norm = nn.LayerNorm(self.num_features, eps=LN_EPS)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.num_features, num_classes)
        self.num_classes = num_classes
        tables = ("cls_token", "pos_embed_spatial", "pos_embed_temporal", "pos_embed_class", "rel_pos_")
        init_transformer_weights(self, named_tables=tables)

    def _pos_embed(self, thw: THW) -> Tensor:
        """v1's absolute table for a (t, h, w) token grid, with the class token's first: (1 + t*h*w, C).

        At another grid than the paper's, time is resampled linearly and space
        bilinearly (see the module docstring).
        """
        assert self.pos_embed_spatial is not None and self.pos_embed_temporal is not None
        assert self.pos_embed_class is not None
        t, h, w = thw
        t0, h0, w0 = self.table_grid
        temporal: Tensor = self.pos_embed_temporal
        spatial: Tensor = self.pos_embed_spatial
        if t != t0:
            temporal = F.interpolate(temporal.t().unsqueeze(0), size=t, mode="linear").squeeze(0).t()
        if (h, w) != (h0, w0):
            grid = spatial.t().reshape(1, -1, h0, w0)
            spatial = F.interpolate(grid, size=(h, w), mode="bilinear").reshape(-1, h * w).t()
        table = (temporal[:, None, :] + spatial[None, :, :]).reshape(t * h * w, -1)
        return torch.cat((self.pos_embed_class[None], table), dim=0)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x)
        thw: THW = (x.shape[2], x.shape[3], x.shape[4])
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat((self.cls_token.expand(x.shape[0], 1, -1), x), dim=1)
        if self.pos_embed_spatial is not None:
            x = x + self._pos_embed(thw)
        x, thw = self.blocks(x, thw)
        cls = self.norm(x[:, 0])
        return cls.reshape(*cls.shape, 1, 1, 1)

    def forward_head(self, x: Tensor) -> Tensor:
        return self.head(self.dropout(x.flatten(1)))

    @property
    def classifier(self) -> nn.Module:
        return self.head


@dataclass(frozen=True)
class MViTConfig(ClassesOption):
    """One MViT: what :class:`MViT` is built from and what its spec says.

    Attributes:
        depth: Blocks.
        stage_starts: Blocks where width and heads double and Q pools by (1, 2, 2).
        v2: MViTv2 (see the module docstring).
        frames: Frames of the paper's clip (224x224), which size the position tables.
        drop_path: Stochastic depth of the last block (training only).
        num_classes: Logits (an option).
    """

    depth: int
    stage_starts: tuple[int, ...]
    v2: bool
    frames: int
    drop_path: float
    num_classes: int = 400

    @property
    def blocks(self) -> tuple[BlockSetting, ...]:
        return block_settings(self.depth, self.stage_starts, v2=self.v2)

    @property
    def table_grid(self) -> THW:
        """The patch grid of the paper's clip."""
        return (self.frames // _PATCH_STRIDE[0], _SIZE // _PATCH_STRIDE[1], _SIZE // _PATCH_STRIDE[2])

    @property
    def default_input(self) -> Shape:
        return (3, self.frames, _SIZE, _SIZE)

    @property
    def min_input(self) -> Shape:
        """One patch in time (2 frames); in space the total stride (4 x 2^3 = 32), so that Q's last pool keeps a token.

        Other clips than the paper's resample the position tables (module docstring).
        """
        spatial = _PATCH_STRIDE[1] * _Q_STRIDE[1] ** len(self.stage_starts)
        return (3, _PATCH_STRIDE[0], spatial, spatial)

    @property
    def stages(self) -> Stages:
        """The patch embedding and the four scales (the paper's scale2..scale5): all attend over space and time."""
        names = ("patch_embed", "scale2", "scale3", "scale4", "scale5")
        return tuple((name, str(ConvKind.THREE_D)) for name in names[: len(self.stage_starts) + 2])

    def build(self) -> MViT:
        return MViT(
            self.blocks, v2=self.v2, table_grid=self.table_grid, num_classes=self.num_classes, drop_path=self.drop_path
        )


# ------------------------------------------------------------------------------- weights
#
# torchvision's ``mvit_v1_b`` and ``mvit_v2_s`` (``MViT_V1_B_Weights``/``MViT_V2_S_Weights.KINETICS400_V1``,
# ported from PySlowFast): its module names differ from ours (PySlowFast's) in a few places; the tensors and
# their shapes are the same. Their preprocessing (``transforms``): short side resized to 256, a 224 centre crop,
# mean 0.45 and std 0.225 on every channel (PySlowFast's DATA.MEAN/STD); 16 frames at 7.5 fps (``_docs``:
# ``frame_rate=7.5``, i.e. every 4th frame of a 30 fps video, PySlowFast's SAMPLING_RATE 4); evaluated on
# 5 clips x 1 crop per video (``clips_per_video=5``; PySlowFast TEST.NUM_ENSEMBLE_VIEWS 5, NUM_SPATIAL_CROPS 1).

MVIT_MEAN = (0.45, 0.45, 0.45)
"""PySlowFast's ``DATA.MEAN``, torchvision's MViT ``transforms``."""
MVIT_STD = (0.225, 0.225, 0.225)
"""PySlowFast's ``DATA.STD``."""

_TORCHVISION_RENAMES = (
    (r"^patch_embed\.proj\.", "conv_proj."),
    (r"^cls_token$", "pos_encoding.class_token"),
    (r"^pos_embed_spatial$", "pos_encoding.spatial_pos"),
    (r"^pos_embed_temporal$", "pos_encoding.temporal_pos"),
    (r"^pos_embed_class$", "pos_encoding.class_pos"),
    (r"\.attn\.proj\.", ".attn.project.0."),
    (r"\.attn\.pool_([qkv])\.weight$", r".attn.pool_\1.pool.weight"),
    (r"\.attn\.norm_([qkv])\.", r".attn.pool_\1.norm_act.0."),
    (r"\.mlp\.fc1\.", ".mlp.0."),
    (r"\.mlp\.fc2\.", ".mlp.3."),
    (r"^(blocks\.\d+)\.proj\.", r"\1.project."),
    (r"^head\.", "head.1."),
)
TORCHVISION_KEYS = r"^(conv_proj|pos_encoding)\.|^blocks\.\d+\.attn\.(qkv|project|pool_[qkv]|rel_pos_[hwt])"
"""A regular expression torchvision's MViT keys match."""


def torchvision_key(key: str) -> str:
    """Our state-dict key -> torchvision's (``blocks.3.attn.norm_q.weight`` -> ``blocks.3.attn.pool_q.norm_act.0.weight``)."""
    for pattern, replacement in _TORCHVISION_RENAMES:
        key = re.sub(pattern, replacement, key)
    return key


MVIT_PROTOCOL = register_protocol(
    Protocol(
        "mvit",
        5,
        1,
        source="facebookresearch/SlowFast MODEL_ZOO.md (MViT views '1 x 5') and configs/Kinetics/MVIT*.yaml "
        "(TEST.NUM_ENSEMBLE_VIEWS 5, NUM_SPATIAL_CROPS 1); torchvision's MViT weights docs (clips_per_video=5)",
    )
)
_TORCHVISION_URLS = {
    "mvit_v1_b": "https://download.pytorch.org/models/mvit_v1_b-dbeb1030.pth",
    "mvit_v2_s": "https://download.pytorch.org/models/mvit_v2_s-ae3be167.pth",
}


def _pretrained(name: str) -> Callable[[MViTConfig], Pretrained]:
    """PySlowFast's preprocessing and protocol; torchvision's layout where torchvision ports the weights.

    The test clip: short side 256, one 224 centre crop (PySlowFast resizes to
    ``TRAIN_JITTER_SCALES[0]`` when it takes one crop), ``frames`` frames taken
    every 4th (16x4) or 3rd (32x3) frame.
    """

    def declare(config: MViTConfig) -> Pretrained:
        stride = 4 if config.frames == 16 else 3
        preprocess = Preprocess(MVIT_MEAN, MVIT_STD, resize=256, crop=224, frames=config.frames, frame_stride=stride)
        url = _TORCHVISION_URLS.get(name, "")
        layouts = (
            (Layout("torchvision", torchvision_key, preprocess, MVIT_PROTOCOL.name, pattern=TORCHVISION_KEYS, url=url),)
            if url
            else ()
        )
        return Pretrained(preprocess, MVIT_PROTOCOL.name, layouts)

    return declare


_MVIT = Family("mvit", color="#3b7dd8")
_V1 = "Fan et al., Multiscale Vision Transformers, ICCV 2021"
_V2 = "Li et al., MViTv2: Improved Multiscale Vision Transformers for Classification and Detection, CVPR 2022"


@register_arch(
    family=_MVIT,
    paper=_V1,
    description="pooling attention, absolute space/time tables, 16 blocks",
    pretrained=_pretrained("mvit_v1_b"),
)
def mvit_v1_b(**options: Any) -> MViTConfig:
    """MViT-B 16x4 (PySlowFast ``MVIT_B_16x4_CONV``; torchvision ``mvit_v1_b``: 36,610,672 parameters).

    16 blocks, stages start at blocks 1, 3 and 14; stochastic depth 0.2
    (torchvision's default).
    """
    return MViTConfig(16, (1, 3, 14), v2=False, frames=16, drop_path=0.2).with_options(**options)


@register_arch(
    family=_MVIT,
    paper=_V2,
    description="MViTv2: relative position bias, residual pooling, 16 blocks",
    pretrained=_pretrained("mvit_v2_s"),
)
def mvit_v2_s(**options: Any) -> MViTConfig:
    """MViTv2-S 16x4 (PySlowFast ``MVITv2_S_16x4``; torchvision ``mvit_v2_s``: 34,537,744 parameters).

    16 blocks, stages start at blocks 1, 3 and 14; stochastic depth 0.2 (the config's ``DROPPATH_RATE``).
    """
    return MViTConfig(16, (1, 3, 14), v2=True, frames=16, drop_path=0.2).with_options(**options)


@register_arch(
    family=_MVIT,
    paper=_V2,
    description="MViTv2: relative position bias, residual pooling, 24 blocks",
    pretrained=_pretrained("mvit_v2_b"),
)
def mvit_v2_b(**options: Any) -> MViTConfig:
    """MViTv2-B 32x3 (PySlowFast ``configs/Kinetics/MVITv2_B_32x3.yaml``; not in torchvision).

    24 blocks, stages start at blocks 2, 5 and 21 (``DIM_MUL``/``HEAD_MUL``/
    ``POOL_Q_STRIDE``), 32-frame clips; stochastic depth 0.3 (``DROPPATH_RATE``).
    """
    return MViTConfig(24, (2, 5, 21), v2=True, frames=32, drop_path=0.3).with_options(**options)
