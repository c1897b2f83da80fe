"""Shared test setup: one CPU thread, and Hypothesis profiles (registered at import, as Hypothesis expects).

One thread, as the `nramdsl` command defaults to: the machine is many small operations, and torch's default of
a thread per core made the suite 4.2x slower on a loaded 2-core machine, with the same results. Set before
torch is imported (it reads the variable then), and inherited by the commands tests start as processes.

Hypothesis loads its built-in `ci` profile by itself when the CI environment variable is set. Locally
`HYPOTHESIS_PROFILE=thorough pytest …` runs the property tests longer.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
if "HYPOTHESIS_PROFILE" in os.environ:
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])


# ---- run directories without training (nramdsl explain / trace tests) ----------------------------------------

from pathlib import Path  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PAPER14 = "read, zero, one, two, inc, add, sub, dec, lt, le, eq, min, max, write"


def paper_machine(path: Path, controller: str, *, name: str = "m", task: str = "copy", registers: int = 4,
                  timesteps: int = 15, extra: str = "") -> Path:
    """A machine with the paper's 14 gates written to `path` (importing examples/paper.nram)."""
    path.write_text(f'import "{EXAMPLES / "paper.nram"}"\n'
                    f"machine {name} {{\n  use paper\n  task {task}\n  registers {registers}\n  memory 16\n"
                    f"  timesteps {timesteps}\n  circuit {PAPER14}\n  controller {controller}\n{extra}"
                    f"  train {{ complexity = 7 }}\n}}\n")
    return path


def write_run(path: Path, model) -> Path:  # model: nramdsl.NRAM
    """A run directory holding `model` as if `nramdsl train` had written it (config.json, checkpoint.pt)."""
    from nramdsl.training.loop import run_config
    from nramdsl.training.population import Population
    from nramdsl.training.rundir import RunDir
    from nramdsl.training.setup import configure, plan

    spec = model.spec
    job = plan(spec, configure(spec, {}))
    run = RunDir(path)
    run.write_config(run_config(job, spec.ref, [0]))
    population = Population(job, [0])  # a run of one seed, at step 0, holding `model`'s weights
    population.controllers.load_member(0, model.controller.state_dict())
    run.save(population.state_dict())
    return path


def random_mlp(tmp_path: Path, seed: int):  # -> nramdsl.NRAM
    """An untrained feedforward controller: its table is as exact a program as a trained one's, with many more
    circuits; the stop logit is spread out so that cases halt at different steps."""
    import torch

    from nramdsl.lang.frontend import load_machine
    from nramdsl.machine.fuzzy import NRAM

    spec = load_machine(paper_machine(tmp_path / f"m{seed}.nram", "mlp(hidden = 32)"))
    torch.manual_seed(seed)
    model = NRAM(spec).eval()
    with torch.no_grad():
        head = model.controller.head
        head.weight[-1] *= 40
        start, _ = model.controller(torch.ones(1, spec.registers), None)  # every register 0: the first step
        head.bias[-1] -= float(start[0, -1]) + 3  # f = 0.05 there, anything elsewhere
    return model
