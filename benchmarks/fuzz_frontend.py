"""Benchmark (not a test): the front end under mutated specs, as an attacker or a careless user would write them.

    python benchmarks/fuzz_frontend.py --specs 1000             # the figures in docs/limits.md
    python benchmarks/fuzz_frontend.py --specs 200 --keep out/  # also keep every spec that hit a defect

Every spec is a seeded mutation of the examples (byte flips, token edits, truncation, huge integers, deep
nesting, long names, non-UTF-8, NUL, CRLF, tabs, look-alike characters, odd imports, extreme sizes and
`--set` overrides), run through `nramdsl check` and `nramdsl compile --emit summary`, each in a forked
child with a memory limit (`--memory-mb`, on the data segment above what the parent already holds) and a
time limit (`--timeout`). `check`'s random property draws are cut to `--gate-examples` per gate (its
exhaustive parts are not). On a loaded 2-core machine 1,000 specs took about an hour on the code issue 14
found (each spec that hangs costs the whole time limit) and half an hour with the limits.

One JSON object on stdout:
  specs             specs tried
  uncaught          runs that ended in an exception other than the project's errors (kinds below)
  over_memory       runs that passed the memory limit (MemoryError, an allocator failure, or killed)
  over_time         runs that passed the time limit
  unlocated_errors  error lines about a spec without FILE:LINE:COL (errors about an argument are not counted)
  wrong_caret       located errors whose quoted source line is not that line of the file
  check_ok_compile_failed  specs `check` accepted that `compile` then crashed on, or ran past a limit with
and the same counts per command. The run is deterministic for a seed, apart from what the limits cut off.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import re
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bounded import classify, run_limited, score_errors, warm  # noqa: E402 - the forked runner, shared

LOOK_ALIKES = ["а", "о", "０", "−", "“", "”", "ｍ", "\u00a0", "\u200b", "\ufeff"]
NOISE = ["\x00", "\r\n", "\r", "\t", "\u2028", "\u0085", "\x0c", "\x1b[31m", "{", "}", "(", ")", ",", "=", "*",
         "//", "mod", "#", '"', ".", ":", "-", "gate", "gates", "const", "machine", "circuit", "memory",
         "registers", "timesteps", "use", "via", "import", "train", "task", "if", "then", "else", "M", "read",
         "write", "2..6", "1e400", *LOOK_ALIKES]
BIG_INTS = ["0", "1", "2", "40", "155", "1000", "3000", "1000000", "1000000000", "99999999999999999999",
            "1" + "0" * 30, "1" + "0" * 40, "9" * 5000]
IMPORTS = ["/dev/zero", "/dev/stdin", "fifo", "nul\x00x.nram", "paper.nram", "missing.nram", ".", "/",
           "a" * 5000, "../" * 40 + "etc/passwd", "{self}"]
OVERRIDES = ["M=2", "M=40", "M=155", "M=3000", "M=1000000", "M=1000000000", "R=1000000", "T=1000000000",
             "M=0", "R=-1"]
TOKEN = re.compile(r"\s+|[A-Za-z_][A-Za-z0-9_]*|\d+|//|<=|>=|==|!=|\S")
INT = re.compile(r"\b\d+\b")


# ---- mutations: each takes and returns bytes


def _mutate_text(rng: random.Random, text: str, name: str) -> str:
    kind = rng.randrange(10)
    tokens = TOKEN.findall(text) or [" "]
    i = rng.randrange(len(tokens))
    if kind == 0:  # token edit
        op = rng.randrange(3)
        if op == 0:
            del tokens[i]
        elif op == 1:
            tokens.insert(i, rng.choice(NOISE) + " ")
        else:
            j = rng.randrange(len(tokens))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        return "".join(tokens)
    if kind == 1:  # an integer made extreme
        ints = list(INT.finditer(text))
        if ints:
            m = rng.choice(ints)
            return text[: m.start()] + rng.choice(BIG_INTS) + text[m.end() :]
    if kind == 2:  # truncation
        return text[: rng.randrange(len(text) + 1)]
    if kind == 3:  # deep or wide expressions
        k = rng.choice([50, 101, 150, 1000, 20000])
        body = rng.choice(["(" * k + "a" + ")" * k, "a + " * k + "a", "-" * k + "a", "not " * k + "a"])
        return re.sub(r"(gate \w+\(a[^)]*\)\s*=).*", lambda m: m.group(1) + " " + body, text, count=1)
    if kind == 4:  # a long name
        words = [t for t in tokens if t[:1].isalpha()]
        if words:
            w = rng.choice(words)
            return text.replace(w, w * rng.choice([50, 1000, 20000]), 1)
    if kind == 5:  # an odd import
        target = rng.choice(IMPORTS).replace("{self}", name)
        return f'import "{target}"\n' + text
    if kind == 6:  # a huge circuit or repeat count
        circuit = rng.choice(["circuit (read, write) * " + rng.choice(BIG_INTS),
                              "circuit " + ", ".join(["read"] * rng.choice([1000, 20000]))])
        return re.sub(r"circuit [^\n]*", circuit, text, count=1)
    if kind == 7:  # a line duplicated
        lines = text.split("\n")
        j = rng.randrange(len(lines))
        lines.insert(j, lines[j])
        return "\n".join(lines)
    # character edits
    pos = rng.randrange(len(text) + 1)
    return text[:pos] + rng.choice(NOISE) + text[pos + rng.randrange(2) :]


def mutate(rng: random.Random, source: str, name: str) -> bytes:
    text = source
    for _ in range(rng.randint(1, 3)):
        text = _mutate_text(rng, text, name)
    data = text.encode("utf-8", "surrogatepass")
    if rng.random() < 0.1:  # raw bytes: often not UTF-8
        raw = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            if raw:
                raw[rng.randrange(len(raw))] = rng.randrange(256)
        data = bytes(raw)
    return data


# ---- the driver


def prepare(work: Path) -> list[tuple[str, str]]:
    """The corpus copied beside the specs (imports and `via` kernels resolve there), and its texts."""
    for f in (ROOT / "examples").iterdir():
        shutil.copy(f, work / f.name)
    shutil.copy(ROOT / "tests" / "specs" / "tiny.nram", work / "tiny.nram")
    os.mkfifo(work / "fifo")
    return [(p.name, p.read_text()) for p in sorted(work.glob("*.nram"))]


def fuzz(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from nramdsl import cli
    from nramdsl.kernels.properties import run_gate_checks

    torch.set_num_threads(1)
    warm()
    checks = functools.partial(run_gate_checks, max_examples=args.gate_examples)
    cli._gate_checks = lambda: checks
    rng = random.Random(args.seed)
    totals: Counter = Counter()
    per: dict[str, Counter] = {"check": Counter(), "compile": Counter()}
    kinds: Counter = Counter()
    limit = args.memory_mb << 20
    with tempfile.TemporaryDirectory(prefix="nramfuzz-") as tmp:
        work = Path(tmp)
        corpus = prepare(work)
        for i in range(args.specs):
            name = f"fuzz{i}.nram"
            data = mutate(rng, rng.choice(corpus)[1], name)
            path = work / name
            path.write_bytes(data)
            extra = ["--set", rng.choice(OVERRIDES)] if rng.random() < 0.1 else []
            try:
                lines = data.decode("utf-8").split("\n")
            except UnicodeDecodeError:
                lines = None
            outcome = {}
            for cmd, argv in (("check", ["check", str(path), *extra]),
                              ("compile", ["compile", str(path), "--emit", "summary", *extra])):
                result = run_limited(argv, limit, args.timeout)
                outcome[cmd] = verdict = classify(result)
                per[cmd][verdict] += 1
                if verdict == "uncaught":
                    kinds[f"{cmd}: {result['uncaught']}"] += 1
                per[cmd].update(score_errors(result.get("stderr", ""), str(path), lines))
            bad = any(v in ("uncaught", "over_memory", "over_time") for v in outcome.values())
            if outcome["check"] == "ok" and outcome["compile"] in ("uncaught", "over_memory", "over_time"):
                totals["check_ok_compile_failed"] += 1
                bad = True
            if bad and args.keep:
                keep = Path(args.keep)
                keep.mkdir(parents=True, exist_ok=True)
                (keep / name).write_bytes(data)
                (keep / f"fuzz{i}.json").write_text(json.dumps({"args": extra, "outcome": outcome}))
            path.unlink()
            if args.progress and (i + 1) % 100 == 0:
                print(f"{i + 1} specs: {dict(per['check'])} {dict(per['compile'])}", file=sys.stderr, flush=True)
    for key in ("uncaught", "over_memory", "over_time", "unlocated_errors", "wrong_caret", "error_lines"):
        totals[key] = per["check"][key] + per["compile"][key]
    return {"specs": args.specs, "seed": args.seed, "timeout_s": args.timeout, "memory_mb": args.memory_mb,
            **{k: totals[k] for k in ("uncaught", "over_memory", "over_time", "unlocated_errors", "wrong_caret",
                                      "error_lines", "check_ok_compile_failed")},
            "uncaught_kinds": dict(kinds.most_common()), "per_command": {k: dict(v) for k, v in per.items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--specs", type=int, default=1000, help="mutated specs to try (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=int, default=20, help="seconds per command (default 20)")
    p.add_argument("--memory-mb", type=int, default=2048, help="memory per command above the start (default 2048)")
    p.add_argument("--gate-examples", type=int, default=5, help="random property draws per gate in check")
    p.add_argument("--keep", help="a folder for every spec that hit a defect, with what it did")
    p.add_argument("--progress", action="store_true", help="a line on stderr every 100 specs")
    args = p.parse_args()
    print(json.dumps(fuzz(args), indent=1))


if __name__ == "__main__":
    main()
