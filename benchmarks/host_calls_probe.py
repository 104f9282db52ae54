"""Probe (issue 32): what a host-bound eager forward pass's time follows, across families.

The step-time model charges the host a fixed time per kernel-launching ATen operation of the
forward, fitted on Llama-3.2-1B; on other families the host-bound forward passes then come out
60 % too long (Qwen3-0.6B) or 35-49 % too short (Pythia-410M). Here every measured bf16 eager
forward pass of the reference and held-out folders is set beside three counts of its forward on
the meta device: kernel-launching operations (what the model uses), every torch function call
(views and Python-level operations too) and module calls. Rows below 450 W mean power are taken
as host-bound; the spread of each count's time per unit across them says which tracks the host.

    python benchmarks/host_calls_probe.py
"""

import json

import pandas as pd
import torch
from torch.overrides import TorchFunctionMode

from flopmetrics.analysis.steptime_rows import ops_of, read_rows
from flopmetrics.flops.models import build_causal_lm, resolve


class Count(TorchFunctionMode):
    """Counts every torch function call made under it."""

    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.n += 1
        return func(*args, **(kwargs or {}))


def counts(model_spec, batch, seq):
    """(torch function calls, module calls, layers) of one forward on the meta device."""
    _, fields = resolve(model_spec)
    m = build_causal_lm(fields, "sdpa", "meta").to(torch.bfloat16)
    m.eval()
    mods = [0]
    for mm in m.modules():
        mm.register_forward_pre_hook(lambda *a: mods.__setitem__(0, mods[0] + 1))
    ids = torch.zeros(batch, seq, dtype=torch.long, device="meta")
    c = Count()
    with torch.no_grad(), c:
        m(input_ids=ids)
    return c.n, mods[0], fields.get("num_hidden_layers")


def main() -> None:
    dirs = ["resources/reference/h200", "resources/reference/h200_calibration_batch"] + [
        f"resources/reference/h200_heldout{s}" for s in ["", "2", "3", "4"]
    ]
    t = read_rows(dirs)
    t = t[
        (t.precision == "bf16")
        & (t["pass"] == "forward")
        & (t.status == "ok")
        & (t.launch.fillna("eager") == "eager")
    ]
    out = []
    for (model, b, s), g in t.groupby(["model", "batch_size", "seq_len"]):
        r = g.iloc[0].to_dict()
        spec = json.loads(r["config_json"])["workload"]["model"]
        ops = ops_of(r)
        nf = int((ops["phase"] == "f").sum())
        tf, nmod, L = counts(spec, int(b), int(s))
        out.append(
            dict(
                model=model,
                b=b,
                s=s,
                time_ms=1e3 * g.time_per_iter_s.mean(),
                W=g.power_mean_w.mean(),
                kernels=nf,
                torchfn=tf,
                modules=nmod,
                layers=L,
            )
        )
    df = pd.DataFrame(out)
    pd.set_option("display.width", 200)
    df["us_per_kernel"] = 1e3 * df.time_ms / df.kernels
    df["us_per_fn"] = 1e3 * df.time_ms / df.torchfn
    df["us_per_module"] = 1e3 * df.time_ms / df.modules
    print(df.sort_values(["model", "b", "s"]).round(2).to_string(index=False))
    host = df[df.W < 450]
    print(f"\nhost-bound (mean power < 450 W): {len(host)} rows of {host.model.nunique()} models")
    print(
        host[["model", "b", "s", "W", "us_per_kernel", "us_per_fn", "us_per_module"]]
        .round(1)
        .to_string(index=False)
    )
    for c in ("us_per_kernel", "us_per_fn", "us_per_module"):
        v = host[c]
        print(
            f"{c}: {v.min():.1f}-{v.max():.1f} us, max/min {v.max() / v.min():.2f}, "
            f"CV {v.std() / v.mean():.2f}"
        )


if __name__ == "__main__":
    main()
