"""``vbench inspect NAME --tokens``: tokens per stage, read from output shapes on the meta device.

Every expected count is worked out by hand from the paper's architecture at the
given input (stride by stride), not read back from the code.
"""

import json

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.measure.tokens import read_tokens

runner = CliRunner()


def _tokens(*args):
    result = runner.invoke(app, ["inspect", *args, "--tokens", "--json"])
    assert result.exit_code == 0, result.output
    return {r["name"]: (tuple(r["grid"]), r["tokens"], r["width"]) for r in json.loads(result.stdout)}


def test_r3d_18_at_8x112_halves_time_and_space_from_layer2():
    # Stem: 3x7x7 conv, stride 1x2x2 (112 -> 56), no pooling; layers 2-4 stride 2 in T, H and W.
    got = _tokens("r3d_18", "--frames", "8", "--size", "112")
    assert got == {
        "stem": ((8, 56, 56), 8 * 56 * 56, 64),
        "layer1": ((8, 56, 56), 25088, 64),
        "layer2": ((4, 28, 28), 3136, 128),
        "layer3": ((2, 14, 14), 392, 256),
        "layer4": ((1, 7, 7), 49, 512),
        "avgpool": ((1, 1, 1), 1, 512),
        "fc": ((), 1, 400),
    }


def test_videomae_vit_s_at_16x224_has_1568_tokens_of_384():
    # Tubelets of 2x16x16: 16/2 x 224/16 x 224/16 = 8x14x14 = 1568 tokens, no class token, kept to the end.
    got = _tokens("videomae_vit_s")
    assert got["patch_embed"] == ((8, 14, 14), 1568, 384)
    assert got["blocks"] == ((1568,), 1568, 384)
    assert got["head"] == ((), 1, 400)


def test_mvit_v2_s_pools_its_tokens_stage_by_stage():
    # At 4x64 (the paper's 16x224 takes longer; docs/inspect.md gives its figures): patches 3x7x7, stride
    # 2x4x4, give 2x16x16 = 512 tokens of 96, plus a class token. Each new stage pools the query with stride
    # 1x2x2 (16 -> 8 -> 4 -> 2) and doubles the width: blocks 1, 3 and 14 start stages 2, 3 and 4.
    got = _tokens("mvit_v2_s", "--frames", "4", "--size", "64", "--depth", "2")
    assert got["patch_embed"] == ((2, 16, 16), 512, 96)
    stages = {(1 + 2 * 16 * 16, 96): [0], (1 + 2 * 8 * 8, 192): [1, 2], (1 + 2 * 4 * 4, 384): list(range(3, 14))}
    stages[(1 + 2 * 2 * 2, 768)] = [14, 15]
    for (tokens, width), blocks in stages.items():
        for i in blocks:
            assert got[f"blocks.{i}"] == ((tokens,), tokens, width), i


def test_a_container_never_called_shows_its_blocks_and_a_pattern_maps_names():
    # TimeSformer's blocks are a ModuleList its forward walks: each block shows at depth 1's place. 8x112 in
    # 16x16 patches: 8 x 7 x 7 tokens and one class token.
    result = runner.invoke(app, ["inspect", "timesformer*", "--frames", "8", "--size", "112", "--tokens", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)["timesformer"]}
    assert [n for n in rows if n.startswith("blocks")] == [f"blocks.{i}" for i in range(12)]
    assert rows["blocks.11"]["tokens"] == 8 * 49 + 1 and rows["blocks.11"]["width"] == 768


def test_the_table_shows_the_grid():
    result = runner.invoke(app, ["inspect", "r3d_18", "--frames", "8", "--size", "112", "--tokens"])
    assert result.exit_code == 0, result.output
    assert "8x56x56" in result.stdout and "25,088" in result.stdout


@pytest.mark.parametrize(
    ("shape", "clip", "expected"),
    [
        ((1, 16, 56, 56, 96), (32, 224, 224), ((16, 56, 56), 50176, 96)),  # channels last: 96 > 56 cannot be H
        ((1, 96, 16, 56, 56), (32, 224, 224), ((16, 56, 56), 50176, 96)),
        ((8, 64, 56, 56), (8, 224, 224), ((8, 56, 56), 8 * 56 * 56, 64)),  # 8 frames folded into the batch
        ((8, 197, 768), (8, 224, 224), ((8, 197), 8 * 197, 768)),  # 8 sequences of 197 per clip
        ((1, 400), (8, 224, 224), ((), 1, 400)),
    ],
)
def test_read_tokens_by_rank(shape, clip, expected):
    assert read_tokens(shape, clip) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "--tokens"], "unknown architecture 'nope'"),
        (["r3d_18", "--tokens", "--frames", "2"], "r3d_18 needs at least 8 frames"),
        (["r3d_18", "--tokens", "--time"], "--tokens and --time are separate views"),
        (["r3d_18", "--tokens", "--depth", "-1"], "--depth must be >= 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = runner.invoke(app, ["inspect", *args])
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
