"""The compile artifact: the unrolled machine as a `torch.export` program that plain PyTorch runs.

    ep = torch.export.load("copy.pt2")
    final_memory, halting, output = ep.module()(memory)   # memory: int64 [B, M], any B

The three outputs (`OUTPUTS`), none of them tracking gradients (the artifact is for running a machine,
not for training one):
    final_memory  float [B, M, M]  the fuzzy memory after the last step: row i is cell i's distribution
    halting       float [B, T]     p_t, the probability that the machine halts at step t (rows sum to 1)
    output        int64 [B, M]     the memory read out where the machine halts (the first step at which
                                   the halting probability reaches 0.5): the machine's answer

M and T are fixed in the artifact (the gate tables are baked in for that M); the batch size is dynamic.
The controller weights are whatever the module holds: freshly initialised after `nramdsl compile`
(seeded by `--seed`, so the artifact is the same every time), or trained when exported from a run
(`nramdsl compile --weights RUN/checkpoint.pt`, or `export_program(load_run(dir)[0], …)`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from nramdsl.machine.fuzzy import NRAM, Readout

OUTPUTS = "(final_memory [B, M, M], halting [B, T], output [B, M])"  # described in the docstring above


class _Unrolled(nn.Module):
    def __init__(self, model: NRAM, timesteps: int, readout: Readout) -> None:
        super().__init__()
        self.model = model
        self.timesteps = timesteps
        self.readout = readout

    def forward(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.model(memory, timesteps=self.timesteps)
        return out.memory.detach(), out.halting.detach(), out.readout(self.readout)


def export_program(model: NRAM, memory_size: int | None = None, timesteps: int | None = None,
                   readout: Readout = "halt") -> torch.export.ExportedProgram:
    M = memory_size or model.spec.memory
    T = timesteps or model.spec.timesteps
    model = model.eval()
    example = torch.zeros(2, M, dtype=torch.long)  # B = 2: torch.export specialises sizes 0 and 1
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad():
        # Run once for real first: kernels build their index tensors lazily and cache them, and tensors
        # first built while tracing would be fake ones, cached for every later real call.
        model(example, timesteps=1)
        return torch.export.export(_Unrolled(model, T, readout), (example,), dynamic_shapes={"memory": {0: batch}})


def save_program(model: NRAM, path: Path, memory_size: int | None = None, timesteps: int | None = None) -> None:
    torch.export.save(export_program(model, memory_size, timesteps), str(path))
