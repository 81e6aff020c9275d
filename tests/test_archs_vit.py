"""The video ViTs (TimeSformer, VideoMAE): parameters and MACs against their references, shapes, position tables.

Counting runs at the paper's input on the meta device only; real forwards use
small clips. The equivalence with Hugging Face's models (built here with random
weights) is tested in the second half, skipped without ``transformers``.
"""

import functools

import pytest
import torch

import archs
from archs._vit import Attention, sinusoid_table
from bench.counting import count

# Parameters with 400 classes: transformers 5.25's TimesformerForVideoClassification (default config) and
# VideoMAEForVideoClassification (ViT-S: hidden 384, 6 heads, MLP 1536; ViT-B: default config), built and counted.
# MACs: the same models with eager attention, counted by vbench's meta-device counter at the paper's input
# (convolutions, linear layers and matmuls, attention's included; norms excluded). fvcore, which also counts
# LayerNorm, gives 196.05 / 56.95 / 180.49 G on the same models (modern_families.md); the published figures
# are 196 (mmaction2), 57 and 180 (mmaction2 / VideoMAE).
REFERENCE = {
    "timesformer": (121_566_352, 195_830_280_192),
    "videomae_vit_s": (22_033_936, 56_878_061_568),
    "videomae_vit_b": (86_534_800, 180_344_893_440),
}


def _vit_macs(dim: int, mlp: int, depth: int, tokens: int, patch_in: int, classes: int = 400) -> int:
    """A ViT's MACs by hand: per block qkv 3D^2 N + proj D^2 N + MLP 2 D M N + attention 2 N^2 D; patches; head."""
    per_block = 4 * dim * dim * tokens + 2 * dim * mlp * tokens + 2 * tokens * tokens * dim
    return depth * per_block + tokens * dim * patch_in + dim * classes


@functools.cache
def _model(name: str) -> torch.nn.Module:
    """One small-headed model per architecture, built once (building TimeSformer takes seconds)."""
    torch.manual_seed(0)
    return archs.create_model(name, num_classes=5).eval()


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_parameters_and_macs_equal_the_reference(name):
    params, macs = REFERENCE[name]
    counts = count(name, (1, *archs.get_arch(name).default_input))
    assert counts.params == params
    assert counts.macs == macs


def test_videomae_macs_by_hand_count_attention():
    tokens = 8 * 14 * 14  # 16 frames / tubelet 2, 224 / 16 squared
    assert REFERENCE["videomae_vit_b"][1] == _vit_macs(768, 3072, 12, tokens, 3 * 2 * 16 * 16)
    assert REFERENCE["videomae_vit_s"][1] == _vit_macs(384, 1536, 12, tokens, 3 * 2 * 16 * 16)
    # Without attention's two matmuls the count would be the 135 G a counter blind to fused attention reports.
    without = REFERENCE["videomae_vit_b"][1] - 12 * 2 * tokens * tokens * 768
    assert round(without / 1e9) == 135


def test_timesformer_macs_by_hand():
    d, t, s = 768, 8, 14 * 14
    per_block = (
        4 * d * d * s * t  # temporal qkv + proj, over the patch tokens
        + 2 * s * t * t * d  # temporal attention: S sequences of T
        + d * d * s * t  # temporal_fc
        + 4 * d * d * t * (s + 1)  # spatial qkv + proj: T sequences of 1 + S (the class token repeated)
        + 2 * t * (s + 1) ** 2 * d  # spatial attention
        + 2 * d * 4 * d * (1 + s * t)  # MLP
    )
    assert REFERENCE["timesformer"][1] == 12 * per_block + s * t * d * 3 * 16 * 16 + d * 400


@pytest.mark.parametrize(
    ("name", "clip", "grid"),
    [
        ("videomae_vit_s", (3, 4, 32, 48), (2, 2, 3)),
        ("videomae_vit_s", (3, 2, 16, 16), (1, 1, 1)),
        ("timesformer", (3, 3, 32, 48), (1, 1, 1)),
    ],
)
def test_small_clips_run_with_interpolated_tables(name, clip, grid):
    model = _model(name)
    x = torch.randn(2, *clip)
    with torch.inference_mode():
        features = model.forward_features(x)
        logits = model(x)
    assert tuple(features.shape) == (2, model.num_features, *grid)
    assert tuple(logits.shape) == (2, 5) and torch.isfinite(logits).all()


def test_videomae_features_are_the_token_grid_and_the_head_their_mean():
    model = _model("videomae_vit_s")
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.inference_mode():
        f = model.forward_features(x)
        assert torch.allclose(model(x), model.head(model.fc_norm(f.mean((2, 3, 4)))), atol=1e-6)


def test_position_tables_are_used_unchanged_at_the_paper_clip():
    with torch.device("meta"):
        vmae = archs.create_model("videomae_vit_b")
        tsf = archs.create_model("timesformer")
    assert vmae.position_table((8, 14, 14)) is vmae.pos_embed
    assert tuple(vmae.position_table((4, 7, 7)).shape) == (1, 4 * 7 * 7, 768)
    assert tsf._time_table(8) is tsf.time_embed
    assert tuple(tsf._space_table(7, 9).shape) == (1, 63, 768)


def test_videomae_interpolation_keeps_a_table_constant_along_an_axis():
    """Interpolating in space leaves each frame's table a function of space only; linear time keeps the ends."""
    with torch.device("meta"):
        model = archs.create_model("videomae_vit_s")
    table = torch.arange(8.0).reshape(8, 1, 1, 1).expand(8, 14, 14, 384).reshape(1, -1, 384)
    model.pos_embed = table.clone()
    out = model.position_table((8, 7, 7)).reshape(8, 7, 7, 384)
    assert torch.allclose(out, torch.arange(8.0).reshape(8, 1, 1, 1).expand_as(out), atol=1e-5)
    out = model.position_table((16, 14, 14)).reshape(16, 14, 14, 384)
    assert out[0].eq(0).all() and out[-1].eq(7).all()


def test_sinusoid_table_by_hand():
    table = sinusoid_table(3, 4)[0]
    p = 2.0
    expected = [
        torch.sin(torch.tensor(p)),
        torch.cos(torch.tensor(p)),
        torch.sin(torch.tensor(p / 100)),
        torch.cos(torch.tensor(p / 100)),
    ]
    assert torch.allclose(table[2], torch.stack(expected))
    assert table[0].tolist() == [0.0, 1.0, 0.0, 1.0]


def test_attention_is_softmax_of_scaled_scores_and_ignores_a_key_bias():
    torch.manual_seed(0)
    attn = Attention(8, 2, qv_bias=True).eval()
    torch.nn.init.normal_(attn.q_bias)
    torch.nn.init.normal_(attn.v_bias)
    x = torch.randn(2, 5, 8)
    w, b = attn.qkv.weight, torch.cat((attn.q_bias, torch.zeros(8), attn.v_bias))

    def explicit(key_bias):
        q, k, v = (x @ w.T + b + torch.cat((torch.zeros(8), key_bias, torch.zeros(8)))).split(8, -1)
        q, k, v = (t.reshape(2, 5, 2, 4).transpose(1, 2) for t in (q, k, v))
        out = ((q @ k.transpose(-2, -1)) / 2.0).softmax(-1) @ v
        return attn.proj(out.transpose(1, 2).reshape(2, 5, 8))

    with torch.no_grad():
        assert torch.allclose(attn(x), explicit(torch.zeros(8)), atol=1e-6)
        assert torch.allclose(attn(x), explicit(torch.randn(8)), atol=1e-5)


def test_the_kinds_of_work_are_declared():
    with torch.device("meta"):
        model = archs.create_model("timesformer")
    block = model.blocks[0]
    assert block.attn.work_kind == block.temporal_attn.work_kind == "attention"
    assert block.mlp.work_kind == "mlp"
    assert model.patch_embed.work_kind == "patch_embedding"


def test_frames_and_size_options_size_the_tables_and_the_default_input():
    vmae, tsf = archs.get_arch("videomae_vit_b"), archs.get_arch("timesformer")
    assert vmae.default_input == (3, 16, 224, 224) and tsf.default_input == (3, 8, 224, 224)
    assert vmae.default_input_for(frames=32, size=160) == (3, 32, 160, 160)
    assert tsf.default_input_for(frames=16, size=448) == (3, 16, 448, 448)
    with torch.device("meta"):
        hr = archs.create_model("timesformer", frames=16, size=448)
    assert tuple(hr.pos_embed.shape) == (1, 1 + 28 * 28, 768) and tuple(hr.time_embed.shape) == (1, 16, 768)
    with pytest.raises(ValueError, match="frames must be at least 2"):
        vmae.default_input_for(frames=1)
    with pytest.raises(TypeError):
        archs.create_model("timesformer", depth=24)
