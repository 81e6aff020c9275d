"""Small, independent re-implementations of the reference networks whose checkpoints vbench loads.

Each is written from reading the reference's code, with the reference's own module
names (hence its state-dict keys and shapes) and its own forward: padding, pooling
modes, BatchNorm epsilon and head. They share no code with ``archs``, so that
``tests/test_archs_weights.py`` can check that a vbench model loaded from a
reference's state dict computes what the reference computes.

- torchvision video ResNets (``torchvision/models/video/resnet.py``): ``r3d_18``,
  ``mc3_18``, ``r2plus1d_18``; and R(2+1)D-34 as VMZ's ``pt/vmz/models/r2plus1d.py``
  and moabitcoin/ig65m-pytorch's ``ig65m/models.py`` build it on torchvision's
  classes (per-conv midplanes, BatchNorm eps 1e-3).
- torchvision's S3D (``torchvision/models/video/s3d.py``).
- piergiaj/pytorch-i3d's ``InceptionI3d`` (``pytorch_i3d.py``): TensorFlow SAME
  padding computed from each input, zero-padded max-pools.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# ------------------------------------------------------------------ torchvision video ResNets (and VMZ / IG-65M)

Norm = Callable[[int], nn.Module]


def tv_midplanes(inplanes: int, planes: int) -> int:
    """torchvision's (2+1)D middle width, from the block's in and out widths."""
    return (inplanes * planes * 27) // (inplanes * 9 + 3 * planes)


class Conv3DSimple(nn.Conv3d):
    def __init__(self, inp: int, out: int, mid: int | None = None, stride: int = 1, padding: int = 1) -> None:
        super().__init__(inp, out, kernel_size=3, stride=stride, padding=padding, bias=False)

    @staticmethod
    def downsample_stride(stride: int) -> tuple[int, int, int]:
        return (stride, stride, stride)


class Conv3DNoTemporal(nn.Conv3d):
    def __init__(self, inp: int, out: int, mid: int | None = None, stride: int = 1, padding: int = 1) -> None:
        super().__init__(inp, out, (1, 3, 3), (1, stride, stride), (0, padding, padding), bias=False)

    @staticmethod
    def downsample_stride(stride: int) -> tuple[int, int, int]:
        return (1, stride, stride)


class Conv2Plus1D(nn.Sequential):
    def __init__(self, inp: int, out: int, mid: int, stride: int = 1, padding: int = 1) -> None:
        super().__init__(
            nn.Conv3d(inp, mid, (1, 3, 3), (1, stride, stride), (0, padding, padding), bias=False),
            nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, out, (3, 1, 1), (stride, 1, 1), (padding, 0, 0), bias=False),
        )

    @staticmethod
    def downsample_stride(stride: int) -> tuple[int, int, int]:
        return (stride, stride, stride)


class TvBasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, builder: type, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        mid = tv_midplanes(inplanes, planes)
        self.conv1 = nn.Sequential(
            builder(inplanes, planes, mid, stride), nn.BatchNorm3d(planes), nn.ReLU(inplace=True)
        )
        self.conv2 = nn.Sequential(builder(planes, planes, mid), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + residual)


def basic_stem() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(3, 64, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False), nn.BatchNorm3d(64), nn.ReLU(inplace=True)
    )


def r2plus1d_stem() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(3, 45, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
        nn.BatchNorm3d(45),
        nn.ReLU(inplace=True),
        nn.Conv3d(45, 64, (3, 1, 1), (1, 1, 1), (1, 0, 0), bias=False),
        nn.BatchNorm3d(64),
        nn.ReLU(inplace=True),
    )


class TvVideoResNet(nn.Module):
    def __init__(self, builders: Sequence[type], layers: Sequence[int], stem: nn.Module, num_classes: int = 400):
        super().__init__()
        self.inplanes = 64
        self.stem = stem
        self.layer1 = self._make_layer(builders[0], 64, layers[0], 1)
        self.layer2 = self._make_layer(builders[1], 128, layers[1], 2)
        self.layer3 = self._make_layer(builders[2], 256, layers[2], 2)
        self.layer4 = self._make_layer(builders[3], 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Linear(512, num_classes)

    def _make_layer(self, builder: type, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            ds_stride = builder.downsample_stride(stride)  # type: ignore[attr-defined]
            downsample = nn.Sequential(
                nn.Conv3d(self.inplanes, planes, kernel_size=1, stride=ds_stride, bias=False), nn.BatchNorm3d(planes)
            )
        layers = [TvBasicBlock(self.inplanes, planes, builder, stride, downsample)]
        self.inplanes = planes
        layers += [TvBasicBlock(planes, planes, builder) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def tv_r3d_18(num_classes: int = 400) -> TvVideoResNet:
    return TvVideoResNet([Conv3DSimple] * 4, [2, 2, 2, 2], basic_stem(), num_classes)


def tv_mc3_18(num_classes: int = 400) -> TvVideoResNet:
    return TvVideoResNet([Conv3DSimple] + [Conv3DNoTemporal] * 3, [2, 2, 2, 2], basic_stem(), num_classes)


def tv_r2plus1d_18(num_classes: int = 400) -> TvVideoResNet:
    return TvVideoResNet([Conv2Plus1D] * 4, [2, 2, 2, 2], r2plus1d_stem(), num_classes)


def ig65m_r2plus1d_34(num_classes: int = 400) -> TvVideoResNet:
    """moabitcoin's port: torchvision's classes, then the second conv of each first block of
    layer2..4 rebuilt with VMZ's width (planes, planes), and every BatchNorm at eps 1e-3
    (momentum 0.9 as they set it; it does not change an eval-mode forward)."""
    model = TvVideoResNet([Conv2Plus1D] * 4, [3, 4, 6, 3], r2plus1d_stem(), num_classes)
    model.layer2[0].conv2[0] = Conv2Plus1D(128, 128, 288)
    model.layer3[0].conv2[0] = Conv2Plus1D(256, 256, 576)
    model.layer4[0].conv2[0] = Conv2Plus1D(512, 512, 1152)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.eps, m.momentum = 1e-3, 0.9
    return model


# ------------------------------------------------------------------ torchvision S3D


def _tv_bn(c: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(c, eps=0.001, momentum=0.001)


def conv_norm_act(inp: int, out: int, kernel, stride=1, padding=0) -> nn.Sequential:
    """torchvision's Conv3dNormActivation: (conv without bias, BN, ReLU) as a Sequential."""
    return nn.Sequential(nn.Conv3d(inp, out, kernel, stride, padding, bias=False), _tv_bn(out), nn.ReLU(inplace=True))


def temporal_separable(inp: int, out: int, k: int, s: int, p: int) -> nn.Sequential:
    return nn.Sequential(
        conv_norm_act(inp, out, (1, k, k), (1, s, s), (0, p, p)),
        conv_norm_act(out, out, (k, 1, 1), (s, 1, 1), (p, 0, 0)),
    )


class SepInception(nn.Module):
    def __init__(self, inp: int, b0: int, b1m: int, b1: int, b2m: int, b2: int, b3: int) -> None:
        super().__init__()
        self.branch0 = conv_norm_act(inp, b0, 1)
        self.branch1 = nn.Sequential(conv_norm_act(inp, b1m, 1), temporal_separable(b1m, b1, 3, 1, 1))
        self.branch2 = nn.Sequential(conv_norm_act(inp, b2m, 1), temporal_separable(b2m, b2, 3, 1, 1))
        self.branch3 = nn.Sequential(nn.MaxPool3d(3, 1, 1), conv_norm_act(inp, b3, 1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class TvS3D(nn.Module):
    def __init__(self, num_classes: int = 400, dropout: float = 0.2) -> None:
        super().__init__()
        self.features = nn.Sequential(
            temporal_separable(3, 64, 7, 2, 3),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            conv_norm_act(64, 64, 1),
            temporal_separable(64, 192, 3, 1, 1),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            SepInception(192, 64, 96, 128, 16, 32, 32),
            SepInception(256, 128, 128, 192, 32, 96, 64),
            nn.MaxPool3d(3, 2, 1),
            SepInception(480, 192, 96, 208, 16, 48, 64),
            SepInception(512, 160, 112, 224, 24, 64, 64),
            SepInception(512, 128, 128, 256, 24, 64, 64),
            SepInception(512, 112, 144, 288, 32, 64, 64),
            SepInception(528, 256, 160, 320, 32, 128, 128),
            nn.MaxPool3d(2, 2, 0),
            SepInception(832, 256, 160, 320, 32, 128, 128),
            SepInception(832, 384, 192, 384, 48, 128, 128),
        )
        self.avgpool = nn.AvgPool3d((2, 7, 7), stride=1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Conv3d(1024, num_classes, 1, bias=True))

    def forward(self, x: Tensor) -> Tensor:
        x = self.classifier(self.avgpool(self.features(x)))
        return x.mean(dim=(2, 3, 4))


# ------------------------------------------------------------------ piergiaj/pytorch-i3d


def tf_same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """piergiaj's compute_pad, split as he splits it (the odd one after)."""
    total = max(kernel - stride, 0) if size % stride == 0 else max(kernel - size % stride, 0)
    return total // 2, total - total // 2


def _pad_same(x: Tensor, kernel: Sequence[int], stride: Sequence[int]) -> Tensor:
    _, _, t, h, w = x.shape
    (tf, tb), (hf, hb), (wf, wb) = (tf_same_pad(n, k, s) for n, k, s in zip((t, h, w), kernel, stride, strict=True))
    return F.pad(x, (wf, wb, hf, hb, tf, tb))  # zeros, as piergiaj's F.pad default


class MaxPool3dSamePadding(nn.MaxPool3d):
    def forward(self, x: Tensor) -> Tensor:
        return super().forward(_pad_same(x, self.kernel_size, self.stride))  # type: ignore[arg-type]


class Unit3D(nn.Module):
    def __init__(
        self,
        inp: int,
        out: int,
        kernel: Sequence[int] = (1, 1, 1),
        stride: Sequence[int] = (1, 1, 1),
        activation: bool = True,
        use_batch_norm: bool = True,
        use_bias: bool = False,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.activation = tuple(kernel), tuple(stride), activation
        self.conv3d = nn.Conv3d(inp, out, self.kernel, self.stride, padding=0, bias=use_bias)
        self.bn = nn.BatchNorm3d(out, eps=0.001, momentum=0.01) if use_batch_norm else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv3d(_pad_same(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.activation else x


class InceptionModule(nn.Module):
    def __init__(self, inp: int, c: Sequence[int]) -> None:
        super().__init__()
        self.b0 = Unit3D(inp, c[0])
        self.b1a = Unit3D(inp, c[1])
        self.b1b = Unit3D(c[1], c[2], (3, 3, 3))
        self.b2a = Unit3D(inp, c[3])
        self.b2b = Unit3D(c[3], c[4], (3, 3, 3))
        self.b3a = MaxPool3dSamePadding((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(inp, c[5])

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


class PiergiajI3D(nn.Module):
    """``InceptionI3d`` up to 'Logits'; ``forward`` returns per-time logits (B, classes, t) as piergiaj's does."""

    ENDPOINTS = (
        "Conv3d_1a_7x7",
        "MaxPool3d_2a_3x3",
        "Conv3d_2b_1x1",
        "Conv3d_2c_3x3",
        "MaxPool3d_3a_3x3",
        "Mixed_3b",
        "Mixed_3c",
        "MaxPool3d_4a_3x3",
        "Mixed_4b",
        "Mixed_4c",
        "Mixed_4d",
        "Mixed_4e",
        "Mixed_4f",
        "MaxPool3d_5a_2x2",
        "Mixed_5b",
        "Mixed_5c",
    )

    def __init__(self, num_classes: int = 400, dropout: float = 0.5) -> None:
        super().__init__()
        blocks: dict[str, nn.Module] = {
            "Conv3d_1a_7x7": Unit3D(3, 64, (7, 7, 7), (2, 2, 2)),
            "MaxPool3d_2a_3x3": MaxPool3dSamePadding((1, 3, 3), (1, 2, 2)),
            "Conv3d_2b_1x1": Unit3D(64, 64),
            "Conv3d_2c_3x3": Unit3D(64, 192, (3, 3, 3)),
            "MaxPool3d_3a_3x3": MaxPool3dSamePadding((1, 3, 3), (1, 2, 2)),
            "Mixed_3b": InceptionModule(192, [64, 96, 128, 16, 32, 32]),
            "Mixed_3c": InceptionModule(256, [128, 128, 192, 32, 96, 64]),
            "MaxPool3d_4a_3x3": MaxPool3dSamePadding((3, 3, 3), (2, 2, 2)),
            "Mixed_4b": InceptionModule(480, [192, 96, 208, 16, 48, 64]),
            "Mixed_4c": InceptionModule(512, [160, 112, 224, 24, 64, 64]),
            "Mixed_4d": InceptionModule(512, [128, 128, 256, 24, 64, 64]),
            "Mixed_4e": InceptionModule(512, [112, 144, 288, 32, 64, 64]),
            "Mixed_4f": InceptionModule(528, [256, 160, 320, 32, 128, 128]),
            "MaxPool3d_5a_2x2": MaxPool3dSamePadding((2, 2, 2), (2, 2, 2)),
            "Mixed_5b": InceptionModule(832, [256, 160, 320, 32, 128, 128]),
            "Mixed_5c": InceptionModule(832, [384, 192, 384, 48, 128, 128]),
        }
        for name, block in blocks.items():
            self.add_module(name, block)
        self.avg_pool = nn.AvgPool3d((2, 7, 7), (1, 1, 1))
        self.dropout = nn.Dropout(dropout)
        self.logits = Unit3D(1024, num_classes, activation=False, use_batch_norm=False, use_bias=True)

    def forward(self, x: Tensor) -> Tensor:
        for name in self.ENDPOINTS:
            x = self._modules[name](x)  # type: ignore[misc]
        x = self.logits(self.dropout(self.avg_pool(x)))
        return x.squeeze(3).squeeze(3)


def deepmind_logits(model: PiergiajI3D, x: Tensor) -> Tensor:
    """DeepMind's ``averaged_logits``: piergiaj's per-time logits averaged over time."""
    return model(x).mean(dim=2)


# ------------------------------------------------------------------ initialisation that keeps activations' scale


@torch.no_grad()
def scale_preserving_init(model: nn.Module, seed: int) -> nn.Module:
    """Kaiming normal (fan-in) for convs and linear layers, BatchNorm near identity with spread.

    With PyTorch's defaults activations shrink layer by layer and a deep network's
    logits hardly depend on its input; here each layer keeps its input's scale, so
    that equal logits mean equal functions. Deterministic for a seed.
    """
    g = torch.Generator().manual_seed(seed)

    def normal(t: Tensor, std: float) -> None:
        t.copy_(torch.randn(t.shape, generator=g) * std)

    def uniform(t: Tensor, lo: float, hi: float) -> None:
        t.copy_(lo + (hi - lo) * torch.rand(t.shape, generator=g))

    for m in model.modules():
        if isinstance(m, (nn.Conv3d, nn.Conv2d, nn.Linear)):
            normal(m.weight, math.sqrt(2.0 / m.weight[0].numel()))
            if m.bias is not None:
                normal(m.bias, 0.1)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            uniform(m.weight, 0.6, 1.1)
            normal(m.bias, 0.1)
            normal(m.running_mean, 0.1)
            uniform(m.running_var, 0.6, 1.6)
    return model


def import_torchvision_if_installed() -> bool:
    """Make an installed torchvision importable over the CPU build of torch; False when it is not installed.

    The PyPI wheel of torchvision for a torch version is built against CUDA
    torch; over the CPU build its C extension does not load, and ``import
    torchvision`` fails registering fake kernels for ``torchvision::nms`` and
    ``qnms``. Declaring those two schemas lets the import finish (the ops stay
    unusable; the video models need none). Hugging Face's transformers imports
    torchvision when it is installed, so its tests need this too.
    """
    import importlib.util
    import sys

    if importlib.util.find_spec("torchvision") is None:
        return False
    try:
        import torchvision
    except RuntimeError as error:
        if "torchvision::nms" not in str(error):
            raise
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        lib = torch.library.Library("torchvision", "FRAGMENT")
        for op in ("nms", "qnms"):
            lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _KEEP.append(lib)  # a Library unregisters its ops when collected
        import torchvision  # noqa: F401
    return True


_KEEP: list[object] = []
