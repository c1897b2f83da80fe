"""Text renderings of a circuit graph: a human summary, Graphviz DOT and JSON.

All three are deterministic (graph insertion order, sorted JSON keys), so they can be diffed and golden-
tested. The summary's kernel column is the kernel the model runs at the machine's M
(`nramdsl.kernels.select`, default options).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping

import networkx as nx

from nramdsl.circuit import keys as gk
from nramdsl.circuit.graph import gate_order
from nramdsl.circuit.wiring import Wiring
from nramdsl.errors import Span
from nramdsl.kernels.select import select_kernel
from nramdsl.lang.spec import Gate, MachineSpec


def summary(g: nx.DiGraph) -> str:
    spec: MachineSpec = g.graph[gk.MACHINE]
    M = spec.memory
    lines = [
        f"machine {spec.name}" + (f" ({spec.source})" if spec.source else ""),
        f"  registers          {spec.registers}",
        f"  memory             {M}",
        f"  timesteps          {spec.timesteps}",
        f"  halting            {spec.halt}",
        f"  write returns      {spec.write_returns}",
        f"  controller         {_controller(spec)}",
        f"  controller output  {Wiring.from_graph(g).n_logits} logits",
        f"  task               {spec.task or '-'}",
    ]
    if spec.train:
        lines.append("  train              " + ", ".join(f"{k} = {_train_value(v)}" for k, v in spec.train.items()))
    rows = [("#", "gate", "arity", "table", "kernel")]
    for node in gate_order(g):
        gate: Gate = g.nodes[node][gk.GATE]
        size = "-" if gate.builtin else str(M**gate.arity)
        rows.append((str(g.nodes[node][gk.INDEX]), gate.name, str(gate.arity), size, select_kernel(gate, M).describe()))
    widths = [max(len(r[k]) for r in rows) for k in range(4)]
    lines.append(f"  gates ({len(rows) - 1})")
    for r in rows:
        lines.append("    " + "  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4])
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _controller(spec: MachineSpec) -> str:
    c = spec.controller
    if c.table is None:
        return f"{c.kind} (hidden {c.hidden})"
    return (f"table ({len(c.table.rules)} rows), compiled to an MLP with {c.hidden} hidden units, "
            f"logit scale {c.table.scale}")


def _train_value(v: Any) -> str:
    return json.dumps(v) if isinstance(v, str) else str(v)


def _dot_id(node: tuple) -> str:
    return "_".join(str(part) for part in node)


def dot(g: nx.DiGraph) -> str:
    spec: MachineSpec = g.graph[gk.MACHINE]
    out = [f"digraph {json.dumps(spec.name)} {{", "  rankdir=LR;", "  node [fontname=Helvetica];"]
    for node, d in g.nodes(data=True):
        kind = d[gk.KIND]
        if kind == gk.REGISTER:
            attrs = f'label="r{d[gk.INDEX] + 1}", shape=box'
        elif kind == gk.REGISTER_NEXT:
            attrs = f'label="r{d[gk.INDEX] + 1}\'", shape=box, style=rounded'
        elif kind == gk.MEMORY:
            attrs = 'label="memory", shape=cylinder'
        else:
            attrs = f'label="{d[gk.INDEX]}: {d[gk.NAME]}/{d[gk.ARITY]}", shape=ellipse'
        out.append(f"  {_dot_id(node)} [{attrs}];")
    for src, dst, d in g.edges(data=True):
        if d[gk.ROLE] == gk.MEMORY_ACCESS:
            style = "color=black, penwidth=2"
        else:
            style = f'style=dashed, color=grey, label="{d[gk.CANDIDATE]}"'
        out.append(f"  {_dot_id(src)} -> {_dot_id(dst)} [{style}];")
    out.append("}")
    return "\n".join(out) + "\n"


def _source_text(span: Span | None, sources: Mapping[str, str]) -> str | None:
    """The text a span covers, from the loaded sources (or the file on disk)."""
    if span is None:
        return None
    text = sources.get(span.file)
    if text is None:
        try:
            text = Path(span.file).read_bytes().decode("utf-8").removeprefix("\ufeff")  # as the parser read it
        except (OSError, UnicodeDecodeError):
            return None
    lines = text.split("\n")  # the parser's lines: "\n" only
    if not 1 <= span.line <= span.end_line <= len(lines):
        return None
    first, last = lines[span.line - 1], lines[span.end_line - 1]
    if span.line == span.end_line:
        return first[span.column - 1 : span.end_column - 1]
    return "\n".join([first[span.column - 1 :], *lines[span.line : span.end_line - 1], last[: span.end_column - 1]])


def _gate_json(gate: Gate, sources: Mapping[str, str]) -> dict[str, Any]:
    return {
        "name": gate.name,
        "arity": gate.arity,
        "params": list(gate.params),
        "builtin": gate.builtin,
        "via": gate.via,
        "span": str(gate.span) if gate.span else None,
        "source": _source_text(gate.span, sources),
    }


def _value_json(key: str, value: Any, sources: Mapping[str, str]) -> Any:
    if key == gk.GATE:
        return _gate_json(value, sources)
    if isinstance(value, Span):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def to_json(g: nx.DiGraph, sources: Mapping[str, str] | None = None) -> str:
    spec: MachineSpec = g.graph[gk.MACHINE]
    src = sources or {}
    doc = {
        "machine": {
            "name": spec.name,
            "source": spec.source,
            "registers": spec.registers,
            "memory": spec.memory,
            "timesteps": spec.timesteps,
            "circuit": list(spec.circuit),
            "controller": {"kind": spec.controller.kind, "hidden": spec.controller.hidden},
            "halt": spec.halt,
            "write_returns": spec.write_returns,
            "task": spec.task,
            "train": dict(spec.train),
            "controller_output_size": Wiring.from_graph(g).n_logits,
        },
        "nodes": [{"id": list(n), **{k: _value_json(k, v, src) for k, v in d.items()}} for n, d in g.nodes(data=True)],
        "edges": [
            {"source": list(a), "target": list(b), **{k: _value_json(k, v, src) for k, v in d.items()}}
            for a, b, d in g.edges(data=True)
        ],
    }
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


EMITTERS: dict[str, Callable[[nx.DiGraph, Mapping[str, str]], str]] = {
    "summary": lambda g, sources: summary(g),
    "dot": lambda g, sources: dot(g),
    "json": to_json,
}
