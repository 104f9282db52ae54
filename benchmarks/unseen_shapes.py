"""Issue 35, item 2: draw the MLP shapes on which executed-FLOP predictions are judged, with a
seed, before any Nsight Compute run of them, and commit the list.

A shape is new when no committed run has its GEMMs: its (d, m) pair is in no committed ncu run
(``resources/reference/*/ncu/*.json``) and no raw thesis capture
(``../shared/thesis/metrics/hyper_surface/raw``). Two thirds are drawn off the thesis grid (d
not a multiple of 128, odd in half of them, up to 4096; m not a multiple of 16), one third on it
(d 128..2048 step 128, m 16..256 step 16); n from the thesis's 2, 4, 8, 16, 32.

    python benchmarks/unseen_shapes.py [--seed 35] [--count 36] \\
        [--out benchmarks/results/unseen_shapes_2026-12-03.json]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

THESIS_RAW = Path("../shared/thesis/metrics/hyper_surface/raw")
LABEL = re.compile(r"n(\d+)[ _]d(\d+)[ _]m(\d+)")


def seen() -> set[tuple[int, int]]:
    """(d, m) pairs some committed run or the thesis's raw captures hold."""
    labels = [
        p["label"]
        for f in Path("resources/reference").glob("*/ncu/*.json")
        for p in json.loads(f.read_text())["passes"]
    ]
    labels += [f.name for f in THESIS_RAW.glob("*.csv")]
    return {
        (int(d), int(m))
        for _, d, m in (LABEL.search(s).groups() for s in labels if LABEL.search(s))
    }


def off_grid(rng: random.Random, odd: bool) -> tuple[int, int]:
    while True:
        d = rng.randrange(65, 4097)
        if d % 128 and (d % 2 == 1) == odd:
            break
    while True:
        m = rng.randrange(9, 512)
        if m % 16:
            return d, m


def on_grid(rng: random.Random) -> tuple[int, int]:
    return 128 * rng.randrange(1, 17), 16 * rng.randrange(1, 17)


def draw(seed: int, count: int, taken: set[tuple[int, int]]) -> list[dict]:
    rng, out = random.Random(seed), []
    while len(out) < count:
        i = len(out)
        d, m = on_grid(rng) if i % 3 == 2 else off_grid(rng, odd=i % 3 == 0)
        if (d, m) in taken:
            continue
        taken.add((d, m))
        grid = d % 128 == 0 and d <= 2048 and m % 16 == 0 and m <= 256
        out.append({"n": rng.choice([2, 4, 8, 16, 32]), "d": d, "m": m, "thesis_grid": grid})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=35)
    ap.add_argument("--count", type=int, default=36)
    ap.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/unseen_shapes_2026-12-03.json")
    )
    args = ap.parse_args()
    taken = seen()
    shapes = draw(args.seed, args.count, set(taken))
    doc = {
        "seed": args.seed,
        "command": f"python benchmarks/unseen_shapes.py --seed {args.seed} --count {args.count}",
        "excluded_pairs": len(taken),
        "off_grid": sum(not s["thesis_grid"] for s in shapes),
        "precisions": ["fp32", "bf16"],
        "passes": ["forward", "backward"],
        "shapes": shapes,
    }
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(
        f"{len(shapes)} shapes ({doc['off_grid']} off the thesis grid), "
        f"{len(taken)} (d, m) pairs excluded"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
