"""The compile artifact runs in plain PyTorch and agrees with the module it came from."""

from __future__ import annotations

from pathlib import Path

import torch

from nramdsl.machine.export import save_program
from nramdsl.lang.frontend import load_machine
from nramdsl.machine.fuzzy import NRAM

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_exported_program_matches_the_module_for_any_batch(tmp_path: Path) -> None:
    spec = load_machine(EXAMPLES / "paper.nram", None, {"T": 3})
    torch.manual_seed(0)
    model = NRAM(spec)
    path = tmp_path / "copy.pt2"
    save_program(model, path)
    program = torch.export.load(str(path)).module()
    for batch in (1, 7):
        memory = torch.randint(0, spec.memory, (batch, spec.memory))
        final, halting, output = program(memory)
        expected = model(memory)
        torch.testing.assert_close(final, expected.memory)
        torch.testing.assert_close(halting, expected.halting)
        assert torch.equal(output, expected.readout("halt"))
