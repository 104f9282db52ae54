"""A registered figure: what its plot function draws from, where it goes, how it is styled
(the entries themselves are in :mod:`flopmetrics.figures.registry`)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

DPI = {"type": "integer", "minimum": 50, "default": 120}


@dataclass(frozen=True)
class Figure:
    name: str  # config key figures.<name>, rule fig_<name>, caption workflow/report/<name>.rst
    draw: str  # "<module>.<function>" of flopmetrics.figures
    output: str  # may hold wildcards, each listed in `expand`
    inputs: Callable[[dict], dict[str, str | list]]  # config -> {name: path (or [] for none)}
    category: str
    labels: dict
    # JSON-schema properties of figures.<name> (dpi added)
    style: dict = field(default_factory=dict)
    expand: dict = field(default_factory=dict)  # wildcard -> values
    enabled: Callable[[dict], bool] = lambda config: True
    extra_style: Callable[[dict], dict] = lambda config: {}  # style taken from other config keys

    @property
    def module(self) -> str:
        """The plot function's module (its code is the figure's rule's input)."""
        return f"{__package__}.{self.draw.rsplit('.', 1)[0]}"

    def plot_function(self) -> Callable:
        return getattr(importlib.import_module(self.module), self.draw.rsplit(".", 1)[1])

    def outputs(self) -> list[str]:
        out = [self.output]
        for key, values in self.expand.items():
            out = [o.replace("{" + key + "}", str(v)) for o in out for v in values]
        return out

    def log(self) -> str:
        return (
            self.output.replace("results/figures/", "logs/figures/", 1).rsplit(".", 1)[0] + ".log"
        )

    def style_params(self, config: dict) -> dict:
        return {**config["figures"][self.name], **self.extra_style(config)}


def fixed(**inputs) -> Callable[[dict], dict]:
    """Inputs that do not depend on the config."""
    return lambda config: dict(inputs)
