"""Which kernel PyTorch's attention runs on this GPU with and without a mask (issue 32).

The step-time model's operation stream (``flopmetrics.flops.opstream``) books attention given a
mask (ALiBi's bias, a sliding window's band) as the memory-efficient kernel over every tile, and
attention without one as the causal flash kernel. This prints, for bf16 forward and backward, the
CUDA kernels ``F.scaled_dot_product_attention`` launches in each case and their time, so the
booking can be checked on the GPU itself:

    python benchmarks/masked_attention_kernel.py [--batch 8 --heads 32 --seq 1024 --head-dim 64]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile


def _inputs(args):
    shape = (args.batch, args.heads, args.seq, args.head_dim)
    return [
        torch.randn(shape, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        for _ in range(3)
    ]


def _masks(args) -> dict:
    band = torch.ones(args.seq, args.seq, device="cuda", dtype=torch.bool).tril()
    band &= ~torch.ones_like(band).tril(-args.window)
    slopes = torch.linspace(-1, -0.01, args.heads, device="cuda").view(1, -1, 1, 1)
    alibi = (slopes * torch.arange(args.seq, device="cuda")).to(torch.bfloat16)
    alibi = alibi.expand(args.batch, -1, args.seq, -1) + torch.zeros_like(
        band, dtype=torch.bfloat16
    ).masked_fill(~band.tril(), -torch.inf)
    return {"causal, no mask": None, "boolean band mask": band[None, None], "ALiBi bias": alibi}


def _kernels(q, k, v, mask) -> list[tuple[str, float]]:
    def step():
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None)
        out.sum().backward()

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.device_type.name == "CUDA"]
    return sorted(((e.key, e.device_time_total / 1e3) for e in events), key=lambda x: -x[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in (
        ("batch", 8),
        ("heads", 32),
        ("seq", 1024),
        ("head-dim", 64),
        ("window", 256),
    ):
        parser.add_argument(f"--{name}", type=int, default=default)
    args = parser.parse_args()
    uuid = torch.cuda.get_device_properties(0).uuid
    print(f"# {torch.cuda.get_device_name(0)} GPU-{uuid}, torch {torch.__version__}, {vars(args)}")
    q, k, v = _inputs(args)
    for label, mask in _masks(args).items():
        print(f"## {label}")
        for name, ms in _kernels(q, k, v, mask)[:6]:
            print(f"  {ms:9.3f} ms  {name[:110]}")


if __name__ == "__main__":
    main()
