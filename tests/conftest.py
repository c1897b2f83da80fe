"""Shared test setup: Hypothesis profiles (registered at import, as Hypothesis expects).

Hypothesis loads its built-in `ci` profile by itself when the CI environment variable is set. Locally
`HYPOTHESIS_PROFILE=thorough pytest …` runs the property tests longer.
"""

import os

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
    from nramdsl.training.rundir import RunDir
    from nramdsl.training.setup import configure, plan

    spec = model.spec
    run = RunDir(path)
    run.write_config(run_config(plan(spec, configure(spec, {})), spec.ref))
    run.save({"model": model.state_dict()})
    return path
