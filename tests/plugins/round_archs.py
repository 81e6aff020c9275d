"""``round_hang``: a tiny network whose second worker hangs, for a ``--rounds`` run cut short (a vbench plugin).

With ``$ROUND_HANG_MARK`` set to a path, the first worker process that runs a real forward writes its pid
there and works; any later worker (round 2 of the run) creates ``<mark>.hanging`` and waits, at most 120 s,
until its parent is gone. Without the variable it always works.
"""

import os
import time
from pathlib import Path

import torch
from torch import nn

from archs import register_arch


class Tiny(nn.Module):
    def __init__(self, num_classes: int = 400) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 1)
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mark = os.environ.get("ROUND_HANG_MARK")
        if x.device.type != "meta" and mark:
            path = Path(mark)
            try:
                with path.open("x") as f:
                    f.write(str(os.getpid()))
            except FileExistsError:
                if path.read_text() != str(os.getpid()):
                    path.with_suffix(".hanging").touch()
                    parent, deadline = os.getppid(), time.monotonic() + 120
                    while os.getppid() == parent and time.monotonic() < deadline:
                        time.sleep(0.05)
        return self.fc(self.conv(x).mean(dim=(2, 3, 4)))


@register_arch(family="fake", paper="test double", default_input=(3, 4, 8, 8), min_input=(3, 1, 1, 1),
               stages=(("all", "3d"),))  # fmt: skip
def round_hang(**kw):
    return Tiny(**kw)
