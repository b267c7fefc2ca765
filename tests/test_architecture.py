"""The shape of the house: imports run one way, no module too large, no name defined twice."""

from __future__ import annotations

import ast
import collections
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "pixmorph"
MAX_LINES = 400  # split a module by concept before it grows past this


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_import_layers_hold():
    # the contracts live in pyproject.toml ([tool.importlinter]); a new cycle or an upward
    # import (a method importing the trainer, a network importing a method) fails here
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("lint-imports is not installed: pip install -e '.[dev]'")
    result = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_late_imports_of_pixmorph():
    # an import inside a function that exists only to dodge a cycle is a cycle
    late = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith(
                        "pixmorph"
                    ):
                        late.append(f"{path.relative_to(PACKAGE)}:{inner.lineno}")
    assert not late, late


def test_no_module_is_too_large():
    large = {
        str(p.relative_to(PACKAGE)): n
        for p in modules()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not large, large


def is_typevar(value: ast.expr) -> bool:
    return isinstance(value, ast.Call) and getattr(value.func, "id", "") == "TypeVar"


def test_no_name_is_defined_twice():
    # commands each define add_parser/run by convention; everything else has one home
    where = collections.defaultdict(list)
    for path in modules():
        if "commands" in path.parts:
            continue
        for node in ast.parse(path.read_text()).body:
            names = []
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                names = [node.name]
            elif isinstance(node, ast.Assign) and not is_typevar(node.value):
                names = [t.id for t in node.targets if isinstance(t, ast.Name) and t.id.isupper()]
            for name in names:
                where[name].append(str(path.relative_to(PACKAGE)))
    twice = {k: v for k, v in where.items() if len(v) > 1}
    assert not twice, twice


def test_the_template_is_not_registered():
    from pixmorph.methods.registry import METHODS

    assert "template" not in METHODS
