"""Build the project's compact table of the standard Haystack 4 defs.

Reads the published defs (``src/{ph,phScience,phIoT,phIct}/lib/*.trio`` of Project-Haystack
haystack-defs, Academic Free License 3.0) with the gateway's own Trio reader and writes
``gateway/haystack/defs_data.py``: for every def its symbol, its lib and the tags that state facts
about it (``is``, ``tagOn``, ``of``, ``mime``...). Documentation prose (``doc``) and links
(``wikipedia``) are left out; an ``enum`` keeps only its names.

The defs are normalized as the Haystack Normalization chapter says for the ``defs`` op:
``lib:^lib:<name>`` on every def (the lib def included), single-symbol ``is`` and ``tagOn`` made
lists, and each ``defx`` merged into the def it extends (``accumulate`` tags such as ``tagOn``
are joined, any other tag must agree). Op defs also get ``name`` and a one-line ``summary``
(written for this project), which Haystack 3 clients such as pyhaystack read.

Usage::

    python tools/build_defs.py [SOURCE_DIR]          # write gateway/haystack/defs_data.py
    python tools/build_defs.py [SOURCE_DIR] --check  # exit 1 if the committed table differs

SOURCE_DIR defaults to ``../shared/reference/haystack-defs`` beside the repository. A tag the
script does not know stops the build: decide whether it is a fact (``FACT_TAGS``) or prose
(``PROSE_TAGS``) before the table changes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

REPO: Final = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run as a plain script from a checkout

from gateway.haystack.codecs.trio import decode_records  # noqa: E402
from gateway.haystack.kinds import MARKER, Number, Symbol, Uri, Value  # noqa: E402

DEFAULT_SOURCE: Final = REPO.parent / "shared" / "reference" / "haystack-defs"
TARGET: Final = REPO / "gateway" / "haystack" / "defs_data.py"

#: The libs in dependency order, with the number of defs each must hold.
LIBS: Final = {"ph": 104, "phScience": 107, "phIoT": 466, "phIct": 42}

#: Tags kept in the table: relationships, structure, and the values a server serves.
FACT_TAGS: Final = frozenset(
    [
        "accumulate",
        "baseUri",
        "children",
        "childrenFlatten",
        "computedFromReciprocal",
        "containedBy",
        "depends",
        "dis",
        "docAssociations",
        "docTaxonomy",
        "enum",
        "fileExt",
        "inputs",
        "is",
        "mandatory",
        "maxVal",
        "mime",
        "minVal",
        "noSideEffects",
        "notInherited",
        "of",
        "openEnum",
        "outputs",
        "prefUnit",
        "quantityOf",
        "reciprocalOf",
        "tagOn",
        "tags",
        "transient",
        "transitive",
        "version",
    ]
)
#: Tags left out: documentation text and links to it.
PROSE_TAGS: Final = frozenset(["doc", "wikipedia"])
#: Tags that hold a list of symbols and are written as a lone symbol when there is one.
LIST_TAGS: Final = ("is", "tagOn")

#: One line per op, in this project's words (``summary``, for Haystack 3 clients).
OP_SUMMARIES: Final = {
    "about": "Describe the server: product, version, time zone and clock.",
    "close": "End the session and revoke its bearer token.",
    "defs": "List the definitions of the namespace, optionally by filter.",
    "filetypes": "List the file formats the server can read or write.",
    "libs": "List the libraries the definitions come from.",
    "ops": "List the operations this server answers.",
    "read": "Return the records that match a filter or a list of ids.",
    "nav": "Browse the site, equipment and point tree one level at a time.",
    "watchSub": "Open a watch, or add records to an open one.",
    "watchUnsub": "Remove records from a watch, or close it.",
    "watchPoll": "Return what changed in a watch since its last poll.",
    "hisRead": "Return the history samples of points over a time range.",
    "hisWrite": "Store history samples for a point.",
    "pointWrite": "Set or release a priority level of a writable point, or read its array.",
    "invokeAction": "Run a named action on a record.",
}


class DefsError(Exception):
    """The published defs are not what this script knows how to turn into the table."""


# -- reading and normalizing ----------------------------------------------------------------------


def load(source: Path) -> list[dict[str, Value]]:
    """Every def of the four libs, normalized, sorted by symbol."""
    defs: dict[str, dict[str, Value]] = {}
    extensions: list[tuple[str, dict[str, Value]]] = []
    for lib, expected in LIBS.items():
        files = sorted((source / lib / "lib").glob("*.trio"))
        if not files:
            raise DefsError(f"no Trio files under {source / lib / 'lib'}")
        count = 0
        for path in files:
            where = f"{lib}/lib/{path.name}"
            for rec in decode_records(path.read_bytes()):
                if "defx" in rec:
                    extensions.append((where, rec))
                    continue
                entry = _fact_tags(rec, where)
                name = _symbol_name(rec.get("def"), where)
                if name in defs:
                    raise DefsError(f"{where}: ^{name} is defined twice")
                entry["lib"] = Symbol(f"lib:{lib}")
                defs[name] = entry
                count += 1
        if f"lib:{lib}" not in defs:
            raise DefsError(f"{lib}: no def ^lib:{lib}")
        if count != expected:
            raise DefsError(f"{lib}: {count} defs, expected {expected}")
    accumulate = {name for name, d in defs.items() if d.get("accumulate") is MARKER}
    for where, rec in extensions:
        _merge_defx(defs, rec, where, accumulate)
    _add_op_names(defs)
    _check_filetypes(defs)
    return [defs[name] for name in sorted(defs)]


def _symbol_name(val: Value, where: str) -> str:
    if not isinstance(val, Symbol):
        raise DefsError(f"{where}: a record without a def symbol: {val!r}")
    return val.val


def _fact_tags(rec: Mapping[str, Value], where: str) -> dict[str, Value]:
    """The def's fact tags, normalized; an unknown tag is an error."""
    entry: dict[str, Value] = {}
    for tag, val in rec.items():
        if tag in ("def", "defx"):
            entry["def"] = val
        elif tag in PROSE_TAGS:
            continue
        elif tag not in FACT_TAGS:
            raise DefsError(f"{where}: unknown tag {tag!r} on {rec.get('def', rec.get('defx'))}")
        elif tag in LIST_TAGS:
            entry[tag] = list(val) if isinstance(val, list) else [val]
        elif tag == "enum":
            entry[tag] = enum_names(val, where)
        else:
            entry[tag] = val
    return entry


def enum_names(val: Value, where: str) -> str:
    """The names of an enum, one per line (an ``enum`` form the defs allow), without prose.

    Published enums are a markdown list (``- name: description``, continuation lines
    indented), one name per line, or names separated by commas.
    """
    if not isinstance(val, str):
        raise DefsError(f"{where}: an enum that is not a Str: {val!r}")
    lines = val.split("\n")
    if any(line.startswith("-") for line in lines):
        names = [line[1:].split(":", 1)[0].strip() for line in lines if line.startswith("-")]
    elif len(lines) == 1:
        names = [part.strip() for part in val.split(",")]
    else:
        names = [line.strip() for line in lines if line.strip()]
    if not names or not all(names):
        raise DefsError(f"{where}: cannot read the enum names of {val!r}")
    # geoCountry lists some codes twice, once per alias of the country's name
    return "\n".join(dict.fromkeys(names))


def _merge_defx(
    defs: dict[str, dict[str, Value]], rec: dict[str, Value], where: str, accumulate: set[str]
) -> None:
    name = _symbol_name(rec.get("defx"), where)
    target = defs.get(name)
    if target is None:
        raise DefsError(f"{where}: defx of unknown def ^{name}")
    for tag, val in _fact_tags(rec, where).items():
        if tag == "def":
            continue
        old = target.get(tag)
        if old is None or old == val:
            target[tag] = val
        elif tag in accumulate and isinstance(old, list) and isinstance(val, list):
            target[tag] = old + [v for v in val if v not in old]
        else:
            raise DefsError(f"{where}: defx ^{name} changes {tag} from {old!r} to {val!r}")


def _add_op_names(defs: dict[str, dict[str, Value]]) -> None:
    op_names = {name.removeprefix("op:") for name in defs if name.startswith("op:")}
    if op_names != set(OP_SUMMARIES):
        missing, extra = op_names - set(OP_SUMMARIES), set(OP_SUMMARIES) - op_names
        raise DefsError(f"op summaries out of date: missing {missing}, no such op {extra}")
    for op, summary in OP_SUMMARIES.items():
        defs[f"op:{op}"].update(name=op, summary=summary)


def _check_filetypes(defs: dict[str, dict[str, Value]]) -> None:
    for name, entry in defs.items():
        if name.startswith("filetype:"):
            for tag in ("mime", "fileExt", "dis"):
                if not isinstance(entry.get(tag), str):
                    raise DefsError(f"^{name} has no {tag}")


# -- writing ---------------------------------------------------------------------------------------

HEADER: Final = '''\
"""The standard Haystack 4 defs (libs ph, phScience, phIoT, phIct) as data.

GENERATED by tools/build_defs.py; do not edit, re-run the script. The facts come from the
published defs of Project Haystack (https://project-haystack.org/, haystack-defs, Academic Free
License 3.0): each def's symbol, its lib and its relationship and structural tags, normalized as
the defs op serves them. Documentation text is not included. Read it through
gateway.haystack.defs.
"""

# ruff: noqa: E501
# fmt: off

from __future__ import annotations

from typing import Final

from gateway.haystack.kinds import MARKER as M
from gateway.haystack.kinds import Number as N
from gateway.haystack.kinds import Symbol as S
from gateway.haystack.kinds import Uri as U
from gateway.haystack.kinds import Value

'''


def render(defs: list[dict[str, Value]]) -> str:
    """The text of the generated module: one def per line, ``def`` and ``lib`` first."""
    lines = [
        HEADER,
        f"#: {len(defs)} defs, sorted by symbol.\n",
        "DEFS: Final[tuple[dict[str, Value], ...]] = (\n",
    ]
    for entry in defs:
        names = ["def", "lib", *sorted(n for n in entry if n not in ("def", "lib"))]
        tags = ", ".join(f"{json.dumps(n)}: {py_literal(entry[n])}" for n in names)
        lines.append(f"    {{{tags}}},\n")
    lines.append(")\n")
    return "".join(lines)


def py_literal(val: Any) -> str:
    """The Python source of a value, with the short names imported by the generated module."""
    if val is MARKER:
        return "M"
    if isinstance(val, Symbol):
        return f"S({json.dumps(val.val)})"
    if isinstance(val, Uri):
        return f"U({json.dumps(val.val, ensure_ascii=False)})"
    if isinstance(val, Number):
        num = repr(int(val.val)) if val.is_int() else repr(val.val)
        return f"N({num})" if val.unit is None else f"N({num}, {json.dumps(val.unit)})"
    if isinstance(val, bool):
        return repr(val)
    if isinstance(val, str):
        return json.dumps(val, ensure_ascii=False)
    if isinstance(val, list):
        return "[" + ", ".join(py_literal(v) for v in val) + "]"
    if isinstance(val, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {py_literal(v)}" for k, v in val.items()) + "}"
    raise DefsError(f"no Python form for {val!r}")


def build(source: Path = DEFAULT_SOURCE) -> str:
    """The generated module's text for the defs under ``source``."""
    return render(load(source))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    text = build(args.source)
    if args.check:
        same = TARGET.is_file() and TARGET.read_text(encoding="utf-8") == text
        print(f"{TARGET.relative_to(REPO)} is {'up to date' if same else 'OUT OF DATE'}")
        return 0 if same else 1
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(REPO)}: {text.count(chr(10))} lines, {len(text)} chars")
    return 0


if __name__ == "__main__":
    sys.exit(main())
