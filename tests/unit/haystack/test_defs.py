"""The Haystack 4 defs table: counts, normalization, taxonomy, the four ops' query, the build."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gateway.haystack import MARKER, FilterError, Number, Symbol, Uri
from gateway.haystack import defs as hs_defs
from gateway.haystack.codecs import trio, zinc

REPO = Path(__file__).resolve().parents[3]
DEFS_DIR = REPO.parent / "shared" / "reference" / "haystack-defs"
TABLE = REPO / "gateway" / "haystack" / "defs_data.py"
needs_defs = pytest.mark.skipif(
    not DEFS_DIR.is_dir(), reason=f"the published Haystack defs are not at {DEFS_DIR}"
)


def _build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_defs", REPO / "tools" / "build_defs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_defs = _build_script()


def S(name: str) -> Symbol:
    return Symbol(name)


# -- the table ----------------------------------------------------------------------------------


def test_counts() -> None:
    all_defs = hs_defs.all_defs()
    assert len(all_defs) == 719
    assert Counter(d["lib"].val for d in all_defs) == {
        "lib:ph": 104,
        "lib:phScience": 107,
        "lib:phIoT": 466,
        "lib:phIct": 42,
    }
    assert len(hs_defs.libs()) == 4
    assert len(hs_defs.ops()) == 15
    assert len(hs_defs.filetypes()) == 6
    names = [d["def"].val for d in all_defs]
    assert names == sorted(names) and len(set(names)) == len(names)


def test_every_def_is_normalized() -> None:
    allowed = build_defs.FACT_TAGS | {"def", "lib", "name", "summary"}
    names = {d["def"].val for d in hs_defs.all_defs()}
    for d in hs_defs.all_defs():
        assert isinstance(d["def"], Symbol)
        assert isinstance(d["lib"], Symbol) and d["lib"].val in names
        assert set(d) <= allowed, d["def"]
        for tag in ("is", "tagOn"):
            if tag in d:
                assert isinstance(d[tag], list) and d[tag], (d["def"], tag)
        # every relationship points at a def of the table
        for tag in ("is", "tagOn", "of", "containedBy", "reciprocalOf", "quantityOf", "inputs"):
            targets = d.get(tag, [])
            for target in targets if isinstance(targets, list) else [targets]:
                assert isinstance(target, Symbol) and target.val in names, (d["def"], tag)
    # the lib defs carry their own lib
    for lib in hs_defs.libs():
        assert lib["lib"] == lib["def"]
        assert lib["version"] == "4.0.0"
        assert lib["baseUri"] == Uri(f"https://project-haystack.org/def/{lib['def'].val[4:]}/")


def test_examples_from_the_spec() -> None:
    assert hs_defs.def_of("point") == {
        "def": S("point"),
        "lib": S("lib:phIoT"),
        "is": [S("entity")],
        "mandatory": MARKER,
        "docTaxonomy": MARKER,
    }
    assert hs_defs.def_of("^lib:phIoT") == {
        "def": S("lib:phIoT"),
        "lib": S("lib:phIoT"),
        "version": "4.0.0",
        "baseUri": Uri("https://project-haystack.org/def/phIoT/"),
        "depends": [S("lib:ph"), S("lib:phScience")],
    }
    read = hs_defs.def_of(S("op:read"))
    assert read is not None
    assert (read["lib"], read["noSideEffects"], read["name"]) == (S("lib:ph"), MARKER, "read")
    assert hs_defs.def_of("noSuchDef") is None


def test_defx_are_merged() -> None:
    def tag_on(name: str) -> list[Symbol]:
        d = hs_defs.def_of(name)
        assert d is not None
        return list(d["tagOn"])

    # phIct extends a phIoT def: the lists join, the def keeps its lib
    assert tag_on("equipRef") == [S("equip"), S("point"), S("controller")]
    assert hs_defs.def_of("equipRef")["lib"] == S("lib:phIoT")  # type: ignore[index]
    assert set(tag_on("tz")) >= {S("point"), S("site"), S("weatherStation")}
    for name in ("enum", "kind", "maxVal", "minVal", "unit"):
        assert S("point") in tag_on(name), name


def test_enums_keep_only_names() -> None:
    cur_status = hs_defs.def_of("curStatus")
    assert cur_status is not None
    assert cur_status["enum"].split("\n") == [
        "ok",
        "stale",
        "fault",
        "down",
        "disabled",
        "unknown",
        "remoteFault",
        "remoteDown",
        "remoteDisabled",
        "remoteUnknown",
    ]
    for d in hs_defs.all_defs():
        if "enum" in d:
            lines = d["enum"].split("\n")
            assert all(line and line == line.strip() and ": " not in line for line in lines)
            assert len(set(lines)) == len(lines), d["def"]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("- ok: all is well\n- stale: old\n  data, continued", ["ok", "stale"]),
        ("- cooling:\n- warmup: morning warmup", ["cooling", "warmup"]),
        ("- L1-L2: line 1 to line 2\n- L2-L3: x", ["L1-L2", "L2-L3"]),
        ("- BO: Bolivia\n- BO: Bolivia, Plurinational State of", ["BO"]),
        (
            "Adult Education\nBank Branch\n\nBar/Nightclub",
            ["Adult Education", "Bank Branch", "Bar/Nightclub"],
        ),
        ("false,true", ["false", "true"]),
    ],
)
def test_enum_names(text: str, names: list[str]) -> None:
    assert build_defs.enum_names(text, "test").split("\n") == names


@pytest.mark.parametrize("bad", ["", "a,,b", 42])
def test_enum_names_refuse_what_they_cannot_read(bad: Any) -> None:
    with pytest.raises(build_defs.DefsError):
        build_defs.enum_names(bad, "test")


def test_ops_and_filetypes_rows() -> None:
    ops = hs_defs.ops()
    assert {op["name"] for op in ops} == {
        "about", "close", "defs", "filetypes", "libs", "ops", "read", "nav",
        "watchSub", "watchUnsub", "watchPoll", "hisRead", "hisWrite", "pointWrite",
        "invokeAction",
    }  # fmt: skip
    for op in ops:
        assert op["def"] == S("op:" + op["name"])
        assert isinstance(op["summary"], str) and op["summary"].endswith(".")
    # GET is allowed exactly for the ops without side effects (haystack.md §1.2)
    assert {op["name"] for op in ops if op.get("noSideEffects")} == {
        "about", "defs", "filetypes", "libs", "ops", "read", "nav", "hisRead",
    }  # fmt: skip
    mimes = {ft["def"].val: (ft["mime"], ft["fileExt"], ft["dis"]) for ft in hs_defs.filetypes()}
    assert mimes["filetype:zinc"] == ("text/zinc", "zinc", "Zinc")
    assert mimes["filetype:trio"] == ("text/trio", "trio", "Trio")
    assert mimes["filetype:json"] == ("application/json", "json", "JSON")
    assert set(mimes) == {
        f"filetype:{n}" for n in ("csv", "json", "jsonld", "trio", "turtle", "zinc")
    }


def test_callers_get_copies() -> None:
    first = hs_defs.def_of("equipRef")
    assert first is not None
    first["tagOn"].append(S("site"))
    first["lib"] = S("lib:mine")
    hs_defs.all_defs()[0]["is"].clear()
    assert hs_defs.def_of("equipRef")["tagOn"][-1] == S("controller")  # type: ignore[index]
    assert hs_defs.all_defs()[0]["is"]
    hs_defs.query("defs", "def==^ahu")[0]["is"].append(S("x"))
    assert hs_defs.def_of("ahu")["is"] == [S("airHandlingEquip")]  # type: ignore[index]


# -- taxonomy -----------------------------------------------------------------------------------


def test_inheritance() -> None:
    chain = hs_defs.inheritance("ahu")
    assert chain[:3] == [S("ahu"), S("airHandlingEquip"), S("equip")]
    assert chain.index(S("equip")) < chain.index(S("entity")) < chain.index(S("marker"))
    assert len(chain) == len(set(chain))
    assert hs_defs.inheritance(S("op:read")) == [S("op:read"), S("op"), S("feature")]
    assert hs_defs.inheritance("^lib:ph") == [S("lib:ph"), S("lib"), S("feature")]
    assert hs_defs.inheritance("marker") == [S("marker")]
    with pytest.raises(KeyError):
        hs_defs.inheritance("noSuchDef")


@pytest.mark.parametrize(
    ("name", "base", "expected"),
    [
        ("ahu", "equip", True),
        ("rtu", "ahu", True),
        ("ahu", "ahu", True),
        ("ahu", "point", False),
        ("equip", "ahu", False),
        ("hot-water-boiler", "boiler", True),
        ("hot-water-boiler", "hot-water-output", True),
        ("siteRef", "ref", True),
        ("curVal", "entity", False),
        ("op:hisRead", "op", True),
        ("filetype:zinc", "filetype", True),
        ("noSuchDef", "marker", False),
    ],
)
def test_is_a(name: str, base: str, expected: bool) -> None:
    assert hs_defs.is_a(name, base) is expected


def test_every_def_reaches_a_root() -> None:
    roots = {S("marker"), S("val"), S("feature")}
    for d in hs_defs.all_defs():
        assert roots & set(hs_defs.inheritance(d["def"])), d["def"]


# -- the query behind the defs, libs, ops and filetypes ops -----------------------------------


@pytest.mark.parametrize(
    ("kind", "filter_text", "count"),
    [
        ("defs", None, 719),
        ("defs", "", 719),
        ("defs", "def==^point", 1),
        ("defs", "lib==^lib:phIct", 42),
        ("defs", "tagOn and transient", 9),
        ("defs", "mandatory", 13),
        ("defs", "def==^noSuchDef", 0),
        ("libs", None, 4),
        ("libs", 'version=="4.0.0"', 4),
        ("libs", "depends", 3),
        ("ops", None, 15),
        ("ops", "noSideEffects", 8),
        ("ops", 'name=="read"', 1),
        ("filetypes", None, 6),
        ("filetypes", 'mime=="text/zinc"', 1),
        ("filetypes", "lib==^lib:ph and not dis", 0),
    ],
)
def test_query_counts(kind: hs_defs.DefKind, filter_text: str | None, count: int) -> None:
    grid = hs_defs.query(kind, filter_text)
    assert len(grid) == count
    assert "incomplete" not in grid.meta
    assert grid.col_names[0] == "def"
    assert list(grid.col_names[1:]) == sorted(grid.col_names[1:])


def test_query_rows_and_columns() -> None:
    grid = hs_defs.query("defs", "def==^point")
    assert grid.col_names == ("def", "docTaxonomy", "is", "lib", "mandatory")
    assert grid.to_dicts() == [hs_defs.def_of("point")]
    ops = hs_defs.query("ops")
    assert ops.col_names == ("def", "lib", "name", "noSideEffects", "summary")
    assert hs_defs.query("defs", "def==^nothing").col_names == ("def",)


def test_query_limit() -> None:
    grid = hs_defs.query("defs", "is", limit=10)
    assert len(grid) == 10
    assert grid.meta["incomplete"] == {"dis": "Only the first 10 of 691 defs", "limit": Number(10)}
    assert [r["def"] for r in grid] == [d["def"] for d in hs_defs.all_defs() if "is" in d][:10]
    assert "incomplete" not in hs_defs.query("libs", limit=4).meta
    assert len(hs_defs.query("libs", limit=100)) == 4
    empty = hs_defs.query("ops", limit=0)
    assert len(empty) == 0 and empty.meta["incomplete"]["limit"] == Number(0)
    with pytest.raises(ValueError):
        hs_defs.query("defs", limit=-1)


def test_query_errors() -> None:
    with pytest.raises(FilterError):
        hs_defs.query("defs", "def ==")
    with pytest.raises(ValueError):
        hs_defs.query("records", None)  # type: ignore[arg-type]


def test_table_survives_the_codecs() -> None:
    grid = hs_defs.query("defs")
    assert zinc.decode_grid(zinc.encode_grid(grid)) == grid
    records = hs_defs.all_defs()
    assert trio.decode_records(trio.encode_records(records)) == records


# -- the build ----------------------------------------------------------------------------------


@needs_defs
def test_the_committed_table_is_what_the_script_builds() -> None:
    assert build_defs.build(DEFS_DIR) == TABLE.read_text(encoding="utf-8"), (
        "gateway/haystack/defs_data.py is out of date: run python tools/build_defs.py"
    )


@needs_defs
def test_no_documentation_text_in_the_table() -> None:
    table = TABLE.read_text(encoding="utf-8")
    docs = [
        rec["doc"]
        for path in DEFS_DIR.glob("*/lib/*.trio")
        for rec in trio.decode_records(path.read_bytes())
        if isinstance(rec.get("doc"), str)
    ]
    assert len(docs) == 715
    leaked = [doc for doc in docs if len(doc) > 24 and doc[:40] in table]
    assert not leaked
    # and the op summaries are this project's words, not the published docs
    by_op = {d["def"].val.removeprefix("op:"): d for d in hs_defs.ops()}
    for path in DEFS_DIR.glob("*/lib/ops.trio"):
        for rec in trio.decode_records(path.read_bytes()):
            name = rec["def"].val.removeprefix("op:")
            if name in by_op:
                first_line = rec["doc"].split("\n")[0]
                assert first_line[:20] not in by_op[name]["summary"], name


@needs_defs
def test_the_build_refuses_unknown_tags(tmp_path: Path) -> None:
    for lib in build_defs.LIBS:
        (tmp_path / lib / "lib").mkdir(parents=True)
        for path in (DEFS_DIR / lib / "lib").glob("*.trio"):
            (tmp_path / lib / "lib" / path.name).write_bytes(path.read_bytes())
    lib_file = tmp_path / "ph" / "lib" / "lib.trio"
    text = lib_file.read_text(encoding="utf-8").replace("version:", "newFact: 1\nversion:")
    lib_file.write_text(text, encoding="utf-8")
    with pytest.raises(build_defs.DefsError, match="newFact"):
        build_defs.build(tmp_path)


def test_the_table_is_loaded_on_first_use_only() -> None:
    # A server that is never asked for defs does not hold them (~2 MiB).
    code = (
        "import sys, gateway.web.app, gateway.ops;"
        "assert 'gateway.haystack.defs_data' not in sys.modules;"
        "from gateway.haystack import defs; defs.def_of('site');"
        "assert 'gateway.haystack.defs_data' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
