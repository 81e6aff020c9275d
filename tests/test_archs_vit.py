"""The video ViTs (TimeSformer, VideoMAE): parameters and MACs against their references, shapes, position tables.

Counting runs at the paper's input on the meta device only; real forwards use
small clips. The equivalence with Hugging Face's models (built here with random
weights) is tested in the second half, skipped without ``transformers``.
"""

import functools
import os

import pytest
import reference_impls as ref_impls
import torch

import archs
from archs._vit import Attention, sinusoid_table
from bench.measure.counting import count

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
    assert block.attn.work_kind == block.temporal_attn.work_kind == block.temporal_fc.work_kind == "attention"
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


# ---------------------------------------------------------------- checkpoints: Hugging Face's models as the oracle
#
# The reference is built from a config with random weights, saved with save_pretrained (config.json +
# model.safetensors), and loaded by ours through create_model(name, weights=folder). Small tables (frames and
# size options on both sides) keep the forwards cheap; the depth and widths are the registered architecture's.
# Weights are drawn with a spread that keeps activations at their scale (DESIGN.md, "Testing equivalence"): the
# mismatch is judged against how much the reference's logits move between two inputs.

SMALL = {"videomae_vit_s": (4, 32), "videomae_vit_b": (4, 32), "timesformer": (2, 32)}


def _transformers():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the references are built from configs; nothing is downloaded
    pytest.importorskip("safetensors", reason="reading save_pretrained folders needs safetensors (test-refs extra)")
    ref_impls.import_torchvision_if_installed()  # transformers imports an installed torchvision
    return pytest.importorskip("transformers", reason="the reference models come from transformers (test-refs extra)")


def _hf_model(name: str) -> torch.nn.Module:
    """The reference for ``name`` at its small clip (7 classes), weights drawn at a scale that keeps activations alive."""
    _transformers()
    return _built_hf_model(name)


@functools.cache
def _built_hf_model(name: str, classes: int = 7) -> torch.nn.Module:
    import transformers

    frames, size = SMALL[name]
    if name == "timesformer":
        config = transformers.TimesformerConfig(num_labels=classes, num_frames=frames, image_size=size)
        cls = transformers.TimesformerForVideoClassification
    else:
        widths = {"videomae_vit_s": {"hidden_size": 384, "num_attention_heads": 6, "intermediate_size": 1536}}
        config = transformers.VideoMAEConfig(
            num_labels=classes, num_frames=frames, image_size=size, **widths.get(name, {})
        )
        cls = transformers.VideoMAEForVideoClassification
    with torch.device("meta"):
        model = cls(config)
    model = model.to_empty(device="cpu").eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for key, p in model.named_parameters():
            if "layernorm" in key or "norm." in key:  # LayerNorms near identity, with some spread
                p.copy_((1.0 if key.endswith("weight") else 0.0) + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / max(p.shape[-1], 1) ** 0.5)
    return model


def _hf_logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(pixel_values=x.transpose(1, 2)).logits  # theirs take (B, T, C, H, W)


def _assert_same_function(ours: torch.nn.Module, ref: torch.nn.Module, name: str) -> None:
    frames, size = SMALL[name]
    x1, x2 = torch.randn(2, 2, 3, frames, size, size, generator=torch.Generator().manual_seed(1))
    expected, moved = _hf_logits(ref, x1), _hf_logits(ref, x2)
    with torch.no_grad():
        got = ours.eval()(x1)
    spread = (expected - moved).abs().max().item()
    assert spread > 0.1, "the reference's logits hardly depend on the input: the test would prove nothing"
    # VideoMAE: LayerNorm eps 1e-6 here, 1e-12 and 1e-5 (fc_norm) in HF; TimeSformer: SDPA vs explicit softmax.
    assert (got - expected).abs().max().item() <= 1e-4 * spread


@pytest.mark.parametrize("name", sorted(SMALL))
def test_a_hugging_face_folder_gives_the_reference_logits(name, tmp_path):
    ref = _hf_model(name)
    ref.save_pretrained(tmp_path)
    assert {"config.json", "model.safetensors"} <= {p.name for p in tmp_path.iterdir()}
    frames, size = SMALL[name]
    ours = archs.create_model(name, weights=tmp_path, frames=frames, size=size)
    assert ours.num_classes == 7
    info = ours.pretrained_cfg
    assert info.layout == "huggingface" and info.num_classes == 7
    assert info.preprocess == archs.get_arch(name).pretrained(frames=frames, size=size).preprocess
    assert (info.preprocess.frames, info.preprocess.crop) == (frames, size)
    _assert_same_function(ours, ref, name)


def _authors_videomae(hf_state: dict) -> dict:
    """HF's VideoMAE state dict in the authors' names (``modeling_finetune.py``): fused qkv without bias, q/v biases."""
    out = {}
    for key, value in hf_state.items():
        key = key.replace("videomae.embeddings.patch_embeddings.projection", "patch_embed.proj")
        key = key.replace("videomae.encoder.layer.", "blocks.").replace("classifier.", "head.")
        for theirs, authors in (
            ("layernorm_before", "norm1"),
            ("layernorm_after", "norm2"),
            ("attention.output.dense", "attn.proj"),
            ("intermediate.dense", "mlp.fc1"),
            ("output.dense", "mlp.fc2"),
        ):
            key = key.replace(theirs, authors)
        out[key] = value
    for i in range(12):
        at = f"blocks.{i}.attention.attention."
        out[f"blocks.{i}.attn.qkv.weight"] = torch.cat([out.pop(at + f"{p}.weight") for p in ("query", "key", "value")])
        out[f"blocks.{i}.attn.q_bias"] = out.pop(at + "query.bias")
        out[f"blocks.{i}.attn.v_bias"] = out.pop(at + "value.bias")
    return out


def test_the_authors_videomae_checkpoint_gives_the_reference_logits():
    name = "videomae_vit_s"
    ref = _hf_model(name)
    checkpoint = {"module": _authors_videomae(ref.state_dict())}  # what the fine-tuning script saves
    frames, size = SMALL[name]
    ours = archs.create_model(name, weights=checkpoint, frames=frames, size=size)
    assert ours.pretrained_cfg.layout == "videomae"
    _assert_same_function(ours, ref, name)


def test_older_hugging_face_videomae_layouts_load_alike():
    """transformers 4.x: bias-free projections and q_bias/v_bias; 5.17: a key bias as well (softmax ignores it)."""
    name = "videomae_vit_s"
    ref = _hf_model(name)
    frames, size = SMALL[name]
    v4, v517 = {}, dict(ref.state_dict())
    for key, value in ref.state_dict().items():
        v4[key.replace("query.bias", "q_bias").replace("value.bias", "v_bias")] = value
        if key.endswith("attention.attention.query.bias"):
            v517[key.replace("query.bias", "key.bias")] = torch.randn_like(value)
    for state in (v4, v517):
        ours = archs.create_model(name, weights=state, frames=frames, size=size)
        assert ours.pretrained_cfg.layout == "huggingface"
        _assert_same_function(ours, ref, name)


def test_the_authors_timesformer_checkpoint_gives_the_reference_logits():
    from archs.timesformer import to_huggingface

    name = "timesformer"
    ref = _hf_model(name)
    frames, size = SMALL[name]
    with torch.device("meta"):
        keys = list(archs.create_model(name, frames=frames, size=size, num_classes=7).state_dict())
    hf_state = ref.state_dict()
    # The authors' TimeSformer wraps its VisionTransformer as ``model`` and saves {"model_state": ...} (a .pyth
    # file; reading files is the reader's own test). Their names are timm's, which ours follow: the HF tensors
    # are put under "model." + our key (the HF map is checked by the folder test above).
    authors = {f"model.{k}": hf_state[to_huggingface(k)] for k in keys}
    assert len(authors) == len(hf_state)
    checkpoint = {"model_state": authors, "epoch": 15}
    ours = archs.create_model(name, weights=checkpoint, frames=frames, size=size)
    assert ours.pretrained_cfg.layout == "timesformer"
    _assert_same_function(ours, ref, name)


def test_a_folder_without_safetensors_is_one_line(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(archs.WeightsError, match=r"without model\.safetensors") as e:
        archs.create_model("videomae_vit_s", weights=tmp_path)
    assert "\n" not in str(e.value)


def test_preprocessing_and_protocols_are_the_authors():
    from archs._weights import IMAGENET_MEAN, IMAGENET_STD, Preprocess, get_protocol

    vmae = archs.get_arch("videomae_vit_b").pretrained()
    assert vmae.preprocess == Preprocess(IMAGENET_MEAN, IMAGENET_STD, resize=224, crop=224, frames=16, frame_stride=4)
    assert (get_protocol(vmae.protocol).clips, get_protocol(vmae.protocol).crops) == (5, 3)
    assert [layout.name for layout in vmae.layouts] == ["huggingface", "videomae"]
    tsf = archs.get_arch("timesformer").pretrained()
    assert tsf.preprocess == Preprocess((0.45,) * 3, (0.225,) * 3, resize=224, crop=224, frames=8, frame_stride=32)
    assert (get_protocol(tsf.protocol).clips, get_protocol(tsf.protocol).crops) == (1, 3)
    assert [layout.name for layout in tsf.layouts] == ["huggingface", "timesformer"]


def test_another_familys_checkpoint_is_named_in_one_line():
    state = {"timesformer.embeddings.cls_token": torch.zeros(1, 1, 384)}
    with pytest.raises(archs.WeightsError, match="huggingface, for timesformer") as e:
        archs.create_model("videomae_vit_s", weights=state)
    assert "\n" not in str(e.value)
