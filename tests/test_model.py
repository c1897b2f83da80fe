"""The compiled NRAM against the integer reference machine, the generic lift, and itself batched."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nramdsl.machine.discrete import run_discrete
from nramdsl.lang.frontend import load_file, load_machine
from nramdsl.machine.fuzzy import NRAM, ModelOptions
from nramdsl.machine.integer import ReferenceMachine
from nramdsl.lang.check import resolve_machine

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example_machines() -> list[tuple[str, str]]:
    out = []
    for path in sorted(EXAMPLES.glob("*.nram")):
        program = load_file(path)
        out.extend((path.name, m.name.value) for m, src in program.machines() if src is program.top)
    return out


def machine(file: str, name: str | None = None, **overrides: int):
    return load_machine(EXAMPLES / file, name, overrides or None)


def random_choices(model: NRAM, B: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    L, R = model.wiring, model.spec.registers
    inputs = np.stack([rng.integers(0, R + L.slot_gate[s], B) for s in range(L.n_slots)], axis=1).reshape(B, -1)
    updates = rng.integers(0, L.width, (B, R))
    return inputs, updates


@pytest.mark.parametrize("file,name", example_machines())
@pytest.mark.parametrize("write_returns", ["zero", "value", "address", "old"])
def test_hard_step_matches_reference_machine(file: str, name: str, write_returns: str) -> None:
    spec = dataclasses.replace(machine(file, name), write_returns=write_returns)
    M, B = spec.memory, 5
    model = NRAM(spec).double()
    ref = ReferenceMachine(spec)
    rng = np.random.default_rng(hash((file, name, write_returns)) % 2**32)
    memory = rng.integers(0, M, (B, M))
    regs_i, mem_i = ref.initial(memory)
    regs, mem = model.initial_state(torch.from_numpy(memory), torch.float64)
    A = model.wiring.width
    for _ in range(6):
        inputs, updates = random_choices(model, B, rng)
        res = ref.step(regs_i, mem_i, inputs, updates)
        w_in = F.one_hot(torch.from_numpy(inputs), A).double()
        w_upd = F.one_hot(torch.from_numpy(updates), A).double()
        regs, mem, outs = model.circuit_step(regs, mem, w_in, w_upd)
        # exact up to float64 rounding (FFT kernels, chosen from M = 32 on, leave ~1e-16)
        exact = dict(rtol=0.0, atol=1e-9)
        torch.testing.assert_close(outs, F.one_hot(torch.from_numpy(res.outputs), M).double(), **exact)
        torch.testing.assert_close(regs, F.one_hot(torch.from_numpy(res.registers), M).double(), **exact)
        torch.testing.assert_close(mem, F.one_hot(torch.from_numpy(res.memory), M).double(), **exact)
        regs_i, mem_i = res.registers, res.memory


def _batch(M: int, B: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    memory = torch.randint(0, M, (B, M), generator=g)
    target = torch.randint(0, M, (B, M), generator=g)
    mask = torch.rand(B, M, generator=g) < 0.5
    return memory, target, mask


@pytest.mark.parametrize("file", ["paper.nram", "custom.nram"])
def test_fast_kernels_match_generic_lift_in_loss_and_gradient(file: str) -> None:
    spec = machine(file)
    torch.manual_seed(0)
    fast = NRAM(spec, ModelOptions(fft="always")).double()
    generic = NRAM(spec, ModelOptions(generic_kernels=True)).double()
    generic.load_state_dict(fast.state_dict())
    memory, target, mask = _batch(spec.memory)
    a = fast(memory, target, mask, timesteps=4)
    b = generic(memory, target, mask, timesteps=4)
    torch.testing.assert_close(a.loss, b.loss, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(a.memory, b.memory, rtol=1e-9, atol=1e-9)
    a.loss.backward()
    b.loss.backward()
    for p, q in zip(fast.parameters(), generic.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-6, atol=1e-9)


def test_fft_kernels_in_float32_keep_the_loss_of_the_exact_lift() -> None:
    spec = machine("paper.nram", memory=64)
    torch.manual_seed(1)
    fft = NRAM(spec, ModelOptions(fft="always"))
    exact = NRAM(spec, ModelOptions(generic_kernels=True))
    exact.load_state_dict(fft.state_dict())
    memory, target, mask = _batch(64, seed=3)
    la = fft(memory, target, mask, timesteps=5).loss
    lb = exact(memory, target, mask, timesteps=5).loss
    assert abs(la.item() - lb.item()) <= 1e-4 * abs(lb.item())


def test_batched_equals_one_example_at_a_time() -> None:
    spec = machine("paper.nram")
    torch.manual_seed(2)
    model = NRAM(spec).double()
    memory, target, mask = _batch(spec.memory, B=5)
    full = model(memory, target, mask, timesteps=6)
    for b in range(5):
        one = model(memory[b : b + 1], target[b : b + 1], mask[b : b + 1], timesteps=6)
        torch.testing.assert_close(one.memory[0], full.memory[b], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(one.halting[0], full.halting[b], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["mlp", "lstm"])
def test_state_stays_on_the_simplex_and_gradients_are_finite(kind: str) -> None:
    spec = machine("paper.nram")
    spec = dataclasses.replace(spec, controller=dataclasses.replace(spec.controller, kind=kind))
    torch.manual_seed(3)
    model = NRAM(spec, ModelOptions(grad_clamp=10.0))
    for p in model.parameters():  # sharp, random logits: the hardest case for drift
        torch.nn.init.normal_(p, std=2.0)
    memory, target, mask = _batch(spec.memory, B=3)
    out = model(memory, target, mask, timesteps=20, trace=True, value_entropy=True)
    for step in out.trace:
        for key in ("registers", "memory"):
            x = step[key]
            assert bool((x >= 0).all())
            torch.testing.assert_close(x.sum(-1), torch.ones_like(x.sum(-1)), rtol=0, atol=1e-5)
    torch.testing.assert_close(out.halting.sum(1), torch.ones(3), rtol=0, atol=1e-6)
    (out.loss - 0.01 * out.entropy + 0.01 * out.value_entropy).backward()
    assert all(bool(torch.isfinite(p.grad).all()) for p in model.parameters())


def test_memory_size_changes_at_run_time_without_new_parameters() -> None:
    small = NRAM(machine("paper.nram"))
    large = NRAM(machine("paper.nram", memory=64))
    assert [p.shape for p in small.parameters()] == [p.shape for p in large.parameters()]
    out = small(torch.randint(0, 64, (2, 64)), timesteps=3)
    assert out.memory.shape == (2, 64, 64)


def test_paper_loss_is_the_halting_weighted_masked_nll() -> None:
    spec = machine("paper.nram")
    torch.manual_seed(4)
    model = NRAM(spec, ModelOptions(eps=1e-6)).double()
    memory, target, mask = _batch(spec.memory, B=3)
    out = model(memory, target, mask, timesteps=4, trace=True)
    expected = 0.0
    for t, step in enumerate(out.trace):
        prob = step["memory"].gather(2, target.unsqueeze(2)).squeeze(2)
        nll = -(torch.log(prob.clamp_min(1e-6)) * mask).sum(1)
        expected = expected + out.halting[:, t] * nll
    torch.testing.assert_close(out.loss, expected.mean())
    f4 = NRAM(spec, ModelOptions(loss="footnote4")).double()
    f4.load_state_dict(model.state_dict())
    mix = sum(out.halting[:, t, None] * s["memory"].gather(2, target.unsqueeze(2)).squeeze(2) for t, s in enumerate(out.trace))
    torch.testing.assert_close(f4(memory, target, mask, timesteps=4).loss, -(torch.log(mix.clamp_min(1e-6)) * mask).sum(1).mean())


def test_halt_never_puts_all_mass_on_the_last_step() -> None:
    spec = dataclasses.replace(machine("paper.nram"), halt="never")
    out = NRAM(spec)(torch.zeros(2, 16, dtype=torch.long), timesteps=5)
    assert out.halting.tolist() == [[0.0, 0.0, 0.0, 0.0, 1.0]] * 2


@pytest.mark.parametrize("readout", ["halt", "last", "argmax"])
@pytest.mark.parametrize("kind,halt", [("mlp", "learned"), ("lstm", "learned"), ("lstm", "never")])
def test_discretized_executor_equals_the_hard_tensor_model(readout: str, kind: str, halt: str) -> None:
    spec = machine("paper.nram")
    spec = dataclasses.replace(spec, controller=dataclasses.replace(spec.controller, kind=kind), halt=halt)
    for seed in range(3):
        torch.manual_seed(seed)
        model = NRAM(spec, ModelOptions(halt_bias=-1.0)).double()
        for p in model.parameters():
            torch.nn.init.normal_(p, std=1.0)
        memory = torch.randint(0, 16, (6, 16), generator=torch.Generator().manual_seed(seed))
        hard = model(memory, timesteps=8, hard=True)
        run = run_discrete(model, memory, 8, readout)  # type: ignore[arg-type]
        assert np.array_equal(run.memory, hard.readout(readout).numpy())  # type: ignore[arg-type]


def test_model_runs_in_float64_and_moves_with_to() -> None:
    model = NRAM(machine("paper.nram")).to(torch.float64)
    out = model(torch.zeros(1, 16, dtype=torch.long), timesteps=2)
    assert out.memory.dtype == torch.float64


def test_every_example_machine_compiles_and_runs() -> None:
    for file, name in example_machines():
        spec = resolve_machine(load_file(EXAMPLES / file), name)
        out = NRAM(spec)(torch.zeros(2, spec.memory, dtype=torch.long), timesteps=2)
        assert out.predictions.shape == (2, 2, spec.memory)


def test_the_compiled_timestep_equals_the_eager_one_and_the_discretized_run() -> None:
    """`compile_steps`: a population's torch.compile'd timesteps give the eager values and gradients (float64,
    two batch sizes and two members: one compilation serves all), and with hard choices the discretized
    model's outputs, which the integer machine computes."""
    from nramdsl.machine.stacked import StackedController

    spec = load_machine(Path(__file__).parent / "specs" / "tiny.nram", "access")
    torch.manual_seed(0)
    models = [NRAM(spec).double() for _ in range(2)]
    eager_w, compiled_w = (StackedController([m.controller for m in models]) for _ in range(2))
    circuit = models[0]
    for B in (5, 3):
        memory, target, mask = _batch(spec.memory, B=2 * B, seed=B)
        runs = []
        for weights, compiled in ((eager_w, False), (compiled_w, True)):
            circuit.compile_steps = compiled
            out = circuit.run(weights.select(torch.arange(2)), memory, target, mask, dtype=torch.float64)
            out.loss.backward()
            runs.append(out)
        torch.testing.assert_close(runs[1].example_loss, runs[0].example_loss, rtol=1e-10, atol=1e-12)
        for p, q in zip(eager_w.parameters(), compiled_w.parameters()):
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-9, atol=1e-12)
            p.grad, q.grad = None, None
    circuit.compile_steps = True
    memory, _, _ = _batch(spec.memory, B=4, seed=9)
    with torch.no_grad():
        hard = circuit.run(compiled_w.select(torch.arange(1)), memory, dtype=torch.float64, hard=True)
    discrete = run_discrete(models[0], memory, spec.timesteps, "last")
    assert torch.equal(hard.readout("last"), torch.from_numpy(discrete.memory))
