"""What a training forward holds (autograd's saved tensors, counted on the meta device), and the memory estimate
built on it, against hand-worked counts of a toy attention of known size.

The toy: x (B, H, N, d); q, k, v = three Linear(d, d) of x; ``scaled_dot_product_attention(q, k, v)``, with or
without a learned additive bias (H, N, N). Worked by hand, in elements:

- the Linear layers save their input, x: B*H*N*d (once, the same storage for the three); their outputs q, k, v
  are saved by the attention: 3 * B*H*N*d. That much the leaf modules' outputs already show.
- the CPU's fused kernel (flash attention for the CPU, chosen without a mask that needs a gradient) keeps its
  output, B*H*N*d, and one log-sum-exp per query row, B*H*N: O(N).
- with a learned bias the CPU takes the math path, which keeps the softmax's probabilities, B*H*N*N (q and k it
  keeps are the Linear's outputs; the bias is a parameter, not an activation; the output is not read back).
"""

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.measure.counting import MacAnalysis
from bench.measure.held import largest_output, saved_for_backward
from bench.measure.latency import estimate_bytes
from bench.results.records import Config

B, H, N, D = 2, 2, 10, 8
LINEARS = B * H * N * D + 3 * B * H * N * D  # x, and q, k, v
ATTENTION = {"fused": B * H * N * D + B * H * N, "math": B * H * N * N}


class ToyAttention(nn.Module):
    def __init__(self, learned_bias: bool) -> None:
        super().__init__()
        self.q, self.k, self.v = nn.Linear(D, D), nn.Linear(D, D), nn.Linear(D, D)
        self.bias = nn.Parameter(torch.zeros(H, N, N)) if learned_bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(self.q(x), self.k(x), self.v(x), attn_mask=self.bias)


def _toy(kernel: str, device: str) -> nn.Module:
    with torch.device(device):
        return ToyAttention(learned_bias=kernel == "math")


@pytest.mark.parametrize("kernel", ["fused", "math"])
def test_saved_tensors_are_the_hand_worked_ones_and_the_cpus(kernel):
    expected = LINEARS + ATTENTION[kernel]
    assert saved_for_backward(_toy(kernel, "meta"), (B, H, N, D)) == expected
    # The meta device runs the kernel the CPU chooses: a real forward on the CPU saves the same.
    assert saved_for_backward(_toy(kernel, "cpu"), (B, H, N, D)) == expected


def test_the_largest_tensor_of_an_inference_is_attention_own_when_it_makes_one():
    # Inference needs no gradient: the fused kernel runs, with or without the bias, and writes nothing N x N
    # beyond its inputs; the biggest tensors are the (B, H, N, d) ones. A bias of N x N per head is a parameter.
    assert largest_output(_toy("fused", "meta"), (B, H, N, D)) == B * H * N * D
    n = 64  # N x N > N x d: the math path (a float mask that is not a parameter) writes B*H*N*N scores
    assert largest_output(_MathInference(), (1, 1, n, D)) == n * n


class _MathInference(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(x, x, x, dropout_p=0.5)  # dropout: the CPU's fused kernel declines


@pytest.mark.parametrize("kernel", ["fused", "math"])
@pytest.mark.parametrize("batch", [1, 8])
def test_the_training_estimate_holds_attention_work_in_bytes(kernel, batch):
    model = _toy(kernel, "meta")
    counts = dataclasses.replace(
        MacAnalysis(model, (1, H, N, D)).counts(), saved_activations=saved_for_backward(model, (1, H, N, D))
    )
    per_clip = LINEARS // B + ATTENTION[kernel] // B
    assert counts.saved_activations == per_clip
    config = Config(arch="toy", batch=batch, frames=1, height=N, width=D, device="cuda", mode="train")
    without = dataclasses.replace(counts, saved_activations=LINEARS // B)  # what the leaf modules show
    # The attention term: fp32 bytes of what attention itself keeps, per clip, times the batch.
    assert estimate_bytes(counts, config) - estimate_bytes(without, config) == 4 * batch * ATTENTION[kernel] // B


def test_a_measured_plan_counts_what_training_keeps_and_a_static_one_does_not():
    from bench.measure.counting import build_meta
    from bench.results.records import Request
    from bench.run.plan import make_plan

    shape = (1, 3, 2, 16, 16)  # videomae_vit_s at its smallest clip: one tubelet of 2x16x16, one token
    request = {"archs": ["videomae_vit_s"], "device": "cpu", "frames": [2], "sizes": [16], "mode": "train"}
    measured = make_plan(Request(**request)).jobs[0].counts[(2, 16, 16)]
    assert measured.saved_activations == saved_for_backward(build_meta("videomae_vit_s"), shape) > 0
    assert measured.largest_output == largest_output(build_meta("videomae_vit_s"), shape) > 0
    static = make_plan(Request(**request, static=True)).jobs[0].counts[(2, 16, 16)]
    assert static.saved_activations == static.largest_output == 0  # a static run estimates nothing
