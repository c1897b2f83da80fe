"""The run directory: every file a training run reads or writes, its name, and atomic writes.

    runs/MACHINE-TASK-sSEED/     (the default name, `RunDir.default`)
      config.json     the settings in force, the machine's `SpecRef`, the task and sizes
      metrics.jsonl   one JSON line per logged step
      checkpoint.pt   the latest state, from which `--resume` continues bit for bit
      result.json     a seed search's row for the finished run, keyed by its settings

    runs/MACHINE-TASK-pK-sSEED/  (a population of K, `RunDir.population_default`): the same files for all
      members (metrics lines carry "member" and "seed"), and members/sSEED/, one ordinary run directory
      per member

Every write goes to a temporary file in the same folder and is renamed over the old one, so a crash
mid-write leaves the old file or the new one, never a truncated one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator

import torch

CONFIG = "config.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.pt"
RESULT = "result.json"


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, lambda fh: fh.write((json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()))


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda fh: torch.save(state, fh))


def load_checkpoint(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


class RunDir:
    """One run's folder and its files."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @classmethod
    def default(cls, root: str | os.PathLike[str], machine: str, task: str, seed: int) -> RunDir:
        return cls(Path(root) / f"{machine}-{task}-s{seed}")

    @classmethod
    def population_default(cls, root: str | os.PathLike[str], machine: str, task: str, members: int,
                           seed: int) -> RunDir:
        return cls(Path(root) / f"{machine}-{task}-p{members}-s{seed}")

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    def has_checkpoint(self) -> bool:
        return self.checkpoint.exists()

    # ---- config.json
    def write_config(self, config: dict[str, Any]) -> None:
        write_json(self.path / CONFIG, config)

    def read_config(self) -> dict[str, Any]:
        return json.loads((self.path / CONFIG).read_text())

    # ---- checkpoint.pt
    def save(self, state: dict[str, Any]) -> None:
        save_checkpoint(self.checkpoint, state)

    def load(self) -> dict[str, Any]:
        return load_checkpoint(self.checkpoint)

    # ---- metrics.jsonl
    def start_metrics(self, keep_until: int | None) -> IO[str]:
        """The metrics file opened for appending: emptied for a fresh run; for a resumed one, cut back to the
        lines logged up to step `keep_until` (the checkpoint's), so its log matches an uninterrupted run's."""
        self.path.mkdir(parents=True, exist_ok=True)
        if keep_until is None:
            self.metrics.unlink(missing_ok=True)
        elif self.metrics.exists():
            keep = [line for line in self.read_metrics_lines() if json.loads(line)["step"] <= keep_until]
            self.metrics.write_text("".join(line + "\n" for line in keep))
        return self.metrics.open("a")

    def read_metrics_lines(self) -> list[str]:
        return [line for line in self.metrics.read_text().splitlines() if line]

    def write_metrics_lines(self, lines: list[str]) -> None:
        atomic_write(self.metrics, lambda fh: fh.write("".join(line + "\n" for line in lines).encode()))

    def read_metrics(self) -> Iterator[dict[str, Any]]:
        return (json.loads(line) for line in self.read_metrics_lines())

    # ---- result.json
    def write_result(self, result: dict[str, Any]) -> None:
        write_json(self.path / RESULT, result)

    def read_result(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.path / RESULT).read_text())
        except (OSError, ValueError):
            return None

    def clear_result(self) -> None:
        (self.path / RESULT).unlink(missing_ok=True)


def legacy_to_population(state: dict[str, Any], population: Any) -> dict[str, Any]:
    """A checkpoint written before populations (one model, torch's Adam) as a population of one, so such a
    run still resumes. Controller parameters keep their order: state_dict order is parameter order."""
    names = [k.removeprefix("controller.") for k in state["model"]]
    adam = state["optimizer"]["state"]  # torch.optim.Adam: {parameter index: {step, exp_avg, exp_avg_sq}}
    steps = int(adam[0]["step"]) if adam else 0
    zeros = [torch.zeros_like(w).unsqueeze(0) for w in state["model"].values()]
    member = {"seed": int(state["config"].get("seed", 0)), "settings": {}, "curriculum": state["curriculum"],
              "data_gen": state["data_gen"], "noise_gen": state["noise_gen"], "counters": state["counters"],
              "lineage": [], "errors": []}
    return {
        "format": "nramdsl-population/1",
        "step": int(state["counters"]["step"]),
        "seeds": [member["seed"]],
        "controller": {name: w.unsqueeze(0) for name, w in zip(names, state["model"].values())},
        "optimizer": {"steps": [steps],
                      "exp_avg": [adam[i]["exp_avg"].unsqueeze(0) if i in adam else zeros[i] for i in range(len(names))],
                      "exp_avg_sq": [adam[i]["exp_avg_sq"].unsqueeze(0) if i in adam else zeros[i]
                                     for i in range(len(names))]},
        "members": [member],
        "config": {},
    }
