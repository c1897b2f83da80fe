"""The same machine on a CUDA device: kernels, forward and backward, training, resume and the discretized run.

These are skipped where torch sees no GPU (CI has none). On a GPU machine `python -m pytest tests/test_cuda.py`
checks the promise that a compiled machine runs "on CPU or GPU unchanged": every comparison is against the CPU
result in float64, so a device-specific bug (a table left on the CPU, a generator on the wrong device, an
atomic-add reduction that drifts) shows up as a mismatch, not as a crash somewhere later.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nramdsl.machine.discrete import run_discrete
from nramdsl.training.evaluate import Budget, evaluate
from nramdsl.kernels.lift import make_kernel
from nramdsl.machine.fuzzy import NRAM, ModelOptions
from nramdsl.machine.integer import ReferenceMachine
from nramdsl.tasks import get_task
from nramdsl.testing import paper_gates
from nramdsl.training.loop import load_run, train
from nramdsl.training.config import TrainConfig
from test_kernels import random_dists
from test_model import example_machines, machine, random_choices

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CUDA = torch.device("cuda")
PAPER = paper_gates()
# float64 on both sides; CUDA's reductions (atomic index_add, cuBLAS) sum in another order than the CPU's.
CLOSE = dict(rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("M", [8, 40])
@pytest.mark.parametrize("fft", ["always", "never"])
@pytest.mark.parametrize("name", [n for n in PAPER if PAPER[n].arity])
def test_kernels_on_cuda_match_the_cpu_and_the_generic_lift(name: str, M: int, fft: str) -> None:
    gate = PAPER[name]
    fast, generic = make_kernel(gate, M, fft=fft), make_kernel(gate, M, generic=True)  # type: ignore[arg-type]
    args = [random_dists(16, M, torch.float64, seed=s) for s in range(gate.arity)]
    on_gpu = fast(*(a.to(CUDA) for a in args))
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), fast(*args), **CLOSE)
    torch.testing.assert_close(on_gpu.cpu(), generic(*args), rtol=0, atol=1e-12)


@pytest.mark.parametrize("file,name", example_machines())
def test_hard_step_on_cuda_matches_the_reference_machine(file: str, name: str) -> None:
    spec = machine(file, name)
    M, B = spec.memory, 5
    model = NRAM(spec).double().to(CUDA)
    ref = ReferenceMachine(spec)
    rng = np.random.default_rng(7)
    memory = rng.integers(0, M, (B, M))
    regs_i, mem_i = ref.initial(memory)
    regs, mem = model.initial_state(torch.from_numpy(memory).to(CUDA), torch.float64)
    A = model.wiring.width
    for _ in range(4):
        inputs, updates = random_choices(model, B, rng)
        res = ref.step(regs_i, mem_i, inputs, updates)
        w_in = F.one_hot(torch.from_numpy(inputs), A).double().to(CUDA)
        w_upd = F.one_hot(torch.from_numpy(updates), A).double().to(CUDA)
        regs, mem, _ = model.circuit_step(regs, mem, w_in, w_upd)
        assert torch.equal(mem.argmax(-1).cpu(), torch.from_numpy(res.memory))
        assert torch.equal(regs.argmax(-1).cpu(), torch.from_numpy(res.registers))
        torch.testing.assert_close(mem.cpu(), F.one_hot(torch.from_numpy(res.memory), M).double(), rtol=0, atol=1e-9)
        regs_i, mem_i = res.registers, res.memory


@pytest.mark.parametrize("file,name", example_machines())
def test_fuzzy_forward_and_gradients_on_cuda_match_the_cpu(file: str, name: str) -> None:
    spec = machine(file, name)
    torch.manual_seed(0)
    cpu = NRAM(spec, ModelOptions(grad_clamp=10.0)).double()
    gpu = NRAM(spec, ModelOptions(grad_clamp=10.0)).double().to(CUDA)
    gpu.load_state_dict(cpu.state_dict())
    g = torch.Generator().manual_seed(1)
    B, M = 4, spec.memory
    memory = torch.randint(0, M, (B, M), generator=g)
    target = torch.randint(0, M, (B, M), generator=g)
    mask = torch.rand(B, M, generator=g) < 0.5
    outs = []
    for model, dev in ((cpu, "cpu"), (gpu, CUDA)):
        out = model(memory.to(dev), target.to(dev), mask.to(dev), value_entropy=True)
        model.zero_grad()
        (out.loss - 0.01 * out.entropy + 0.1 * out.value_entropy).backward()
        outs.append(out)
    a, b = outs
    torch.testing.assert_close(b.loss.cpu(), a.loss, **CLOSE)
    torch.testing.assert_close(b.halting.cpu(), a.halting, **CLOSE)
    assert torch.equal(b.predictions.cpu(), a.predictions)
    for (pname, p), q in zip(cpu.named_parameters(), gpu.parameters()):
        torch.testing.assert_close(q.grad.cpu(), p.grad, rtol=1e-7, atol=1e-9, msg=lambda m: f"{pname}: {m}")


def _config(device: str, **kw) -> TrainConfig:  # type: ignore[no-untyped-def]
    base = {"task": "copy", "steps": 16, "batch": 8, "log_every": 1, "checkpoint_every": 6, "dtype": "float64",
            "seed": 3, "noise.eta": 0.3, "device": device}
    base.update({k.replace("__", "."): v for k, v in kw.items()})
    return TrainConfig.from_settings(base)


def _losses(spec, cfg: TrainConfig, out: Path | None = None, **kw) -> tuple[list[float], object]:  # type: ignore[no-untyped-def]
    rows: list[dict] = []
    result = train(spec, cfg, out, on_log=rows.append, **kw)
    return [r["loss"] for r in rows], result


def test_training_on_cuda_follows_the_cpu_run() -> None:
    spec = dataclasses.replace(machine("copy.nram"), memory=12, timesteps=8)
    # no gradient noise: its generator lives on the training device, so CPU and CUDA draw different noise
    cpu_losses, cpu_run = _losses(spec, _config("cpu", noise__eta=0.0))
    gpu_losses, gpu_run = _losses(spec, _config("cuda", noise__eta=0.0))
    assert len(gpu_losses) == 16
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-6)
    for p, q in zip(cpu_run.model.parameters(), gpu_run.model.parameters()):
        assert q.device.type == "cuda"
        torch.testing.assert_close(q.cpu(), p, rtol=1e-5, atol=1e-7)


class Interrupt(Exception):
    pass


def test_a_cuda_run_resumes_and_is_evaluated_on_the_cpu(tmp_path: Path) -> None:
    spec = dataclasses.replace(machine("copy.nram"), memory=12, timesteps=8)
    cfg = _config("cuda")  # with gradient noise: the CUDA generator's state must survive the checkpoint
    full_losses, full = _losses(spec, cfg, tmp_path / "full")

    def crash(row: dict) -> None:
        if row["step"] == 10:  # after the checkpoint at step 6
            raise Interrupt

    with pytest.raises(Interrupt):
        train(spec, cfg, tmp_path / "resumed", on_log=crash)
    resumed_losses, resumed = _losses(spec, cfg, tmp_path / "resumed", resume=True)
    np.testing.assert_allclose(resumed_losses, full_losses[6:], rtol=1e-9)
    for p, q in zip(full.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-9, atol=1e-12)

    model, _ = load_run(tmp_path / "full")  # a checkpoint written from CUDA loads on the CPU
    assert next(model.parameters()).device.type == "cpu"
    task = get_task("copy")
    budget = Budget(complexity=4, memory=12, timesteps=8)
    on_cpu = evaluate(model, task, budget, examples=16, discretize=True)
    on_gpu = evaluate(model.to(CUDA), task, budget, examples=16, discretize=True)
    assert on_gpu.error == pytest.approx(on_cpu.error) and on_gpu.discrete_error == on_cpu.discrete_error


def test_the_discretized_run_is_the_same_from_a_cuda_controller() -> None:
    spec = machine("copy.nram")
    torch.manual_seed(5)
    cpu = NRAM(spec).double()
    gpu = NRAM(spec).double().to(CUDA)
    gpu.load_state_dict(cpu.state_dict())
    memory = get_task("copy").generate(5, spec.memory, 8, torch.Generator().manual_seed(0)).memory
    a, b = run_discrete(cpu, memory, spec.timesteps), run_discrete(gpu, memory, spec.timesteps)
    np.testing.assert_array_equal(b.memory, a.memory)
    np.testing.assert_array_equal(b.halted_at, a.halted_at)
    # and the tensor model run hard on the GPU computes what the integer machine computes
    hard = gpu(memory.to(CUDA), hard=True)
    np.testing.assert_array_equal(hard.readout("last").cpu().numpy(), run_discrete(gpu, memory, spec.timesteps, "last").memory)
