"""Golden files: the bundled example's deliverables, byte for byte. A template change shows up
here as a diff; regenerate deliberately with KIT_UPDATE_GOLDEN=1 and review the diff."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from kit.families import render_all
from kit.spec import load_spec
from tests.conftest import EXAMPLE, MINIMAL

GOLDEN = Path(__file__).resolve().parent
CASES = {"shop-api": EXAMPLE, "minimal": MINIMAL}


@pytest.mark.parametrize("name", sorted(CASES))
def test_deliverables_match_golden(name):
    files = render_all(load_spec(CASES[name], output=Path("/nonexistent/kit-out")))
    folder = GOLDEN / name
    if os.environ.get("KIT_UPDATE_GOLDEN") == "1":
        for rel, text in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text)
    expected = {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*") if p.is_file()}
    assert sorted(expected) == sorted(files)
    for rel, text in files.items():
        assert text == expected[rel], f"{name}/{rel} differs from its golden file"
