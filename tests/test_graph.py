"""The circuit graph: layout of nramdsl.circuit.keys, counts as formulas in R and Q, determinism."""

from __future__ import annotations

from pathlib import Path

import pytest

from nramdsl.circuit import keys as gk
from nramdsl.circuit.graph import build_graph, gate_order
from nramdsl.circuit.wiring import Wiring
from nramdsl.circuit.views import dot, summary, to_json
from nramdsl.lang.frontend import load_file, load_machine, load_text
from nramdsl.lang.check import resolve_machine

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def expected_edges(arities: list[int], R: int, n_memory: int) -> int:
    inputs = sum(R + i for i, a in enumerate(arities) if a > 0)
    return inputs + R * (R + len(arities)) + n_memory


@pytest.mark.parametrize("task", ["paper", "access", "merge", "custom"])
def test_counts_follow_the_formulas(task: str) -> None:
    spec = load_machine(EXAMPLES / f"{task}.nram")
    g = build_graph(spec)
    R, Q = spec.registers, len(spec.circuit)
    arities = [spec.gate_at(i).arity for i in range(Q)]
    n_memory = sum(1 for n in spec.circuit if n in ("read", "write"))
    assert g.number_of_nodes() == 2 * R + Q + 1
    assert g.number_of_edges() == expected_edges(arities, R, n_memory)
    assert (g.graph[gk.REGISTERS], g.graph[gk.MEMORY_SIZE], g.graph[gk.TIMESTEPS]) == (R, spec.memory, spec.timesteps)
    assert g.graph[gk.MACHINE] is spec


@pytest.mark.parametrize("R", [1, 2, 4, 7])
def test_paper_counts_for_any_register_count(R: int) -> None:
    g = build_graph(load_machine(EXAMPLES / "paper.nram", overrides={"R": R}))
    assert g.number_of_nodes() == 2 * R + 15
    # 11 gates with inputs at positions 0, 4..13; each sees R + i candidates.
    assert g.number_of_edges() == sum(R + i for i in [0, *range(4, 14)]) + R * (R + 14) + 2


def test_paper_controller_output_is_308_logits() -> None:
    assert Wiring.from_graph(build_graph(load_machine(EXAMPLES / "paper.nram"))).n_logits == 308


def test_nodes_and_edges_follow_the_layout() -> None:
    g = build_graph(load_machine(EXAMPLES / "paper.nram"))
    add = g.nodes["gate", 5]
    assert (add[gk.KIND], add[gk.INDEX], add[gk.ORDER], add[gk.NAME], add[gk.ARITY], add[gk.BUILTIN]) == (gk.GATE_NODE, 5, 5, "add", 2, None)
    assert add[gk.GATE].name == "add" and add[gk.SPAN] == add[gk.GATE].span
    assert g.nodes["gate", 0][gk.BUILTIN] == "read" and g.nodes["reg", 3][gk.KIND] == gk.REGISTER
    assert g.nodes["next", 0][gk.KIND] == gk.REGISTER_NEXT and g.nodes["memory",][gk.KIND] == gk.MEMORY
    assert g.edges[("reg", 0), ("gate", 5)] == {gk.ROLE: gk.INPUT, gk.SLOT: (0, 1), gk.CANDIDATE: 0}
    assert g.edges[("gate", 4), ("gate", 5)] == {gk.ROLE: gk.INPUT, gk.SLOT: (0, 1), gk.CANDIDATE: 8}
    assert g.edges[("reg", 1), ("gate", 4)][gk.SLOT] == (0,)
    assert g.in_degree(("gate", 1)) == 0  # constants get no input edges
    assert g.edges[("memory",), ("gate", 0)][gk.ROLE] == gk.MEMORY_ACCESS
    assert g.edges[("gate", 13), ("memory",)][gk.ROLE] == gk.MEMORY_ACCESS
    assert g.edges[("gate", 13), ("next", 2)] == {gk.ROLE: gk.UPDATE, gk.CANDIDATE: 17}


def test_candidate_order_and_gate_order() -> None:
    g = build_graph(load_machine(EXAMPLES / "paper.nram"))
    assert gate_order(g) == [("gate", i) for i in range(14)]
    wiring = Wiring.from_graph(g)
    A = wiring.width
    assert A == 18 and wiring.gate_slots[:7] == ((0,), (), (), (), (1,), (2, 3), (4, 5))
    # gate 6's first slot (4) sees the 4 registers and gates 0..5: pool indices 0..9 of padded row 4
    first = sum(4 + i for i, slots in enumerate(wiring.gate_slots[:6]) for _ in slots)
    assert wiring.positions[first : first + 10] == tuple(4 * A + c for c in range(10))
    # register 1's update (row n_slots + 0) sees the whole pool
    updates = len(wiring.positions) - 4 * A
    assert wiring.positions[updates : updates + A] == tuple((wiring.n_slots + 0) * A + c for c in range(A))


def test_halt_never_drops_the_halting_logit() -> None:
    text = "gates g { const zero = 0 }\nmachine m { use g registers 1 memory 4 timesteps 2 circuit read, zero, write halt never }"
    wiring = Wiring.from_graph(build_graph(resolve_machine(load_text(text))))
    assert wiring.n_logits == 1 * 1 + 2 * 3 + 1 * (1 + 3) and not wiring.halting


def test_emissions_are_deterministic() -> None:
    program = load_file(EXAMPLES / "merge.nram")
    first = to_json(build_graph(resolve_machine(program)), program.sources)
    again = load_file(EXAMPLES / "merge.nram")
    assert to_json(build_graph(resolve_machine(again)), again.sources) == first
    g = build_graph(resolve_machine(program))
    assert dot(g) == dot(build_graph(resolve_machine(program))) and summary(g) == summary(build_graph(resolve_machine(program)))


def test_json_serializes_gates_with_source_text() -> None:
    import json

    program = load_file(EXAMPLES / "paper.nram")
    doc = json.loads(to_json(build_graph(resolve_machine(program)), program.sources))
    add = next(n for n in doc["nodes"] if n["id"] == ["gate", 5])
    assert add["gate"]["name"] == "add" and add["gate"]["arity"] == 2 and add["gate"]["source"] == "(a + b) mod M"
    assert add["span"].endswith("paper.nram:7:20")
    assert doc["machine"]["controller_output_size"] == 308 and len(doc["edges"]) == 203


def test_summary_and_dot_contents() -> None:
    g = build_graph(load_machine(EXAMPLES / "paper.nram"))
    text = summary(g)
    assert "308 logits" in text and "memory read (𝓜ᵀp)" in text and "memory write (rank-1 row update)" in text
    assert "lstm (hidden 64)" in text and "256" in text
    d = dot(g)
    assert d.startswith('digraph "copy" {') and "reg_0 -> gate_5 [style=dashed, color=grey" in d and "memory -> gate_0" in d


def test_the_summary_names_the_kernels_the_model_runs() -> None:
    """One description for both: at M = 32 add and sub run by FFT, and the summary says so."""
    from nramdsl.machine.fuzzy import NRAM

    spec = load_machine(EXAMPLES / "listk.nram")
    text = summary(build_graph(spec))
    model = NRAM(spec)
    assert spec.memory >= 32 and all(kernel in text for kernel in model.describe_kernels(spec.memory))
    assert "circular convolution, FFT" in text
