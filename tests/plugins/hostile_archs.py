"""Architectures that attack the harness, for the trust tests (a vbench plugin).

On the meta device (counting) they behave like a tiny network; on a real device:

- ``hostile_spoof`` prints look-alikes of result messages, half lines, invalid
  UTF-8 and rich markup on stdout and stderr, and reads stdin;
- ``hostile_markup`` raises an error full of markup, Markdown and HTML;
- ``hostile_fork`` forks a child that sleeps (its pid goes to ``$HOSTILE_PIDS``, a line ``PID fork``);
- ``hostile_hang`` never returns while ``$HOSTILE_HANG`` is set (pid to ``$HOSTILE_PIDS``),
  and forks a sleeping child too;
- ``hostile_none`` returns None; ``hostile_shape`` returns 7 classes, even on meta;
- ``hostile_fill`` fills the file system of ``$HOSTILE_FILL`` (to run it out of space);
- ``hostile_forge`` writes forged result rows to every file descriptor from 3 to 20;
- ``hostile_daemon`` leaves a ``setsid`` daemon and a double-forked grandchild behind;
- ``hostile_exit`` calls ``sys.exit(0)`` in its forward;
- ``hostile_exitbuild`` calls ``sys.exit(1)`` (``$HOSTILE_EXIT_BUILD=exit``) or raises
  ``KeyboardInterrupt`` (``=kbi``) in its builder, while vbench counts it.
"""

import contextlib
import json
import os
import sys
import time

import torch
from torch import nn

from archs import register_arch

_SPEC = {"default_input": (3, 2, 4, 4), "min_input": (3, 1, 1, 1), "paper": "test double", "stages": (("all", "3d"),)}

FAKE_ROW = {"arch": "spoofed", "status": "ok", "latency_ms": 0.001}


def _note_pid(pid: int, behaviour: str) -> None:
    """A line ``PID BEHAVIOUR`` in ``$HOSTILE_PIDS``: one run of several hostile models tells whose process it is."""
    if os.environ.get("HOSTILE_PIDS"):
        with open(os.environ["HOSTILE_PIDS"], "a") as f:
            f.write(f"{pid} {behaviour}\n")


def _sleeping_child(behaviour: str) -> None:
    pid = os.fork()
    if pid == 0:  # the child: sleeps, holding whatever the parent had open
        time.sleep(300)
        os._exit(0)
    _note_pid(pid, behaviour)


class Hostile(nn.Module):
    def __init__(self, behaviour: str, num_classes: int = 400) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 1)
        self.fc = nn.Linear(4, num_classes if behaviour != "shape" else 7)
        self.behaviour = behaviour
        self.done = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        real = x.device.type != "meta"
        if real and self.behaviour == "spoof":
            for stream in (sys.stdout, sys.stderr):
                stream.write("@@vbench " + json.dumps({"type": "row", "row": FAKE_ROW}) + "\n")
                stream.write(json.dumps({"type": "row", "row": FAKE_ROW}) + "\n")
                stream.write("[/] [bold red]markup[/] no newline at the end")
                stream.flush()
            sys.stdout.buffer.write(b"\xff\xfe invalid utf-8 \x80\n")
            sys.stdout.buffer.flush()
            sys.stdin.read()
        if real and self.behaviour == "markup":
            raise RuntimeError(
                "[/] [bold]boom[/bold] | forged | <script>alert(1)</script> `x` [enforce fail at a.cpp:1]"
            )
        if real and self.behaviour == "fork" and not self.done:
            self.done = True
            _sleeping_child("fork")
        if real and self.behaviour == "hang" and os.environ.get("HOSTILE_HANG"):
            _sleeping_child("hang")
            _note_pid(os.getpid(), "hang")
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                time.sleep(0.05)
        if real and self.behaviour == "forge":
            line = (
                json.dumps({"type": "row", "row": {**FAKE_ROW, "arch": "hostile_forge", "batch": x.shape[0]}}) + "\n"
            ).encode()
            for fd in range(3, 21):
                with contextlib.suppress(OSError):
                    os.write(fd, line)
        if real and self.behaviour == "daemon" and not self.done:
            self.done = True
            import subprocess

            child = subprocess.Popen(["sleep", "300"], start_new_session=True)
            _note_pid(child.pid, "daemon")
            pid = os.fork()
            if pid == 0:
                os.setsid()
                grandchild = os.fork()
                if grandchild == 0:
                    time.sleep(300)
                    os._exit(0)
                _note_pid(grandchild, "daemon")
                os._exit(0)
            os.waitpid(pid, 0)
        if real and self.behaviour == "exit":
            sys.exit(0)
        if real and self.behaviour == "none":
            return None  # type: ignore[return-value]
        if real and self.behaviour == "fill" and os.environ.get("HOSTILE_FILL"):
            with open(os.path.join(os.environ["HOSTILE_FILL"], "filler"), "ab") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass
        return self.fc(self.conv(x).mean(dim=(2, 3, 4)))


for _behaviour in ("spoof", "markup", "fork", "hang", "none", "shape", "fill", "forge", "daemon", "exit"):

    def _build(behaviour: str = _behaviour, **kw: object) -> Hostile:
        return Hostile(behaviour, **kw)  # type: ignore[arg-type]

    _build.__name__ = f"hostile_{_behaviour}"
    register_arch(family="hostile", **_SPEC)(_build)


@register_arch(family="hostile", **_SPEC)
def hostile_exitbuild(**kw: object) -> Hostile:
    how = os.environ.get("HOSTILE_EXIT_BUILD")
    if how == "exit":
        sys.exit(1)
    if how == "kbi":
        raise KeyboardInterrupt
    return Hostile("ok", **kw)  # type: ignore[arg-type]
