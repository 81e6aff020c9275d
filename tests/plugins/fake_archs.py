"""Architectures that fail on purpose, for the runner's fault tests (a vbench plugin).

On the meta device (counting) they behave; on a real device:
``fake_oom`` raises an out-of-memory error for batches above 1, ``fake_crash``
kills its process for batches above 1, ``fake_hang`` never returns, and
``fake_ok`` is a tiny network that works. ``fake_broken`` cannot even be
built (a bug in the model code, not the user's mistake). ``fake_killtask``
kills the submitit array task that runs it (its worker's parent).
"""

import json
import os
import time

import torch
from torch import nn

from archs import register_arch

_SPEC = {"default_input": (3, 4, 8, 8), "min_input": (3, 1, 1, 1), "paper": "test double", "stages": (("all", "3d"),)}


class Tiny(nn.Module):
    def __init__(self, behaviour: str = "ok", num_classes: int = 400) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 1)
        self.fc = nn.Linear(4, num_classes)
        self.behaviour = behaviour

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "meta":
            if self.behaviour == "oom" and x.shape[0] > 1:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB (fake)")
            if self.behaviour == "crash" and x.shape[0] > 1:
                os._exit(3)
            if self.behaviour == "slot" and os.environ.get("VBENCH_SLOT_LOG"):
                start = time.time()
                time.sleep(0.05)
                with open(os.environ["VBENCH_SLOT_LOG"], "a") as f:
                    f.write(json.dumps([os.environ.get("CUDA_VISIBLE_DEVICES"), start, time.time()]) + "\n")
            if self.behaviour == "killtask" and os.environ.get("SUBMITIT_EXECUTOR") == "local":
                os.kill(os.getppid(), 9)  # the array task that runs this worker dies, as if pre-empted
                os._exit(9)
            if self.behaviour == "hang":
                parent = os.getppid()
                deadline = time.monotonic() + 120
                while os.getppid() == parent and time.monotonic() < deadline:
                    time.sleep(0.05)
        return self.fc(self.conv(x).mean(dim=(2, 3, 4)))


@register_arch(family="fake", **_SPEC)
def fake_ok(**kw):
    return Tiny("ok", **kw)


@register_arch(family="fake", **_SPEC)
def fake_oom(**kw):
    return Tiny("oom", **kw)


@register_arch(family="fake", **_SPEC)
def fake_crash(**kw):
    return Tiny("crash", **kw)


@register_arch(family="fake", **_SPEC)
def fake_hang(**kw):
    return Tiny("hang", **kw)


@register_arch(family="fake", **_SPEC)
def fake_broken(**kw):
    model = Tiny("ok", **kw)
    model.fc.bias.zero_is_not_a_method()  # a model bug: AttributeError
    return model


# fake_slot1..4: each forward logs (CUDA_VISIBLE_DEVICES, start, end) to $VBENCH_SLOT_LOG.
for _i in range(1, 5):

    def _slot(**kw):
        return Tiny("slot", **kw)

    _slot.__name__ = f"fake_slot{_i}"
    register_arch(family="fake", **_SPEC)(_slot)


@register_arch(family="fake", **_SPEC)
def fake_killtask(**kw):
    return Tiny("killtask", **kw)
