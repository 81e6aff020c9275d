"""Channel-separated networks: ir-CSN-152 and ip-CSN-152.

Reference:
    Tran, Wang, Torresani & Feiszli, "Video Classification with
    Channel-Separated Convolutional Networks", ICCV 2019. The authors' code is
    VMZ's Caffe2 ``c2/lib/models/r3d_model.py`` (``'ir-csn': '3d-sep'``,
    ``'ip-csn': '0.3d'``) and ``builder/video_model.py``.

Both are a bottleneck ResNet-152 (3/8/36/3 blocks of output widths 256, 512,
1024, 2048, inner width a quarter of that) whose 3x3x3 convolution is
channel-wise, after a 3x7x7 stem (stride (1, 2, 2)), BN, ReLU and a 1x3x3
max-pool (stride (1, 2, 2)); the first block of res3, res4 and res5 strides by 2
in time and space (its shortcut projection too); global average pool, fc.
The two differ in the middle of each block::

    ir-CSN ("interaction-reduced"):   channel-wise 3x3x3
    ip-CSN ("interaction-preserved"): 1x1x1 (all channels), BN, channel-wise 3x3x3

``ir_csn_152`` is pytorchvideo's ``create_csn(model_depth=152,
stem_pool=nn.MaxPool3d, head_pool_kernel_size=(4, 7, 7))``, as its hub builds
``csn_r101`` (``pytorchvideo/models/csn.py``, ``models/hub/csn.py``; 0.1.5):
29,703,568 parameters, BatchNorm eps 1e-5. Its head pools adaptively instead of
with pytorchvideo's fixed (4, 7, 7) kernel: the same at 32x224, where the last
map is 4x7x7, and a global pool at any other input.

``ip_csn_152`` has no pip-installable reference; it follows VMZ's ``'0.3d'``
block (the 1x1x1 conv and a BN with no ReLU before the channel-wise conv), with
VMZ's BatchNorm eps 1e-3, and otherwise ir-CSN's skeleton: 33,016,592
parameters and 108.79 GMACs at 32x256x256 (MACs of convolutions and the
classifier, norms not counted), against the VMZ model zoo's 32.8 M and 108.8
(+0.66 % and -0.01 %). The zoo's parameter counts run low: its ir-CSN-152 is
29.6 M against the 29.70 M that pytorchvideo and mmaction2 build, and
mmaction2's ip-CSN-152 has 33.02 M, as here.
Checkpoints: pytorchvideo's layout for ir-CSN-152 (mean 0.45, std 0.225, as
PySlowFast trains); ip-CSN-152 only vbench's own (VMZ's preprocessing:
torchvision's Kinetics mean and std). Both: 32 frames 2 apart, the short side
resized to 256, evaluated in 10 clips x 3 crops of 256 (``csn``, VMZ's test script).

VMZ's GFLOPs are MACs at a 256x256 crop although its table says 224 (its test
script crops 256; at 256 pytorchvideo's ir-CSN-152 gives the zoo's 96.7).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from torch import nn

from archs._blocks import ConvKind, PooledResNet, Triple, channelwise_conv, init_resnet_weights
from archs._registry import ClassesOption, CroppedClip, Family, Shape, Stages, register_arch
from archs._weights import (
    KINETICS_MEAN,
    KINETICS_STD,
    Layout,
    Preprocess,
    Pretrained,
    Protocol,
    pytorchvideo_net_key,
    register_protocol,
)
from archs.resnet import Bottleneck

__all__ = ["CSN", "PROTOCOL", "PYTORCHVIDEO", "VMZ", "CSNConfig", "pytorchvideo_key"]

_PAPER = "Tran et al., Video Classification with Channel-Separated Convolutional Networks, ICCV 2019"
_STAGE_NAMES = ("conv1", "res2", "res3", "res4", "res5")
_WIDTHS = (256, 512, 1024, 2048)
PYTORCHVIDEO_BN_EPS = 1e-5
"""BatchNorm epsilon of pytorchvideo's ``create_csn`` (PyTorch's default)."""
VMZ_BN_EPS = 1e-3
"""BatchNorm epsilon of VMZ's Caffe2 models (``SpatialBN(epsilon=1e-3)``)."""

Interaction = Literal["ir", "ip"]


@dataclass(frozen=True)
class CSNConfig(ClassesOption, CroppedClip):
    """One CSN: its blocks, the kind of its middle convolution, its BatchNorm and its paper input.

    Attributes:
        interaction: ``"ir"`` (channel-wise 3x3x3) or ``"ip"`` (1x1x1, BN, channel-wise 3x3x3).
        layers: Blocks per stage.
        bn_eps: BatchNorm epsilon.
        frames: Frames of the paper's clip.
        crop: Side of the crop its published cost refers to (256, VMZ's test crop).
        num_classes: Logits (an option).
    """

    interaction: Interaction
    layers: tuple[int, ...] = (3, 8, 36, 3)
    bn_eps: float = PYTORCHVIDEO_BN_EPS
    frames: int = 32
    crop: int = 256
    num_classes: int = 400

    @property
    def min_input(self) -> Shape:
        """8 frames (res3 to res5 halve time) of 32x32 (the stem, its pool and three stages halve space)."""
        return (3, 8, 32, 32)

    @property
    def stages(self) -> Stages:
        return tuple(zip(_STAGE_NAMES, (ConvKind.THREE_D, *(ConvKind.CHANNELWISE,) * 4), strict=True))

    def build(self) -> CSN:
        return CSN(self)


def _middle(interaction: Interaction, norm: partial[nn.BatchNorm3d]) -> Any:
    """The middle convolution of a block: channel-wise 3x3x3, after a 1x1x1 and BN for ip-CSN."""

    def make(width: int, stride: Triple) -> nn.Module:
        channelwise = channelwise_conv(width, stride)
        if interaction == "ir":
            return channelwise
        pointwise = nn.Conv3d(width, width, 1, bias=False)
        return nn.Sequential(OrderedDict(pointwise=pointwise, bn=norm(width), channelwise=channelwise))

    return make


class CSN(PooledResNet):
    """A channel-separated bottleneck ResNet (see the module docstring)."""

    def __init__(self, config: CSNConfig) -> None:
        super().__init__()
        if len(config.layers) != 4:
            raise ValueError("layers needs one entry per stage (4)")
        norm = partial(nn.BatchNorm3d, eps=config.bn_eps)
        self.stem = nn.Sequential(
            OrderedDict(
                conv=nn.Conv3d(3, 64, *ConvKind.THREE_D.parts(7, (1, 2, 2), t=3)[0], bias=False),
                bn=norm(64),
                act=nn.ReLU(inplace=True),
                pool=nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            )
        )
        middle = _middle(config.interaction, norm)

        def block(i: int, j: int, in_ch: int, width: int) -> Bottleneck:
            stride = ConvKind.CHANNELWISE.stride(2) if (i > 0 and j == 0) else (1, 1, 1)
            return Bottleneck(in_ch, width // 4, width, stride, middle, norm)

        self.add_head(self.add_stages(64, _WIDTHS, config.layers, block), config.num_classes)
        init_resnet_weights(self)


# ------------------------------------------------------------------------------- weights: layouts and preprocessing
#
# Our keys: stem.{conv,bn}, layer<s>.<b>.{conv1,bn1,conv2,bn2,conv3,bn3,downsample.<0|1>}, fc
# (ip-CSN: layer<s>.<b>.conv2.{pointwise,bn,channelwise}).

_PTV_STEM = {"conv": "conv", "bn": "norm"}
_PTV_HEAD = {"fc": "blocks.5.proj"}


def pytorchvideo_key(key: str) -> str | None:
    """Our ir-CSN key -> pytorchvideo's ``create_csn`` key: ``Net.blocks`` = [stem, 4 ``ResStage``s, head].

    ``stem.conv`` / ``stem.bn`` -> ``blocks.0.conv`` / ``blocks.0.norm`` (``ResNetBasicStem``);
    ``layer2.0.conv2.weight`` -> ``blocks.2.res_blocks.0.branch2.conv_b.weight`` (``BottleneckBlock``);
    ``layer2.0.downsample.1`` -> ``blocks.2.res_blocks.0.branch1_norm``; ``fc`` -> ``blocks.5.proj``.
    """
    return pytorchvideo_net_key(key, _PTV_STEM, _PTV_HEAD)


PYTORCHVIDEO_MEAN = (0.45, 0.45, 0.45)
"""PySlowFast's ``_C.DATA.MEAN`` (``slowfast/config/defaults.py``), with which pytorchvideo's model zoo was trained."""
PYTORCHVIDEO_STD = (0.225, 0.225, 0.225)
"""PySlowFast's ``_C.DATA.STD``."""

# VMZ's test of CSN-152 (c2/scripts/test_irCSN_152_kinetics.sh): 10 clips per video (--clip_per_video=10) of 32
# frames 2 apart (--clip_length_rgb=32 --sampling_rate_rgb=2), frames resized to 342x256 (the short side to 256),
# three 256x256 crops per clip (--crop_per_clip=3 --crop_size=256). pytorchvideo's zoo tests its CSN 32x2 the same
# way (10 x 3 views).
PROTOCOL = register_protocol(
    Protocol(
        "csn",
        10,
        3,
        source="facebookresearch/VMZ c2/scripts/test_irCSN_152_kinetics.sh (10 clips x 3 crops of 256, "
        "short side 256); pytorchvideo model_zoo.md (CSN 32x2, 10 x 3 views)",
    )
)

PYTORCHVIDEO = Preprocess(PYTORCHVIDEO_MEAN, PYTORCHVIDEO_STD, resize=256, crop=256, frames=32, frame_stride=2)
"""pytorchvideo's CSN (trained in PySlowFast): 32 frames 2 apart, short side 256, 256 crops."""
VMZ = Preprocess(KINETICS_MEAN, KINETICS_STD, resize=256, crop=256, frames=32, frame_stride=2)
"""VMZ's CSN: its test script's clips and crops; torchvision's Kinetics mean and std, which mmaction2's configs for
the VMZ-trained CSNs use (``ircsn_..._vmz`` data_preprocessor: that mean and std times 255)."""

_PTV_KEYS = r"^blocks\.(0\.(conv|norm)\.|[1-4]\.res_blocks\.\d+\.branch2\.norm_b\.(weight|bias|running_))"


def _pytorchvideo(config: CSNConfig) -> Pretrained:
    """ir-CSN-152: pytorchvideo's layout (``create_csn``, as PySlowFast saves it), at its preprocessing."""
    layout = Layout("pytorchvideo", pytorchvideo_key, PYTORCHVIDEO, PROTOCOL.name, pattern=_PTV_KEYS)
    return Pretrained(PYTORCHVIDEO, PROTOCOL.name, (layout,))


def _vmz(config: CSNConfig) -> Pretrained:
    """ip-CSN-152: VMZ's preprocessing and protocol; no pip-installable reference, so vbench's layout only."""
    return Pretrained(VMZ, PROTOCOL.name)


_CSN = Family("csn", color="#ce6dbd")


@register_arch(
    family=_CSN,
    paper=_PAPER,
    pretrained=_pytorchvideo,
    description="interaction-reduced CSN-152: channel-wise 3x3x3 bottlenecks",
)
def ir_csn_152(**options: Any) -> CSNConfig:
    """ir-CSN-152 as pytorchvideo builds it (``create_csn(model_depth=152, stem_pool=nn.MaxPool3d)``), 32x256x256."""
    return CSNConfig("ir").with_options(**options)


@register_arch(
    family=_CSN, paper=_PAPER, pretrained=_vmz, description="interaction-preserved CSN-152: 1x1x1 + channel-wise 3x3x3"
)
def ip_csn_152(**options: Any) -> CSNConfig:
    """ip-CSN-152: VMZ's ``'0.3d'`` blocks (1x1x1, BN, channel-wise 3x3x3) on ir-CSN-152's skeleton, 32x256x256."""
    return CSNConfig("ip", bn_eps=VMZ_BN_EPS).with_options(**options)
