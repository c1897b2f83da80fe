"""A seed search's units as Ray tasks (`nramdsl reproduce --ray ADDRESS`), for searches that outgrow one machine.

Each unit (one seed, or a population) is one task on one CPU of the cluster. Run directories must be on
storage that every node sees (a shared file system), which is also where the search's results are
gathered: a task writes its checkpoints there as it trains, and when a worker is lost Ray retries the
task, which resumes the unit from its last checkpoint instead of starting over. The tasks' rows come back
to the caller, which writes results/TASK.json as for a local search.

Pointing it at a cluster: start one (`ray start --head` on one machine, `ray start --address HEAD:6379` on
the others, with nramdsl installed in the same environment everywhere and the run folder shared), then
`nramdsl reproduce SPEC --population 64 --seeds 512 --runs /shared/runs --ray auto` on a node of it
(`auto` finds the local cluster; `ray://HEAD:10001` connects a client from outside).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

from nramdsl.errors import NramError
from nramdsl.lang.spec import SpecRef
from nramdsl.training.config import TrainConfig

RETRIES = 3  # how often Ray runs a unit again after losing its worker
ATTEMPT = ".attempt"  # in a unit's run directory: the search that started it, so a retry knows to resume


def run_on_ray(address: str, origin: SpecRef, cfg: TrainConfig, todo: list[tuple[Any, bool]],
               report: Callable[[str], None]) -> Iterator[list[dict[str, Any]]]:
    """Run each (unit, resume) of `todo` as a Ray task; yields each unit's rows as it finishes."""
    try:
        import ray
    except ImportError:
        raise NramError("--ray needs Ray: pip install 'nramdsl[ray]'") from None
    if not todo:
        return
    try:
        ray.init(address=address, log_to_driver=False, ignore_reinit_error=True)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise NramError(f"--ray {address}: cannot connect to a Ray cluster ({exc})") from None
    task = ray.remote(num_cpus=1, max_retries=RETRIES, retry_exceptions=False)(_unit_task)
    search = uuid.uuid4().hex
    pending = {}
    for unit, resume in todo:
        ref = task.remote(origin.to_json(), cfg.settings(), list(unit.seeds), str(unit.run.path), resume, search)
        pending[ref] = unit
    report(f"submitted {len(pending)} unit(s) to the Ray cluster at {address}")
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            unit = pending.pop(ready[0])
            rows = ray.get(ready[0])
            report(f"seeds {unit.seeds[0]}-{unit.seeds[-1]}: trained and scored on the cluster")
            yield rows
    finally:
        ray.shutdown()


def _unit_task(origin: dict[str, Any], settings: dict[str, Any], seeds: list[int], run_path: str, resume: bool,
               search: str) -> list[dict[str, Any]]:
    """One unit on a Ray worker. A retry of the same search resumes from the unit's last checkpoint."""
    import torch

    from nramdsl.lang.frontend import load_ref
    from nramdsl.training.rundir import RunDir
    from nramdsl.training.unit import Unit, train_unit

    torch.set_num_threads(1)
    run = RunDir(run_path)
    marker = Path(run_path) / ATTEMPT
    retry = marker.exists() and marker.read_text() == search
    run.path.mkdir(parents=True, exist_ok=True)
    marker.write_text(search)
    ref = SpecRef.from_json(origin)
    cfg = TrainConfig.from_settings(settings, where="the search's settings")
    rows = train_unit(load_ref(ref), cfg, Unit(tuple(seeds), run), ref, resume=resume or (retry and run.has_checkpoint()))
    marker.unlink(missing_ok=True)
    return rows
