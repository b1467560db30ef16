"""Line numbers of TOML keys (tomllib gives none) and the typed getters of gateway.toml."""

from __future__ import annotations

import tomllib

from hypothesis import given
from hypothesis import strategies as st

from gateway.runtime.config_toml import Problem, TomlDocument, did_you_mean, key_lines

TRICKY = '''\
# a comment with key = 1
title = "a = b # not a comment"

[server]
listen = [
  "0.0.0.0",   # [not a table]
  "::",
]
"quoted key" = 1
'single' = 'a "literal" [string]'   # a literal string
port = 8443

[server.tls]
text = """
fake = "inside a multi-line string"
[fake.table]
"""
after = true
inline = { a = 1, b = [2, 3] }
dotted.key.here = 5

[[clients]]
name = "one"

[ tuning ]
default = 'x'
'''


def test_key_lines_of_a_tricky_document() -> None:
    lines = key_lines(TRICKY)
    tomllib.loads(TRICKY)  # the document is valid TOML
    assert lines[("title",)] == 2
    assert lines[("server",)] == 4
    assert lines[("server", "listen")] == 5
    assert lines[("server", "quoted key")] == 9
    assert lines[("server", "single")] == 10
    assert lines[("server", "port")] == 11
    assert lines[("server", "tls")] == 13
    assert lines[("server", "tls", "text")] == 14
    assert ("fake",) not in lines and ("fake", "table") not in lines
    assert lines[("server", "tls", "after")] == 18
    assert lines[("server", "tls", "inline")] == 19
    assert lines[("server", "tls", "dotted", "key", "here")] == 20
    assert lines[("server", "tls", "dotted")] == 20
    assert lines[("clients",)] == 22
    assert lines[("clients", "name")] == 23
    assert lines[("tuning", "default")] == 26


def test_unplaced_paths_fall_back_to_the_longest_prefix() -> None:
    doc = TomlDocument(TRICKY, "x.toml", [])
    assert doc.line_of(("server", "tls", "inline", "a")) == 19
    assert doc.line_of(("server", "nope")) == 4
    assert doc.line_of(("nothing",)) == 1


_KEY = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
_TEXT = st.text(alphabet="ab =#[]{}'\\,\"", max_size=12)
_SCALAR = st.one_of(
    st.integers(-(10**6), 10**6),
    st.booleans(),
    _TEXT.map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    _TEXT.filter(lambda s: "'" not in s).map(lambda s: "'" + s + "'"),
)


def _render(value: object) -> list[str]:
    """The lines of ``value`` (a list spreads over several lines, with comments)."""
    if isinstance(value, list):
        return ["[", *(f"  {_render(v)[0]},  # {v!s}" for v in value), "]"]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    return [str(value)]


@given(
    st.dictionaries(
        _KEY,
        st.dictionaries(_KEY, st.one_of(_SCALAR, st.lists(_SCALAR, max_size=3)), max_size=4),
        max_size=4,
    )
)
def test_every_key_is_found_on_its_line(sections: dict[str, dict[str, object]]) -> None:
    out: list[str] = []
    where: dict[tuple[str, ...], int] = {}
    for section, keys in sections.items():
        out.append(f"[{section}]  # section {section} = 1")
        where[(section,)] = len(out)
        for key, value in keys.items():
            first, *rest = _render(value)
            out.append(f"{key} = {first}")
            where[(section, key)] = len(out)
            out.extend(rest)
    text = "\n".join(out) + "\n"
    tomllib.loads(text)  # generated documents are valid TOML
    lines = key_lines(text)
    for path, line in where.items():
        assert lines[path] == line, (path, text)


def test_typed_getters_record_problems_and_return_defaults() -> None:
    problems: list[Problem] = []
    doc = TomlDocument('a = "x"\nb = 3\nc = true\nd = "15min"\ne = -1\n', "f.toml", problems)
    root = doc.root()
    assert root.integer("a", 7, 0, 10) == 7
    assert root.text("b", "dflt") == "dflt"
    assert root.flag("c", False) is True
    assert root.duration("d", None) == 900.0
    assert root.duration("e", 5.0) == 5.0
    assert root.integer("missing", 4, 0, 10) == 4
    root.finish()
    assert [(p.line, p.key) for p in problems] == [(1, "a"), (2, "b"), (5, "e")]


def test_did_you_mean() -> None:
    assert did_you_mean("prot", ["port", "prefix"]) == " (did you mean 'port'?)"
    assert did_you_mean("PORT", ["port"]) == " (did you mean 'port'?)"
    assert did_you_mean("colour", ["port", "prefix"]) == ""
