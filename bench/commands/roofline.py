"""``vbench roofline``: the device's measured peaks and bandwidth (cached)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from bench.commands.common import Device, choices, one_line
from bench.errors import UsageError
from bench.results.records import DTYPES


def roofline_cmd(
    device: Device = "auto",
    dtype: Annotated[str, typer.Option(help=f"{choices(DTYPES)}, comma-separated.")] = "fp32",
    refresh: Annotated[bool, typer.Option("--refresh", help="Measure again instead of reading the cache.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The device's measured roofline: peak TFLOP/s (matmul, conv3d), copy bandwidth, ridge point (cached)."""
    from bench.measure.roofline import cache_path, is_cached, roofline_for
    from bench.results.records import choice
    from bench.run.plan import resolve_device

    chosen = resolve_device(device)
    dtypes = [choice(d.strip(), DTYPES, "dtype") for d in dtype.split(",")]
    try:
        found = [roofline_for(chosen, d, refresh=refresh).to_dict() for d in dtypes]
    except RuntimeError as e:  # a pair without a roofline (fp16 on a CPU), or a probe that measured nonsense
        raise UsageError(one_line(str(e))) from None
    if as_json:
        typer.echo(json.dumps(found, indent=1))
        return
    for r in found:
        typer.echo(
            f"{r['device']} {r['dtype']} ({r['device_name']}, torch {r['torch_version']}, {r['threads']} threads): "
            f"peak {r['peak_tflops']:.3f} TFLOP/s (matmul {r['matmul_tflops']:.3f}, conv3d {r['conv3d_tflops']:.3f}), "
            f"bandwidth {r['bandwidth_gbs']:.1f} GB/s, ridge {r['ridge_flop_per_byte']:.1f} FLOP/byte, "
            f"measured {r['measured_at']}"
        )
    if all(is_cached(r) for r in found):
        typer.echo(f"cache: {cache_path()}")
    else:
        typer.echo(f"not cached: {cache_path()} cannot be written (measured again next time)")
