"""What a GEMM kernel executes, read from the launch the library chose: its name and its grid.

A GEMM kernel computes whole output tiles, every CTA of its grid one tile, over its slice of the
inner dimension in steps of the tile's depth; so its executed FLOPs follow from the launch, not
from a fit over other shapes:

* **tile** ``t1 x t2 x tk``: stated in the name (``nvjet_sm90_tst_64x8_64x16``,
  ``tilesize128x32x8``, ``sgemm_128x64_8x5``, ``s1688gemm_bf16_128x128``; a name that states no
  depth takes :data:`DEFAULT_TILE_K`);
* **orientation**: which of the output's sides the tile's first side runs along, the one whose
  tile count the grid has (``grid.x * grid.y``, rounded up to whole thread-block clusters where
  the name states a cluster, as ``_2x4_`` in nvjet names: the cluster's idle CTAs execute
  zero-filled tiles too), or in CUTLASS's swizzled layout ``(tiles_a w, ceil(tiles_b / w))``
  (its CTAs past the last tile return at once). A grid that matches none is a persistent
  kernel (one CTA per SM, looping over tiles): it computes the tiles once each, in the
  orientation with fewer;
* **split-K** ``S = grid.z``: each CTA a slice of ``K``. An ``xmma`` kernel runs ``S`` equal
  slices of ``pad(ceil(K / S), tk)``; the others (cutlass, nvjet) cut ``K`` into slices of that
  length, the last ones short or empty, and every slice runs at least one ``tk`` step.

Executed = ``2 t1 t2 x tiles x k_executed``; the SIMT epilogue (``alpha acc + beta C``) and the
split-K reduction kernel come on top (:mod:`flopmetrics.ncu.executed` learns their per-output
cost by kernel family from training captures). A name with no tile raises
:class:`UnknownKernel`: it is flagged, never guessed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

K_ALIGN = 8  # a split-K slice's length is a multiple of the MMA's depth
DEFAULT_TILE_K = 32  # CUTLASS's Turing/Ampere tensor-op tiles that do not state it (128x128x32)
TILE_PATTERNS = (
    re.compile(r"nvjet_\w*?_(\d+)x(\d+)_(\d+)x\d+"),
    re.compile(r"tilesize(\d+)x(\d+)x(\d+)"),
    re.compile(r"gemm_(?:[a-z0-9]+_)?(\d+)x(\d+)_(\d+)x\d+"),
    re.compile(r"gemm_(?:[a-z0-9]+_)?(\d+)x(\d+)_"),
)
SWIZZLES = (1, 2, 4, 8)  # CUTLASS's threadblock swizzle: grid (tiles_a * w, tiles_b / w)
CLUSTER = re.compile(r"nvjet_\w*?_\d+x\d+_\d+x\d+_(\d+)x(\d+)_")
FAMILIES = (  # (family, pattern): the kernel families whose rules differ
    ("xmma", re.compile(r"xmma")),
    ("nvjet", re.compile(r"nvjet")),
    ("cutlass_simt", re.compile(r"cutlass\w*simt|sgemm")),
    ("cutlass_tensorop", re.compile(r"cutlass\w*tensorop")),
)


class UnknownKernel(ValueError):
    """A GEMM launch whose name states no tile: its executed FLOPs are not guessed."""


@dataclass(frozen=True)
class Decoded:
    family: str
    tile: tuple[int, int, int]
    swapped: bool  # the tile's first side runs along N (the output's second side)
    ctas: int  # tiles per slice (grid.x * grid.y; the tile count for a persistent kernel)
    splits: int
    k_executed: int  # inner-dimension steps executed, all slices together
    outputs_padded: int  # the output as its tiles cover it
    flops: float  # the tensor-core or FMA work of the tiles alone
    ambiguous: bool = False  # persistent, and the orientations' tile counts differ


def family(name: str) -> str:
    for fam, pattern in FAMILIES:
        if pattern.search(name):
            return fam
    return "other"


def tile(name: str) -> tuple[int, int, int] | None:
    for pattern in TILE_PATTERNS:
        found = pattern.search(name)
        if found:
            sizes = [int(g) for g in found.groups()]
            return sizes[0], sizes[1], sizes[2] if len(sizes) > 2 else DEFAULT_TILE_K
    return None


def cluster(name: str) -> tuple[int, int]:
    found = CLUSTER.search(name)
    return (int(found.group(1)), int(found.group(2))) if found else (1, 1)


def round_up(x: int, step: int) -> int:
    return -(-x // step) * step


def grid_tuple(grid) -> tuple[int, int, int]:
    """A launch grid as ncu's ``"(4, 4, 1)"`` or the profiler's ``[4, 4, 1]`` writes it."""
    if isinstance(grid, str):
        grid = re.findall(r"\d+", grid)
    x, y, z = (int(v) for v in grid)
    return x, y, z


def k_executed(fam: str, k: int, splits: int, tk: int) -> int:
    """Inner-dimension steps of all slices together. ``xmma`` runs ``S`` equal slices of
    ``pad(ceil(K / S), tk)``; the others cut ``K`` into slices of ``pad(ceil(K / S), 8)`` (the
    last short or empty), each run in whole ``tk`` steps, at least one."""
    if fam == "xmma":
        return splits * round_up(math.ceil(k / splits), tk)
    slice_len = round_up(math.ceil(k / splits), K_ALIGN)
    steps = (
        max(tk, round_up(min(slice_len, max(0, k - s * slice_len)), tk)) for s in range(splits)
    )
    return sum(steps)


def _swizzles(tiles_b: int) -> tuple[int, ...]:
    """The swizzle widths CUTLASS may pick for ``tiles_b`` tiles: at most 8 for 6 or more, 4
    for 3 or more, 2 for 2 (``GemmIdentityThreadblockSwizzle::get_log_tile``)."""
    most = 8 if tiles_b >= 6 else 4 if tiles_b >= 3 else 2 if tiles_b >= 2 else 1
    return tuple(w for w in SWIZZLES if w <= most)


def _swizzled(grid: tuple[int, int, int], tiles_x: int, tiles_y: int) -> bool:
    return any(grid[:2] == (tiles_x * w, math.ceil(tiles_y / w)) for w in _swizzles(tiles_y))


def _ctas(name: str, grid: tuple[int, int, int], m: int, n: int) -> tuple[bool, int, bool]:
    """(swapped, tiles computed, ambiguous) of a launch on an ``m x n`` output.

    CUTLASS launches its swizzled grid ``(tiles along m x w, ceil(tiles along n / w))`` with the
    name's first tile side along ``n`` (cuBLAS's column-major view of PyTorch's row-major
    output), else the other way round; the other kernels a grid of exactly the tiles (or whole
    clusters of them), where both orientations fitting with different counts take cuBLAS's;
    a grid that fits nothing is a persistent kernel's, which computes each tile once."""
    t1, t2, _ = tile(name)
    along = {  # swapped -> (tiles along m, tiles along n)
        True: (math.ceil(m / t2), math.ceil(n / t1)),
        False: (math.ceil(m / t1), math.ceil(n / t2)),
    }
    if family(name).startswith("cutlass"):
        for swapped in (True, False):
            ta, tb = along[swapped]
            if _swizzled(grid, ta, tb) or _swizzled(grid, tb, ta):
                return swapped, ta * tb, False
    else:
        cx, cy = cluster(name)
        launched = grid[0] * grid[1]
        fits = [
            s
            for s, (ta, tb) in along.items()
            if launched
            in {ta * tb, round_up(ta, cx) * round_up(tb, cy), round_up(ta, cy) * round_up(tb, cx)}
        ]
        if fits:
            return fits[0], launched, False
    tiles = {s: ta * tb for s, (ta, tb) in along.items()}
    swapped = tiles[True] <= tiles[False]
    return swapped, tiles[swapped], tiles[True] != tiles[False]


def decode(name: str, grid, m: int, n: int, k: int) -> Decoded:
    """The executed work of one GEMM launch on an ``m x n`` output with inner dimension ``k``
    (the library's own orientation need not be known: both are tried against the grid)."""
    sizes = tile(name)
    if sizes is None:
        raise UnknownKernel(f"GEMM kernel {name[:120]!r} states no tile in its name")
    grid = grid_tuple(grid)
    fam = family(name)
    t1, t2, tk = sizes
    swapped, ctas, ambiguous = _ctas(name, grid, m, n)
    splits = grid[2]
    k_exec = k_executed(fam, k, splits, tk)
    a, b = (n, m) if swapped else (m, n)
    return Decoded(
        family=fam,
        tile=sizes,
        swapped=swapped,
        ctas=ctas,
        splits=splits,
        k_executed=k_exec,
        outputs_padded=round_up(a, t1) * round_up(b, t2),
        flops=2.0 * t1 * t2 * ctas * k_exec,
        ambiguous=ambiguous,
    )
