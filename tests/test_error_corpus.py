"""The negative corpus: one bad spec per error class under tests/bad_specs/.

Each file states what it must produce in header comments, `# expect: LINE:COL message-substring`, one per
error; the front end must report exactly those errors (all of them in one pass), at those positions.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nramdsl.errors import ErrorList, LoadError, NramError
from nramdsl.lang.frontend import load_file
from nramdsl.lang.check import check_program

CORPUS = Path(__file__).parent / "bad_specs"
EXPECT = re.compile(r"^# expect: (\d+):(\d+) (.+)$")


def _errors(path: Path) -> list[NramError]:
    try:
        return check_program(load_file(path))
    except ErrorList as exc:
        return exc.errors
    except NramError as exc:
        return [exc]


def _expectations(path: Path) -> list[tuple[int, int, str]]:
    found = [EXPECT.match(line) for line in path.read_text().splitlines()]
    return [(int(m[1]), int(m[2]), m[3]) for m in found if m]


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.nram")), ids=lambda p: p.stem)
def test_bad_spec_reports_expected_errors(path: Path) -> None:
    expected = _expectations(path)
    assert expected, f"{path.name} has no '# expect:' line"
    errors = _errors(path)
    assert len(errors) == len(expected), "\n".join(e.format() for e in errors)
    for err, (line, col, text) in zip(errors, expected):
        assert err.span is not None and err.span.file == str(path)
        assert (err.span.line, err.span.column) == (line, col), err.format()
        assert text in err.message, err.format()
        shown = err.format().splitlines()
        assert shown[0] == f"{path}:{line}:{col}: error: {err.message}"
        assert shown[2].strip().startswith("^") and len(shown[2]) - len(shown[2].lstrip()) == 4 + col - 1


def test_every_error_class_is_in_the_corpus() -> None:
    names = {p.stem for p in CORPUS.glob("*.nram")}
    for prefix in ("syntax_", "unknown_", "duplicate_", "ambiguous_", "wrong_arity", "reserved_", "bad_sizes",
                   "totality_", "missing_", "bad_via", "import_", "gate_set_not_used", "call_of_gate"):
        assert any(n.startswith(prefix) for n in names), prefix


def test_several_errors_are_reported_together_sorted() -> None:
    errors = _errors(CORPUS / "bad_sizes.nram")
    assert len(errors) == 5
    assert [e.span for e in errors] == sorted(e.span for e in errors)  # type: ignore[type-var]


def test_import_cycle_is_reported_at_the_closing_import() -> None:
    with pytest.raises(LoadError) as info:
        load_file(CORPUS / "cycle" / "a.nram")
    err = info.value
    assert "import cycle: a.nram -> b.nram -> a.nram" in err.message
    assert err.span is not None and err.span.file.endswith("b.nram") and (err.span.line, err.span.column) == (2, 1)
