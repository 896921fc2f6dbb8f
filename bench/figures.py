"""The figures a benchmark reports, written as JSON for ``bench/run_all.py``.

Each bench keeps its own text output and, given ``--json PATH``, also writes what it measured
as a :class:`Report`: a list of :class:`Figure` (a named value with its unit, the goal the
issue or the README states for it, if any, and its ratio to the same figure of each peer
measured in the same run), plus any sweeps (:class:`Sweep`: how a cost grows with the work,
one line per subject) that ``bench/plots.py`` draws.

A figure without a goal has ``met`` None: it is printed for reference. Nothing here judges
a timing as a pass or a failure of the run; the runner only tabulates.

The JSON form (one object per bench)::

    {"bench": "bench_proxy", "load_average": [start, end],
     "figures": [{"name", "value", "unit", "goal": {"op", "value", "text", "source"} | null,
                  "met": true | false | null, "peers": {"direct": 1.18}, "note": ""}],
     "sweeps": [{"name", "plot", "x": {"label", "unit"}, "y": {...}, "lines": {"mtproxy": [[x, y], ...]},
                 "log_x", "log_y", "goal_y", "note"}]}
"""

from __future__ import annotations

import json
import operator
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Axis", "Figure", "Goal", "Report", "Sweep"]

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Goal:
    """A stated goal: ``value <op> bound``, e.g. ``median ratio <= 1.3``."""

    op: str
    """One of ``<``, ``<=``, ``>``, ``>=``."""
    bound: float
    source: str
    """Where the goal is stated, e.g. ``issue "Proxy service"``."""

    def __post_init__(self) -> None:
        if self.op not in _OPERATORS:
            raise ValueError(f"op must be one of {sorted(_OPERATORS)}, not {self.op!r}")

    def met_by(self, value: float) -> bool:
        return _OPERATORS[self.op](value, self.bound)

    def text(self, unit: str) -> str:
        return f"{self.op} {_number(self.bound)} {unit}".rstrip()


@dataclass(frozen=True, slots=True, kw_only=True)
class Figure:
    """One measured number."""

    name: str
    value: float | None
    """None when the bench could not measure it (then ``note`` says why)."""
    unit: str
    goal: Goal | None = None
    peers: Mapping[str, float] = field(default_factory=dict)
    """This figure divided by the same figure of each peer, measured in the same run."""
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.goal is None or self.value is None:
            return None
        return self.goal.met_by(self.value)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "goal": None
            if self.goal is None
            else {"op": self.goal.op, "value": self.goal.bound, "text": self.goal.text(self.unit),
                  "source": self.goal.source},
            "met": self.met,
            "peers": {peer: round(ratio, 4) for peer, ratio in self.peers.items()},
            "note": self.note,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Axis:
    label: str
    unit: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Sweep:
    """How a cost grows with the work: one line of (x, y) points per subject."""

    name: str
    plot: str
    """The PNG it is drawn in (``bench/plots/<plot>.png``); sweeps sharing one are drawn side by side."""
    x: Axis
    y: Axis
    lines: Mapping[str, Sequence[tuple[float, float]]]
    log_x: bool = False
    log_y: bool = False
    goal_y: float | None = None
    """A goal drawn as a horizontal line, when one is stated for y."""
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "plot": self.plot,
            "x": {"label": self.x.label, "unit": self.x.unit},
            "y": {"label": self.y.label, "unit": self.y.unit},
            "lines": {subject: [[x, y] for x, y in points] for subject, points in self.lines.items()},
            "log_x": self.log_x,
            "log_y": self.log_y,
            "goal_y": self.goal_y,
            "note": self.note,
        }


class Report:
    """What one bench measured, collected while it runs and written once at its end."""

    def __init__(self, bench: str) -> None:
        self.bench = bench
        self.figures: list[Figure] = []
        self.sweeps: list[Sweep] = []
        self._load_at_start = os.getloadavg()[0]

    def add(
        self,
        name: str,
        value: float | None,
        unit: str,
        *,
        goal: Goal | None = None,
        peers: Mapping[str, float] | None = None,
        note: str = "",
    ) -> Figure:
        figure = Figure(
            name=name,
            value=None if value is None else round(value, 4),
            unit=unit,
            goal=goal,
            peers=peers or {},
            note=note,
        )
        self.figures.append(figure)
        return figure

    def add_sweep(self, sweep: Sweep) -> None:
        self.sweeps.append(sweep)

    def to_json(self) -> dict[str, Any]:
        return {
            "bench": self.bench,
            "load_average": [round(self._load_at_start, 2), round(os.getloadavg()[0], 2)],
            "figures": [figure.to_json() for figure in self.figures],
            "sweeps": [sweep.to_json() for sweep in self.sweeps],
        }

    def write(self, path: Path | None) -> None:
        """Write the JSON form to ``path`` (nothing when None, i.e. ``--json`` was not given)."""
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        print(f"figures written to {path}")


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"
