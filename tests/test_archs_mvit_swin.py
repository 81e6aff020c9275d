"""MViT (v1-B, v2-S, v2-B) and Video Swin (T, S, B): sizes, costs, structure, and equality with torchvision.

Counts are taken on the meta device at the paper's input. Real forwards use
small clips. The checks against torchvision's models run where torchvision is
installed (``pip install -e '.[test-refs]'``) and are skipped otherwise.
"""

from __future__ import annotations

from types import ModuleType

import pytest
import reference_impls as ref_impls
import torch

import archs
from archs.mvit import block_settings
from bench.measure.counting import MacAnalysis, build_meta, count, module_breakdown

MVIT = ("mvit_v1_b", "mvit_v2_s", "mvit_v2_b")
SWIN = ("swin3d_t", "swin3d_s", "swin3d_b")

# Parameters (400 classes): torchvision's ``num_params`` for its five models; MViTv2-B from
# building PySlowFast's MVITv2_B_32x3 here (the model zoo says 51.2 M).
PARAMS = {
    "mvit_v1_b": 36_610_672,
    "mvit_v2_s": 34_537_744,
    "mvit_v2_b": 51_230_128,
    "swin3d_t": 28_158_070,
    "swin3d_s": 49_816_678,
    "swin3d_b": 88_048_984,
}

# MACs at the default input (vbench's convention: convolutions, linear layers, matmuls, attention's
# two matmuls included; norms excluded). Equal to torchvision's model counted the same way (below).
MACS = {
    "mvit_v1_b": 70_599_407_808,  # 16x224; torchvision _ops 70.599 (fvcore, norms excluded)
    "mvit_v2_s": 64_223_815_872,  # 16x224; torchvision _ops 64.224
    "mvit_v2_b": 224_472_840_192,  # 32x224; PySlowFast zoo 225 (0.2 % above: its count, not reproduced exactly)
    "swin3d_t": 87_764_152_320,  # 32x224; Video Swin README 87.9 (norms counted there, ~0.3 %)
    "swin3d_s": 165_682_262_016,  # 32x224; Video Swin README 165.9
    "swin3d_b": 281_332_826_112,  # 32x224; Video Swin README 281.6
}

# Published per-view GMACs, each with its convention; ours must be within the tolerance.
PUBLISHED_GMACS = {
    "mvit_v1_b": (70.599, 0.0005),  # torchvision _ops: fvcore, norms excluded -> equal to 3 decimals
    "mvit_v2_s": (64.224, 0.0005),  # torchvision _ops
    "mvit_v2_b": (225.0, 0.01),  # PySlowFast projects/mvitv2 README, "GFLOPs" = GMACs, 1 %
    "swin3d_t": (87.9, 0.01),  # Video Swin README, per 32-frame view
    "swin3d_s": (165.9, 0.01),
    "swin3d_b": (281.6, 0.01),
}

# torchvision's Swin3D ``_ops`` are the same count on 16 frames: half the published view.
SWIN_TV_OPS_16 = {"swin3d_t": 43.882, "swin3d_s": 82.841, "swin3d_b": 140.667}


def _tv_video() -> ModuleType:
    """``torchvision.models.video``, or a skip when torchvision is not installed.

    The PyPI wheel of torchvision for a torch version is built against CUDA
    torch; over the CPU build its C extension does not load, and ``import
    torchvision`` then fails registering fake kernels for ``torchvision::nms``
    and ``qnms``. The video models need no C op: declaring those two schemas
    lets the import finish (the ops stay unusable, which the models never need).
    """
    if not ref_impls.import_torchvision_if_installed():
        pytest.skip("torchvision is not installed (pip install -e '.[test-refs]')")
    import torchvision.models.video as video

    return video


# ---------------------------------------------------------------- sizes and costs


@pytest.mark.parametrize("name", MVIT + SWIN)
def test_parameters_equal_the_reference(name):
    counts = count(name, (1, *archs.get_arch(name).min_input))
    assert counts.params == counts.trainable_params == PARAMS[name]
    if name == "mvit_v2_b":
        assert abs(counts.params / 51.2e6 - 1) < 0.01  # PySlowFast's zoo: 51.2 M


@pytest.mark.parametrize("name", MVIT + SWIN)
def test_macs_at_the_paper_input(name):
    spec = archs.get_arch(name)
    expected_input = (3, 32, 224, 224) if name in SWIN or name == "mvit_v2_b" else (3, 16, 224, 224)
    assert spec.default_input == expected_input
    macs = count(name, (1, *spec.default_input)).macs
    assert macs == MACS[name]
    published, tolerance = PUBLISHED_GMACS[name]
    assert abs(macs / 1e9 / published - 1) <= tolerance


@pytest.mark.parametrize("name", SWIN)
def test_torchvision_swin_ops_are_the_16_frame_count(name):
    """torchvision's ``_ops`` = our count on 16 frames, half of the 32-frame view the accuracy is for."""
    macs16 = count(name, (1, 3, 16, 224, 224)).macs
    assert round(macs16 / 1e9, 3) == SWIN_TV_OPS_16[name]
    assert abs(MACS[name] / macs16 - 2) < 1e-3


def test_window_attention_macs_by_hand():
    """One Swin block's attention at 16x56x56 (tokens 8x14x14, four 8x7x7 windows): projections and both matmuls."""
    rows = {r.name: r for r in module_breakdown("swin3d_t", (1, 3, 16, 56, 56))}
    tokens, window, dim = 8 * 14 * 14, 8 * 7 * 7, 96
    qkv, proj = tokens * dim * 3 * dim, tokens * dim * dim
    matmuls = 2 * tokens * window * dim  # Q K^T and A V: each head's (N x d)(d x N), summed over heads
    assert rows["layers.0.blocks.0.attn"].macs == qkv + proj + matmuls
    assert rows["layers.0.blocks.0.attn.qkv"].macs == qkv


def test_pooling_attention_macs_by_hand():
    """MViTv1's first attention at 16x224: Q unpooled (1 + 8x56x56 tokens), K/V pooled by (1, 8, 8) to 1 + 8x7x7."""
    rows = {r.name: r for r in module_breakdown("mvit_v1_b", (1, 3, 16, 224, 224))}
    n_q, n_kv, dim = 1 + 8 * 56 * 56, 1 + 8 * 7 * 7, 96
    linear = n_q * dim * 3 * dim + n_q * dim * dim
    pools = 2 * (8 * 7 * 7) * dim * 27  # depthwise 3x3x3 on K and V, every head (1 head of 96)
    matmuls = 2 * n_q * n_kv * dim
    assert rows["blocks.0.attn"].macs == linear + pools + matmuls


@pytest.mark.parametrize(
    ("name", "containers"), [("swin3d_t", ("layers", "layers.2.blocks")), ("mvit_v2_s", ("blocks",))]
)
def test_every_container_is_called_so_breakdowns_add_up(name, containers):
    """The stacks are called as modules (a bare ModuleList is never called, and would show no MACs)."""
    rows = module_breakdown(name, (1, 3, 4, 64, 64), max_depth=3)
    root, by_name = rows[0], {r.name: r for r in rows}
    assert sum(r.macs for r in rows if r.depth == 1) == root.macs
    assert all(by_name[c].macs > 0 for c in containers)


@pytest.mark.parametrize("name", MVIT + SWIN)
def test_counting_at_the_smallest_input_sees_every_operator(name):
    assert MacAnalysis(build_meta(name), (1, *archs.get_arch(name).min_input)).unsupported_ops() == {}


# ---------------------------------------------------------------- structure


def test_mvit_v2_b_blocks_follow_pyslowfast_config():
    """MVITv2_B_32x3.yaml: 24 blocks; DIM_MUL/HEAD_MUL at 2, 5, 21; Q pooled everywhere, (1,2,2) there; KV from (1,8,8)."""
    blocks = block_settings(24, (2, 5, 21), v2=True)
    assert [b.heads for b in blocks] == [1, 1] + [2] * 3 + [4] * 16 + [8] * 3
    assert [b.dim_out for b in blocks] == [96] * 2 + [192] * 3 + [384] * 16 + [768] * 3
    assert [b.dim_in for b in blocks[1:]] == [b.dim_out for b in blocks[:-1]]
    assert all(b.pool_q for b in blocks)
    assert [i for i, b in enumerate(blocks) if b.stride_q == (1, 2, 2)] == [2, 5, 21]
    assert [b.stride_kv for b in blocks] == [(1, 8, 8)] * 2 + [(1, 4, 4)] * 3 + [(1, 2, 2)] * 16 + [(1, 1, 1)] * 3


def test_mvit_v1_widens_before_the_stage_and_pools_q_only_there():
    blocks = block_settings(16, (1, 3, 14), v2=False)
    assert [b.dim_out for b in blocks] == [192, 192] + [384] * 11 + [768] * 3
    assert [i for i, b in enumerate(blocks) if b.pool_q] == [1, 3, 14]
    with pytest.raises(ValueError, match="stage starts"):
        block_settings(16, (0, 3), v2=False)


def test_features_are_maps():
    """Swin: the last stage's tokens (8C, T/2, H/32, W/32). MViT: the class token, a map of one position."""
    with torch.device("meta"):
        swin = archs.create_model("swin3d_t")
        mvit = archs.create_model("mvit_v2_s")
    x = torch.empty(2, 3, 16, 96, 64, device="meta")
    assert tuple(swin.forward_features(x).shape) == (2, 768, 8, 3, 2)
    assert tuple(mvit.forward_features(x).shape) == (2, 768, 1, 1, 1)


def test_attention_modules_declare_their_kind_of_work():
    model = build_meta("swin3d_t")
    kinds = {type(m).__name__: getattr(m, "work_kind", None) for m in model.modules()}
    assert kinds["WindowAttention3d"] == "attention" and kinds["Mlp"] == "mlp"
    assert kinds["PatchEmbed3d"] == "patch_embedding"
    kinds = {type(m).__name__: getattr(m, "work_kind", None) for m in build_meta("mvit_v1_b").modules()}
    assert kinds["PoolingAttention"] == "attention" and kinds["PatchEmbed"] == "patch_embedding"


def test_v1_position_table_resampling_is_pyslowfast_trilinear():
    """Our separable resize equals PySlowFast's ``_get_pos_embed``: trilinear resize of the summed table."""
    torch.manual_seed(0)
    model = archs.create_model("mvit_v1_b")
    t0, h0, w0 = model.table_grid
    summed = model.pos_embed_temporal[:, None, :] + model.pos_embed_spatial[None, :, :]  # (t0, h0*w0, C)
    grid = summed.reshape(1, t0, h0, w0, -1).permute(0, 4, 1, 2, 3)
    for thw in ((3, 5, 7), (8, 56, 56), (16, 20, 9)):
        expected = torch.nn.functional.interpolate(grid, size=thw, mode="trilinear").flatten(2)[0].t()
        table = model._pos_embed(thw)
        assert torch.equal(table[0], model.pos_embed_class)
        torch.testing.assert_close(table[1:], expected, atol=1e-6, rtol=1e-5)
    assert torch.equal(model._pos_embed((t0, h0, w0))[1:], summed.reshape(t0 * h0 * w0, -1))


def test_swin_windows_shrink_to_small_inputs_and_stop_shifting():
    from archs.swin3d import _window_and_shift

    assert _window_and_shift((8, 7, 7), (4, 3, 3), (16, 56, 56)) == ((8, 7, 7), (4, 3, 3))
    assert _window_and_shift((8, 7, 7), (4, 3, 3), (8, 7, 7)) == ((8, 7, 7), (0, 0, 0))  # 16 frames, last stage
    assert _window_and_shift((8, 7, 7), (4, 3, 3), (1, 14, 5)) == ((1, 7, 5), (0, 3, 0))


def test_shift_mask_separates_regions():
    """A 1x4 line with window 2 shifted by 1: the last window holds the end token and the rolled-in first one."""
    from archs.swin3d import _shift_mask

    mask = _shift_mask((1, 1, 4), (1, 1, 2), (0, 0, 1), torch.device("cpu"))
    assert mask.shape == (2, 2, 2)
    assert torch.equal(mask[0], torch.zeros(2, 2))
    assert torch.equal(mask[1], torch.tensor([[0.0, -100.0], [-100.0, 0.0]]))


# ---------------------------------------------------------------- against torchvision


@pytest.mark.parametrize("name", ("mvit_v1_b", "mvit_v2_s", "swin3d_t"))
def test_macs_equal_torchvision_counted_the_same_way(name):
    """torchvision's model (eager attention) on the meta device, through the same counter."""
    video = _tv_video()
    shape = (1, 3, 16, 224, 224)
    with torch.device("meta"):
        reference = getattr(video, name)()
    assert MacAnalysis(reference, shape).total() == count(name, shape).macs
    assert sum(p.numel() for p in reference.parameters()) == PARAMS[name]


# ---------------------------------------------------------------- torchvision's weights give torchvision's logits


def _randomise(model: torch.nn.Module) -> None:
    """Parameters that keep activations at scale and make every table matter (DESIGN.md, "Testing equivalence").

    The references initialise norms to identity, biases and some tables to zero;
    a mismatch in any of them would then go unseen. Matrices keep their
    initialisation (LayerNorm keeps each block's scale).
    """
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if p.ndim == 1 and "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * noise)
            elif any(s in name for s in ("pos", "class_token", "relative_position_bias_table")):
                p.copy_(0.5 * noise)
            elif p.ndim == 1:
                p.copy_(0.02 * noise)


def _load_torchvision(name: str, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """Our model from torchvision's state dict, through ``create_model`` (the layout recognised, loaded strictly)."""
    model = archs.create_model(name, weights=state).eval()
    info = model.pretrained_cfg
    assert info.layout == "torchvision" and info.num_classes == 400
    mvit = name.startswith("mvit")
    assert info.preprocess.mean == ((0.45,) * 3 if mvit else (0.485, 0.456, 0.406))
    assert (info.preprocess.resize, info.preprocess.crop) == (256, 224)
    assert (info.protocol, info.preprocess.frame_stride) == (("mvit", 4) if mvit else ("torchvision_swin3d", 2))
    return model


def _mvit_reference_at(reference: torch.nn.Module, tables: dict[str, torch.Tensor], thw: tuple[int, int, int]) -> None:
    """Let torchvision's MViT (built for 16x224) take another token grid.

    It reads its grid from its positional encoding; v2 then resamples its
    relative tables itself (``_add_rel_pos``), and v1's absolute tables (the
    paper-sized ``tables``) are resampled here, linearly in time and bilinearly
    in space (what our ``_pos_embed`` does, shown equal to PySlowFast's
    trilinear resize above).
    """
    encoding = reference.pos_encoding
    encoding.temporal_size, encoding.spatial_size = thw[0], thw[1:]
    if encoding.spatial_pos is not None:
        f = torch.nn.functional
        temporal_pos, spatial_pos = tables["pos_encoding.temporal_pos"], tables["pos_encoding.spatial_pos"]
        side, c = round(spatial_pos.shape[0] ** 0.5), spatial_pos.shape[1]
        temporal = f.interpolate(temporal_pos.t()[None], size=thw[0], mode="linear")[0].t()
        spatial = f.interpolate(spatial_pos.t().reshape(1, c, side, side), size=thw[1:], mode="bilinear")
        encoding.temporal_pos = torch.nn.Parameter(temporal)
        encoding.spatial_pos = torch.nn.Parameter(spatial.reshape(c, -1).t())


# Clips small enough for two cores: MViT's grid then needs its tables resampled (4x64x64: 2x16x16 tokens; 6x96x64:
# a non-square 3x24x16 grid). Swin: 18x72x72 gives 9x18x18 tokens, padded to whole windows and shifted in time and
# space; 6x64x96 gives 3x16x24 tokens, a window shrunk in time (no temporal shift) and padded in space; S and B
# (the same blocks, deeper or wider) at 2x32x64: one frame of 8x16 tokens, padded and shifted in space.
CLIPS = {
    "mvit_v1_b": ((4, 64, 64), (6, 96, 64)),
    "mvit_v2_s": ((4, 64, 64), (6, 96, 64)),
    "swin3d_t": ((18, 72, 72), (6, 64, 96)),
    "swin3d_s": ((2, 32, 64),),
    "swin3d_b": ((2, 32, 64),),
}


@pytest.mark.parametrize("name", list(CLIPS))
def test_torchvision_weights_give_torchvision_logits(name):
    video = _tv_video()
    torch.manual_seed(0)
    reference = getattr(video, name)().eval()
    _randomise(reference)
    state = reference.state_dict()
    ours = _load_torchvision(name, dict(state))
    for t, h, w in CLIPS[name]:
        if name.startswith("mvit"):
            _mvit_reference_at(reference, state, (t // 2, h // 4, w // 4))
        x = torch.randn(2, 3, t, h, w, generator=torch.Generator().manual_seed(t))
        with torch.inference_mode():
            expected, got = reference(x), ours(x)
        spread = (expected[0] - expected[1]).abs().max()  # how much the reference moves between two clips
        assert spread > 0.1 * expected.abs().max()
        assert (got - expected).abs().max() <= 1e-4 * spread, (t, h, w)


def test_a_torchvision_checkpoint_missing_a_tensor_is_refused_in_one_line():
    video = _tv_video()
    with torch.device("meta"):
        state = video.swin3d_t().state_dict()
    del state["features.2.1.mlp.3.bias"]
    with pytest.raises(archs.WeightsError, match=r"layout torchvision, missing key features\.2\.1\.mlp\.3\.bias"):
        archs.create_model("swin3d_t", weights=state)


@pytest.mark.parametrize("name", MVIT + SWIN)
def test_preprocessing_and_protocols_have_sources(name):
    """MViT: PySlowFast's 0.45/0.225 and 5 clips x 1 crop. Swin: ImageNet's mean and std, 4 clips x 3 crops."""
    from archs._weights import get_protocol

    pretrained = archs.get_arch(name).pretrained()
    protocol = get_protocol(pretrained.protocol)
    if name in MVIT:
        assert pretrained.preprocess.mean == (0.45,) * 3 and pretrained.preprocess.std == (0.225,) * 3
        assert (protocol.clips, protocol.crops) == (5, 1)
        assert [lay.name for lay in pretrained.layouts] == ([] if name == "mvit_v2_b" else ["torchvision"])
    else:
        assert pretrained.preprocess.mean == (0.485, 0.456, 0.406)
        assert (protocol.clips, protocol.crops) == (4, 3)
        assert get_protocol(pretrained.layouts[0].protocol).clips == 12  # torchvision's own evaluation
    assert pretrained.preprocess.frames == archs.get_arch(name).default_input[1]
    assert protocol.source
