"""The import rings of DESIGN.md, checked on the source tree.

- ``gateway/haystack`` and ``gateway/points`` are pure: no trio, quart, hypercorn, sockets,
  sqlite or asyncio, and nothing from the impure parts of the gateway or from the drivers.
- ``drivers/*`` import only ``drivers.base``, ``drivers.aio``, ``gateway.haystack``, their own
  package and protocol library; only ``drivers/aio.py`` (and the simulators) know asyncio.
- Only ``gateway/runtime`` and ``gateway/web`` own nurseries and timeouts.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

IO_MODULES = {"trio", "quart", "quart_trio", "hypercorn", "socket", "sqlite3", "asyncio", "ssl"}
IMPURE_GATEWAY = (
    "gateway.storage",
    "gateway.web",
    "gateway.runtime",
    "gateway.ops",
    "gateway.auth",
)
PROTOCOL_LIBS = {"modbus": {"pymodbus"}, "bacnet": {"bacpypes3"}, "opcua": {"asyncua"}}
NURSERY_CALLS = {"open_nursery", "fail_after", "fail_at", "move_on_after", "move_on_at"}


def _py_files(*parts: str) -> list[Path]:
    return sorted((ROOT.joinpath(*parts)).rglob("*.py"))


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def _top(name: str) -> str:
    return name.split(".", 1)[0]


PURE_FILES = _py_files("gateway", "haystack") + _py_files("gateway", "points")


@pytest.mark.parametrize("path", PURE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_modules_do_no_io(path: Path) -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for line, name in _imports(path)
        if _top(name) in IO_MODULES or name.startswith(IMPURE_GATEWAY) or _top(name) == "drivers"
    ]
    assert not bad, "\n".join(bad)


DRIVER_FILES = _py_files("drivers")


def _driver_allowed(path: Path, name: str) -> bool:
    rel = path.relative_to(ROOT / "drivers").parts
    package = rel[0] if len(rel) > 1 else None
    top = _top(name)
    if name in ("drivers", "drivers.base", "drivers.aio") or name.startswith("gateway.haystack"):
        return True
    if top == "drivers":
        if package == "sim":
            return True  # simulators reuse the protocol packages' maps and encodings
        own = f"drivers.{package}" if package else None
        return own is not None and (name == own or name.startswith(own + "."))
    if top == "gateway":
        return False
    if top == "asyncio":
        return rel == ("aio.py",) or package == "sim"
    if top in {"trio"}:
        return rel == ("aio.py",)
    libs = set().union(*PROTOCOL_LIBS.values())
    if top in libs:
        if package == "sim":
            return True
        return package is not None and top in PROTOCOL_LIBS.get(package, set())
    return True  # the standard library and small helpers


@pytest.mark.parametrize("path", DRIVER_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_drivers_import_only_their_ring(path: Path) -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for line, name in _imports(path)
        if not _driver_allowed(path, name)
    ]
    assert not bad, "\n".join(bad)


def _nursery_owners() -> list[Path]:
    owned = [ROOT / "gateway" / "runtime", ROOT / "gateway" / "web"]
    return [
        p
        for p in _py_files("gateway") + DRIVER_FILES
        if not any(p.is_relative_to(o) for o in owned) and p.name != "aio.py"
    ]


@pytest.mark.parametrize("path", _nursery_owners(), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_runtime_and_web_own_nurseries_and_timeouts(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = [
        f"{path.relative_to(ROOT)}:{node.lineno} uses {node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in NURSERY_CALLS
    ]
    assert not bad, "\n".join(bad)


def test_the_checks_see_the_tree() -> None:
    # Guards against a refactor that moves the packages and leaves these checks vacuous.
    assert len(PURE_FILES) >= 5
    assert (ROOT / "gateway" / "haystack" / "kinds.py") in PURE_FILES
