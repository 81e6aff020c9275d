"""Architectures for ``benchmarks/gate_power.py`` (a vbench plugin): copies of one architecture, one made slower.

Every name builds ``$VBENCH_GATE_BASE`` (default ``r3d_18``) through the registry, with that
architecture's inputs, under a name of its own, so that one ``vbench profile`` run can time the base
and the head of many pairs, each in its own worker, in any order:

- ``gate_a_<i>``, ``gate_b_<i>``: the architecture itself (base and head of A/A pair ``i``);
- ``gate_s_<i>``: the architecture plus a known extra cost: after the model, ``$VBENCH_GATE_EXTRA``
  products of two ``$VBENCH_GATE_N`` x ``$VBENCH_GATE_N`` matrices (the benchmark calibrates the count to
  10 % of the model's time). Not on the meta device: its parameters and MACs are the architecture's, so
  ``compare`` sees a change in latency alone;
- ``gate_ca_<i>``, ``gate_cb_<i>``: base and head of the A/A pairs timed with contention in part of the head.

With ``$VBENCH_GATE_FORWARDS`` set to a folder, every forward on a real device appends a line with its
process id to ``<folder>/<name>``, so that the benchmark can start and stop its busy processes at a given
sample of a given round (each round of ``--rounds`` is a worker process of its own).
``$VBENCH_GATE_PAIRS`` (default 60) is how many pairs are registered.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archs import create_model, get_arch, register_arch

BASE = os.environ.get("VBENCH_GATE_BASE", "r3d_18")


class Copy(nn.Module):
    """``BASE``'s model, an optional extra cost after it, and a forward count on disk."""

    def __init__(self, name: str, extra: int = 0, **kw: Any) -> None:
        super().__init__()
        self.inner: Any = create_model(BASE, **kw)
        self.num_classes = self.inner.num_classes
        self.classifier = self.inner.classifier
        self.extra = extra
        n = int(os.environ.get("VBENCH_GATE_N", "128"))
        self.a = torch.randn(n, n)
        self.b = torch.linalg.qr(torch.randn(n, n))[0]  # orthogonal: the product keeps its size
        folder = os.environ.get("VBENCH_GATE_FORWARDS")
        self.marks = Path(folder) / name if folder else None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner.forward_features(x)

    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        return self.inner.forward_head(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.inner(x)
        if x.device.type != "meta":
            z = self.a.to(x.device)
            for _ in range(self.extra):
                z = z @ self.b
            if self.extra:
                y = y + 0 * z[0, 0]  # the extra work feeds the output: nothing can drop it
            if self.marks is not None:
                with self.marks.open("a") as f:
                    f.write(f"{os.getpid()}\n")
        return y


_spec = get_arch(BASE)


def _register(name: str, extra: int) -> None:
    def build(**kw: Any) -> nn.Module:
        return Copy(name, extra, **kw)

    build.__name__ = name
    register_arch(
        family="gate",
        paper=f"{BASE}, copied for benchmarks/gate_power.py",
        default_input=_spec.default_input,
        min_input=_spec.min_input,
        stages=_spec.stages,
    )(build)


for _i in range(int(os.environ.get("VBENCH_GATE_PAIRS", "60"))):
    for _kind in ("a", "b", "ca", "cb"):
        _register(f"gate_{_kind}_{_i}", 0)
    _register(f"gate_s_{_i}", int(os.environ.get("VBENCH_GATE_EXTRA", "0")))
