"""The run directory: every file a training run reads or writes, its name, atomic writes and safe reads.

    runs/MACHINE-TASK-sSEED/     (the default name, `RunDir.default`)
      config.json     the settings in force, the machine's `SpecRef`, the task and sizes
      metrics.jsonl   one JSON line per logged step (strict JSON: a non-finite number is written null)
      checkpoint.pt   the latest state, from which `--resume` continues bit for bit
      result.json     a seed search's row for the finished run, keyed by its settings

    runs/MACHINE-TASK-pK-sSEED/  (a population of K, `RunDir.population_default`): the same files for all
      members (metrics lines carry "member" and "seed"), and members/sSEED/, one ordinary run directory
      per member

Writes go to a temporary file in the same folder, created with the ordinary mode (0666 less the umask),
and are renamed over the old one, so a crash mid-write leaves the old file or the new one, never a
truncated one; a temporary file a killed run left behind is removed when a run starts there again.

Run directories are shared between people, so their files are read as untrusted: a checkpoint is loaded
with `weights_only=True` (tensors, numbers, strings and plain containers; nothing in it can run code)
after its size is bounded, JSON is size-bounded and its syntax errors are located, and every file that
is not what it should be is one `NramError`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import re
import secrets
import stat
import zipfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator

import torch

try:
    import fcntl
except ImportError:  # Windows: run directories are not locked there
    fcntl = None  # type: ignore[assignment]

from nramdsl import limits
from nramdsl.errors import NramError, Span

CONFIG = "config.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.pt"
RESULT = "result.json"
LOCK = ".lock"  # held (flock) by the process training in the folder, `RunDir.lock`
TEMPORARY = ".tmp"  # the suffix of a write in progress
POPULATION_FORMAT = "nramdsl-population/1"
# What every checkpoint holds, and the type of each part (`nramdsl.training.population.Population.state_dict`),
# and what each member's part holds (`nramdsl.training.member.Member.state_dict`).
CHECKPOINT_PARTS: dict[str, type] = {"format": str, "step": int, "seeds": list, "controller": dict, "optimizer": dict,
                                     "members": list}
MEMBER_PARTS: dict[str, type] = {"seed": int, "curriculum": dict, "data_gen": torch.Tensor, "noise_gen": torch.Tensor,
                                 "counters": dict}
# A checkpoint written before populations (one model, torch's Adam): still read (`legacy_to_population`).
LEGACY_PARTS: dict[str, type] = {"model": dict, "optimizer": dict, "curriculum": dict, "data_gen": torch.Tensor,
                                 "noise_gen": torch.Tensor, "counters": dict}


# The run directories this process holds, and how many holders each (`RunDir.lock` nests: a seed search's
# unit holds its folder across training and scoring, and the training inside takes it again).
_HELD: dict[Path, int] = {}


# What config.json holds (`nramdsl.training.loop.run_config`), as its readers need it.
CONFIG_PARTS: dict[str, type] = {"train": dict, "spec": dict, "task": str, "complexity": int}


class NonFiniteState(NramError):
    """A state holding NaN or infinity, which is never written as a checkpoint."""


# ---- writing


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}{TEMPORARY}"
    # os.open with 0o666 gives the mode any new file gets (the umask applies), where mkstemp gives 0600
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new one
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, lambda fh: fh.write((json.dumps(json_safe(obj), indent=2, sort_keys=True) + "\n").encode()))


def json_safe(obj: Any) -> Any:
    """`obj` with every non-finite float as None: JSON has no NaN, and a reader that follows the standard
    rejects Python's bare `NaN`."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def metrics_line(row: dict[str, Any]) -> str:
    """One metrics.jsonl line: strict JSON (a skipped step's NaN loss is null)."""
    return json.dumps(json_safe(row), allow_nan=False) + "\n"


def all_finite(obj: Any) -> bool:
    """Whether every floating-point tensor and float in a (nested) state is finite."""
    if isinstance(obj, torch.Tensor):
        return not obj.is_floating_point() or bool(torch.isfinite(obj).all())
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(all_finite(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(all_finite(v) for v in obj)
    return True


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint; a state with a non-finite tensor is refused (`NonFiniteState`), so a checkpoint
    is always one a run can go on from."""
    weights = state.get("controller", state.get("model", {}))
    optimizer = state.get("optimizer", {})  # its tensors, not its settings (an lr may be anything)
    moments = {k: optimizer.get(k) for k in ("exp_avg", "exp_avg_sq", "state")} if isinstance(optimizer, dict) else {}
    if not all_finite(weights) or not all_finite(moments):
        raise NonFiniteState(f"not saving '{path}': the weights or the optimizer's state are not finite")
    atomic_write(path, lambda fh: torch.save(state, fh))


# ---- reading untrusted files


def _regular_file(path: Path, limit: limits.Limit, what: str) -> int:
    """The size of `path`, checked to be a regular file within `limit` before anything reads it."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise NramError(f"cannot read {what} '{path}': {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise NramError(f"cannot read {what} '{path}': not a regular file")
    limit.check(info.st_size, None, None, f"{what} '{path}': ")
    return info.st_size


def _check_zip(path: Path) -> None:
    """torch.save's archive, every record stored as written: its sizes are what torch will allocate, so
    they are bounded here, from the central directory, before torch reads anything."""
    reason = "not a zip archive as torch.save writes one"
    try:
        with zipfile.ZipFile(path) as archive:
            records = archive.infolist()
            total = sum(r.file_size for r in records)
            if all(r.compress_type == zipfile.ZIP_STORED and r.file_size == r.compress_size for r in records):
                limits.CHECKPOINT_BYTES.check(total, None, None, f"checkpoint '{path}': unpacked ")
                return
            reason = "it holds compressed records, which torch.save never writes"
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        pass
    raise NramError(f"'{path}' is not a checkpoint nramdsl can read ({reason})")


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint file's contents, loaded without running anything in it: the size bounded, the archive
    checked, then `torch.load(weights_only=True)`. Any other failure is one `NramError` naming the file."""
    _regular_file(path, limits.CHECKPOINT_BYTES, "checkpoint")
    _check_zip(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # weights_only refused something: say what, not torch's advice
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f"it asks to call {found.group(1)}" if found else "it holds more than tensors, numbers and strings"
        raise NramError(f"'{path}' is not a checkpoint nramdsl can read (UnpicklingError: {what}, which "
                        f"loading it would run; refused)") from None
    except Exception as exc:  # torch raises many kinds on a file that is not a checkpoint
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise NramError(f"'{path}' is not a checkpoint nramdsl can read ({type(exc).__name__}: {first})") from None
    if not isinstance(state, dict):
        raise NramError(f"'{path}' is not a checkpoint nramdsl can read (it holds a {type(state).__name__})")
    return state


def check_checkpoint(state: dict[str, Any], path: Path) -> dict[str, Any]:
    """A loaded checkpoint with every part a training run reads, of the right type."""

    def need(parts: dict[str, type], where: dict[str, Any], what: str) -> None:
        for part, kind in parts.items():
            if not isinstance(where.get(part), kind) or (kind is int and isinstance(where.get(part), bool)):
                raise NramError(f"'{path}' is not a training checkpoint: {what}'{part}' is missing or not a {kind.__name__}")

    if "format" not in state:
        need(LEGACY_PARTS, state, "its ")
        weights = state["model"]
    else:
        need(CHECKPOINT_PARTS, state, "its ")
        if state["format"] != POPULATION_FORMAT:
            raise NramError(f"'{path}' is a checkpoint of another format ({state['format']!r}, not {POPULATION_FORMAT!r})")
        members = state["members"]
        if len(members) != len(state["seeds"]) or not all(isinstance(m, dict) for m in members):
            raise NramError(f"'{path}' is not a training checkpoint: it does not hold one state per seed")
        for m in members:
            need(MEMBER_PARTS, m, "a member's ")
        weights = state["controller"]
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()):
        raise NramError(f"'{path}' is not a training checkpoint: its weights hold something other than tensors")
    return state


def read_json(path: Path, what: str = "JSON file") -> Any:
    """A JSON file read as untrusted: a bounded regular file, its syntax errors at their line and column."""
    _regular_file(path, limits.JSON_BYTES, what)
    text = path.read_bytes().decode("utf-8", "replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        span = Span(str(path), exc.lineno, exc.colno, exc.lineno, exc.colno + 1)
        raise NramError(f"{what} is not valid JSON: {exc.msg}", span, text) from None
    except RecursionError:
        raise NramError(f"{what} '{path}' is nested too deeply to be one nramdsl wrote") from None


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
        return self.checkpoint.is_file()

    def check_writable(self) -> None:
        """The folder exists or can be made, before a run starts: not a file, and not under one."""
        for folder in (self.path, *self.path.parents):
            if folder.exists():
                if not folder.is_dir():
                    what = "is a file" if folder == self.path else f"is under '{folder}', which is a file"
                    raise NramError(f"cannot use '{self.path}' as a run directory: it {what}")
                break

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder while this process trains in it. A second run started on the same folder (the same
        command twice, or a search relaunched while an old one's workers still run) would interleave its
        checkpoints, metrics and result with this one's; it gets one error line instead. An advisory `flock`
        on RUN/.lock, which the operating system drops when the process ends, however it ends: a killed run
        leaves no stale lock. Nested holds in one process share the first one's. Without `fcntl` (Windows)
        nothing is locked."""
        key = self.path.resolve()
        with self._flock() if fcntl is not None and not _HELD.get(key) else contextlib.nullcontext():
            _HELD[key] = _HELD.get(key, 0) + 1
            try:
                yield
            finally:
                _HELD[key] -= 1

    @contextlib.contextmanager
    def _flock(self) -> Iterator[None]:
        """The flock of `lock`, with this process's id in the file for the error of whoever finds it held."""
        self.check_writable()
        self.path.mkdir(parents=True, exist_ok=True)
        path = self.path / LOCK
        try:  # not through a link someone left there: the pid written below would land in its target
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
        except OSError as exc:
            raise NramError(f"cannot lock the run directory: '{path}': {exc.strerror}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode("ascii", "replace").strip()
                who = f"process {holder}" if holder.isdigit() else "another process"
                raise NramError(f"'{self.path}' is in use: {who} is training there; wait for it to end or stop "
                                f"it, then run again (it resumes from the last checkpoint)") from None
            except OSError:  # a file system without locks: train unlocked, as before locks existed
                pass
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            yield
        finally:
            os.close(fd)  # closing drops the flock

    def remove_temporaries(self) -> list[Path]:
        """Delete the temporary files of writes a killed run never finished (`.NAME.XXXX.tmp`)."""
        names = (CONFIG, METRICS, CHECKPOINT, RESULT)
        stale = [p for p in self.path.glob(f".*{TEMPORARY}") if p.name[1:].startswith(names)] if self.path.is_dir() else []
        for p in stale:
            p.unlink(missing_ok=True)
        return stale

    # ---- config.json
    def write_config(self, config: dict[str, Any]) -> None:
        write_json(self.path / CONFIG, config)

    def read_config(self) -> dict[str, Any]:
        """config.json, with the parts `load_run` and `nramdsl eval` read, of the right types."""
        path = self.path / CONFIG
        config = read_json(path, "run configuration")
        if not isinstance(config, dict):
            raise NramError(f"'{path}' is not a run configuration (not a JSON object)")
        for key, kind in CONFIG_PARTS.items():
            value = config.get(key)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise NramError(f"'{path}' is not a run configuration: its \"{key}\" is missing or not a {kind.__name__}")
        return config

    # ---- checkpoint.pt
    def save(self, state: dict[str, Any]) -> bool:
        """Write the checkpoint; False (and the old one kept) when the state is not finite."""
        try:
            save_checkpoint(self.checkpoint, state)
        except NonFiniteState:
            return False
        return True

    def load(self) -> dict[str, Any]:
        return check_checkpoint(load_checkpoint(self.checkpoint), self.checkpoint)

    # ---- metrics.jsonl
    def start_metrics(self, keep_until: int | None) -> IO[str]:
        """The metrics file opened for appending: emptied for a fresh run; for a resumed one, cut back to the
        lines logged up to step `keep_until` (the checkpoint's), so its log matches an uninterrupted run's."""
        self.path.mkdir(parents=True, exist_ok=True)
        if keep_until is None:
            self.metrics.unlink(missing_ok=True)
        elif self.metrics.exists():
            keep = [line for line, row in self._metrics_rows() if row["step"] <= keep_until]
            atomic_write(self.metrics, lambda fh: fh.write("".join(line + "\n" for line in keep).encode()))
        return self.metrics.open("a")

    def _metrics_rows(self) -> list[tuple[str, dict[str, Any]]]:
        """Each line with its row. A last line without its newline is a write a kill cut short (it is past
        the checkpoint, so nothing is lost) and is dropped; any other line that is not a row is an error."""
        _regular_file(self.metrics, limits.METRICS_BYTES, "metrics file")
        text = self.metrics.read_bytes().decode("utf-8", "replace")
        lines = text.split("\n")
        if lines and lines[-1]:
            lines[-1] = ""  # cut short by a kill
        rows = []
        for n, line in enumerate(lines, 1):
            if not line:
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):
                row = None
            if not isinstance(row, dict) or not isinstance(row.get("step"), int):
                span = Span(str(self.metrics), n, 1, n, len(line) + 1)
                raise NramError("not a metrics line (a JSON object with an integer \"step\")", span, text)
            rows.append((line, row))
        return rows

    def read_metrics_lines(self) -> list[str]:
        return [line for line, _ in self._metrics_rows()]

    def write_metrics_lines(self, lines: list[str]) -> None:
        atomic_write(self.metrics, lambda fh: fh.write("".join(line + "\n" for line in lines).encode()))

    def read_metrics(self) -> Iterator[dict[str, Any]]:
        return (row for _, row in self._metrics_rows())

    # ---- result.json
    def write_result(self, result: dict[str, Any]) -> None:
        write_json(self.path / RESULT, result)

    def read_result(self) -> dict[str, Any] | None:
        try:
            result = read_json(self.path / RESULT, "seed result")
        except NramError:
            return None
        return result if isinstance(result, dict) else None


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
        "format": POPULATION_FORMAT,
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
