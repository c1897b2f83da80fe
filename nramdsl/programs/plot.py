"""A trace as one figure (`nramdsl trace --plot FILE.png`): three panels sharing the step axis.

- memory: one row per step (the input on top), each cell coloured by its value (the argmax), written in
  when the tape is small; `?` marks a fuzzy value below 0.99; output cells are ticked in red;
- controller attention: one column per attention some step's circuit uses (gate arguments, register
  updates), coloured by the probability of its chosen source, which is written in;
- halting: p_t as bars, Σ p as a line, the 1/2 the read-out waits for, and the read-out step.

The circuits (labels on the right) are written out under the panels. matplotlib is the optional extra
`nramdsl[plot]`; it is imported only here, only when a plot is asked for, and without pyplot (no global
state, no display needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nramdsl.circuit.names import distribution_labels, source_labels
from nramdsl.errors import NramError
from nramdsl.machine.extract import letters
from nramdsl.machine.program import live_gates
from nramdsl.programs.text import circuit_statements
from nramdsl.programs.trace import SURE, TracedCase, certainty, labels

ANNOTATE_CELLS = 40  # write values in when the tape has at most this many cells and steps


def require_matplotlib() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise NramError("--plot needs matplotlib, an optional extra: pip install 'nramdsl[plot]'") from None
    return Figure


def _live_rows(case: TracedCase) -> list[int]:
    """Attention rows (slots, then register updates) that some shown step's circuit uses."""
    w = case.model.wiring
    used: set[int] = set()
    for s in case.shown:
        live = live_gates(s.circuit, w)
        used |= {slot for i, slots in enumerate(w.gate_slots) if live[i] for slot in slots}
        used |= {w.n_slots + j for j, src in enumerate(s.circuit.updates) if src != j}
    return sorted(used) or [w.n_slots]


def plot_trace(case: TracedCase, path: Path) -> None:
    Figure = require_matplotlib()
    steps, tr, M = case.shown, case.trace, len(case.trace.initial)
    n = len(steps)
    rows = _live_rows(case)
    catalog, used = labels(steps)
    legend = [f"{letters(k)}: " + "; ".join(circuit_statements(c, case.model.wiring) or ["every register kept"])
              for k, c in enumerate(catalog.circuits)]
    width = min(40.0, 2.0 + 0.42 * (min(M, 64) + len(rows)) + 3.0)
    height = min(40.0, 2.2 + 0.32 * (n + 1) + 0.22 * len(legend))
    fig = Figure(figsize=(width, height), layout="constrained")
    grid = fig.add_gridspec(2, 3, width_ratios=[max(M, 8), max(len(rows), 4), 7], height_ratios=[n + 1, 0.6 * len(legend) + 1])
    ax_mem = fig.add_subplot(grid[0, 0])
    ax_att = fig.add_subplot(grid[0, 1], sharey=ax_mem)
    ax_halt = fig.add_subplot(grid[0, 2], sharey=ax_mem)
    _memory_panel(ax_mem, case)
    _attention_panel(fig, ax_att, case, rows)
    _halting_panel(ax_halt, case, [letters(k) for k in used])
    ax_text = fig.add_subplot(grid[1, :])
    ax_text.axis("off")
    ax_text.text(0, 1, "circuits   " + "\n           ".join(legend), va="top", ha="left", family="monospace",
                 fontsize=9, transform=ax_text.transAxes)
    kind = "discretized model (integer machine)" if tr.discretized else "fuzzy model"
    fig.suptitle(f"{case.task.name}, case {case.example} at complexity {case.budget.complexity} "
                 f"(M = {M}, T = {case.budget.timesteps}): {kind}, {case.run}")
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise NramError(f"cannot write '{path}': {exc.strerror or exc}") from None


def _memory_panel(ax: Any, case: TracedCase) -> None:
    from matplotlib.patches import Rectangle  # present: plot_trace checked

    tr, steps = case.trace, case.shown
    M = len(tr.initial)
    values = np.stack([tr.initial] + [s.memory for s in steps])
    probs = np.stack([np.ones(M)] + [s.memory_p for s in steps])
    ax.imshow(values, cmap="viridis", vmin=0, vmax=M - 1, aspect="auto", interpolation="nearest")
    if M <= ANNOTATE_CELLS and len(values) <= ANNOTATE_CELLS:
        for (t, i), v in np.ndenumerate(values):
            unsure = probs[t, i] < SURE
            ax.text(i, t, f"{v}?" if unsure else str(v), ha="center", va="center", fontsize=7,
                    color="red" if unsure else ("black" if v > 0.6 * (M - 1) else "white"))
        ax.set_xticks(range(M))
    out = np.flatnonzero(case.mask)
    ax.plot(out, np.full(len(out), -0.75), "v", color="red", markersize=5, clip_on=False)
    ax.add_patch(Rectangle((-0.5, tr.readout + 0.5), M, 1, fill=False, edgecolor="red", linewidth=1.5, clip_on=False))
    if len(values) <= ANNOTATE_CELLS:
        ax.set_yticks(range(len(values)))
    ax.set_xlabel("memory cell (▼ output cells; the red box is the memory read out)")
    ax.set_ylabel("step (0: the input)")
    ax.set_title("memory (value of each cell)")
    ax.set_ylim(len(values) - 0.5, -1.2)


def _attention_panel(fig: Any, ax: Any, case: TracedCase, rows: list[int]) -> None:
    steps = case.shown
    names = distribution_labels(case.model.wiring)
    sources = source_labels(case.model.wiring)
    att = np.stack([s.attention[rows] for s in steps])  # [n, D, A]
    sure = np.vstack([np.full((1, len(rows)), np.nan), att.max(-1)])
    image = ax.imshow(sure, cmap="Greens", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    if len(steps) <= ANNOTATE_CELLS:
        for (t, d), k in np.ndenumerate(att.argmax(-1)):
            ax.text(d, t + 1, sources[k], ha="center", va="center", fontsize=6.5,
                    color="white" if sure[t + 1, d] > 0.6 else "black")
    ax.set_xticks(range(len(rows)), [names[r] for r in rows], rotation=90, fontsize=8)
    ax.tick_params(labelleft=False)
    ax.set_title("controller attention (chosen source)")
    fig.colorbar(image, ax=ax, location="bottom", shrink=0.8, label="probability of the chosen source")


def _halting_panel(ax: Any, case: TracedCase, circuit_labels: list[str]) -> None:
    steps, tr = case.shown, case.trace
    t = np.arange(1, len(steps) + 1)
    ax.barh(t, [s.p for s in steps], height=0.6, color="tab:blue", label="p_t")
    ax.plot([s.cumulative for s in steps], t, "-o", color="tab:orange", markersize=3, label="Σ p")
    ax.plot([s.f for s in steps], t, "x", color="tab:green", markersize=5, label="f_t")
    ax.axvline(0.5, color="grey", linestyle=":", linewidth=1)
    ax.axhline(tr.readout + 1, color="red", linestyle="--", linewidth=1, label="read out")
    ax.set_xlim(0, 1.05)
    ax.set_xlabel("probability (dotted: the 1/2 a run stops at)")
    ax.set_title("halting")
    ax.legend(loc="upper right", fontsize=7)
    ax.tick_params(labelleft=False)
    twin = ax.twinx()
    twin.set_ylim(ax.get_ylim())
    circuits = [f"{c}" + ("" if certainty(s, case.model) >= SURE else f" ({certainty(s, case.model):.2f})")
                for c, s in zip(circuit_labels, steps)]
    twin.set_yticks(t, circuits, fontsize=8)
    twin.set_ylabel("circuit", labelpad=12)
