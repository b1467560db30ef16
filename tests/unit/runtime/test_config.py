"""Configuration loading: every kind of problem, each with its file, line and key; clean loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.runtime.config import (
    ConfigError,
    Problem,
    check_config,
    load_config,
)

ROOT = Path(__file__).resolve().parents[3]
FIRMWARE = ROOT / "firmware-config"

TOML = """\
[server]
listen = ["127.0.0.1"]
port = 8443

[server.tls]
enabled = false

[storage]
path = "state/gateway.db"
"""

SITE = """\
id: @site
dis: Site
site
tz: UTC
"""

CONN = """\
id: @m1
dis: Meter
conn
modbusConn
uri: `modbus-tcp://127.0.0.1:502`
modbusRegMapUri: "meter.csv"
"""

MAP = """\
name,addr,data,rw,scale,unit,dis
power,30001,f4,r,,kW,Power
energy,30003,u4,r,/10,kWh,Energy
setpoint,40001,s2,rw,/10,°C,Setpoint
running,10001,bit,r,,,Running
mode,40002,u2,rw,,,Mode
"""

POINT = """\
id: @p1
point
kind: "Number"
unit: "kW"
modbusConnRef: @m1
modbusCur: "power"
siteRef: @site
"""


def write_config(root: Path, toml: str = TOML, files: dict[str, str] | None = None) -> Path:
    """A configuration directory with gateway.toml and ``files`` (relative paths)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "gateway.toml").write_text(toml, encoding="utf-8")
    defaults = {"points/site.trio": SITE, "points/conn.trio": CONN, "maps/meter.csv": MAP}
    for name, text in {**defaults, **(files or {})}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """The 1-based line of the ``nth`` line containing ``needle``."""
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if needle in line]
    return hits[nth - 1]


def problems_of(root: Path, *, tls: bool = False) -> list[Problem]:
    _, problems = check_config(root, check_tls_files=tls)
    return problems


# -- gateway.toml --------------------------------------------------------------------------

TOML_CASES = [
    # (name, toml, needle on the line, key, words in the message)
    ("unknown top-level key", "colour = 1\n" + TOML, "colour", "colour", ["the top level"]),
    (
        "unknown key of a section",
        TOML + "paht = 'x'\n",
        "paht",
        "storage.paht",
        ["unknown key in [storage]", "did you mean 'path'"],
    ),
    (
        "unknown key in a table",
        TOML.replace("port = 8443", "prot = 8443"),
        "prot = 8443",
        "server.prot",
        ["unknown key in [server]", "did you mean 'port'"],
    ),
    ("unknown section", TOML + "[srever]\nport = 1\n", "[srever]", "srever", ["'server'"]),
    (
        "wrong type",
        TOML.replace("port = 8443", 'port = "8443"'),
        'port = "8443"',
        "server.port",
        ["integer in 1..65535", "'8443'"],
    ),
    (
        "out of range",
        TOML.replace("port = 8443", "port = 70000"),
        "port = 70000",
        "server.port",
        ["1..65535", "70000"],
    ),
    (
        "near-miss choice",
        TOML + '[auth]\ntoken_expiry = "slidng"\n',
        "token_expiry",
        "auth.token_expiry",
        ["sliding, fixed", "did you mean 'sliding'"],
    ),
    (
        "bad duration",
        TOML + '[auth]\ntoken_lifetime = "1 week"\n',
        "token_lifetime",
        "auth.token_lifetime",
        ["30min"],
    ),
    (
        "bad time zone",
        TOML.replace("port = 8443", 'port = 8443\ntz = "Mars/Olympus"'),
        "tz =",
        "server.tz",
        ["unknown time zone"],
    ),
    (
        "two wildcard listens",
        TOML.replace('["127.0.0.1"]', '["0.0.0.0", "::"]'),
        "listen",
        "server.listen",
        ["not both"],
    ),
    (
        "bad role of a client CN",
        TOML + '\n[server.tls.clients]\n"bms" = "superuser"\n',
        '"bms"',
        "server.tls.clients.bms",
        ["viewer", "superuser"],
    ),
    (
        "not TOML",
        TOML + "[auth\n",
        "[auth",
        None,
        ["not valid TOML"],
    ),
    (
        "tuning default names nothing",
        TOML + '[tuning]\ndefault = "tuning.nope"\n',
        "default =",
        "tuning.default",
        ["@tuning.nope names no record"],
    ),
    (
        "a table expected",
        "logging = 3\n" + TOML,
        "logging = 3",
        "logging",
        ["must be a table"],
    ),
]


@pytest.mark.parametrize(
    ("toml", "needle", "key", "words"),
    [c[1:] for c in TOML_CASES],
    ids=[c[0] for c in TOML_CASES],
)
def test_settings_problem_names_file_line_and_key(
    tmp_path: Path, toml: str, needle: str, key: str | None, words: list[str]
) -> None:
    root = write_config(tmp_path / "etc", toml)
    problems = problems_of(root)
    assert len(problems) == 1, problems
    (problem,) = problems
    assert problem.file == str(root / "gateway.toml")
    assert problem.line == line_of(toml, needle)
    assert problem.key == key
    for word in words:
        assert word in problem.message, problem


def test_dotted_and_quoted_keys_are_placed(tmp_path: Path) -> None:
    toml = TOML + '\n[auth]\n"plaintext" = "yes"\nstorage.history_days = "x"\n'
    problems = problems_of(write_config(tmp_path, toml))
    by_key = {p.key: p.line for p in problems}
    assert by_key["auth.plaintext"] == line_of(toml, '"plaintext"')
    # A dotted key inside [auth] defines auth.storage, which is not a known key.
    assert by_key["auth.storage"] == line_of(toml, "storage.history_days")


# -- points and maps -----------------------------------------------------------------------

MAP_ROWS_BAD = "name,addr,data,rw\npower,30001,f4,r\nbad,50001,u2,r\n"

TRIO_CASES = [
    # (name, extra files, file with the problem, needle, key, words)
    (
        "duplicate id across files",
        {"points/z.trio": 'id: @p1\npoint\nkind: "Bool"\n', "points/p.trio": POINT},
        "points/z.trio",
        "id: @p1",
        "id",
        ["duplicate id @p1", "p.trio:1"],
    ),
    (
        "record without id",
        {"points/p.trio": "dis: Lonely\nsite\n"},
        "points/p.trio",
        "dis: Lonely",
        None,
        ["needs an id"],
    ),
    (
        "dangling siteRef",
        {"points/p.trio": POINT.replace("siteRef: @site", "siteRef: @nowhere")},
        "points/p.trio",
        "siteRef",
        "siteRef",
        ["@nowhere names no record"],
    ),
    (
        "siteRef to a connector",
        {"points/p.trio": POINT.replace("siteRef: @site", "siteRef: @m1")},
        "points/p.trio",
        "siteRef",
        "siteRef",
        ["@m1 is not a site record"],
    ),
    (
        "equipRef to nothing",
        {"points/p.trio": POINT + "equipRef: @ahu\n"},
        "points/p.trio",
        "equipRef",
        "equipRef",
        ["@ahu names no record"],
    ),
    (
        "point whose connector does not exist",
        {"points/p.trio": POINT.replace("modbusConnRef: @m1", "modbusConnRef: @m9")},
        "points/p.trio",
        "modbusConnRef",
        "modbusConnRef",
        ["@m9 names no record"],
    ),
    (
        "connector ref to a site",
        {"points/p.trio": POINT.replace("modbusConnRef: @m1", "modbusConnRef: @site")},
        "points/p.trio",
        "modbusConnRef",
        "modbusConnRef",
        ["@site is not a conn record"],
    ),
    (
        "unknown register row",
        {"points/p.trio": POINT.replace('modbusCur: "power"', 'modbusCur: "powr"')},
        "points/p.trio",
        "modbusCur",
        "modbusCur",
        ["no register 'powr' in meter.csv", "did you mean 'power'"],
    ),
    (
        "unknown write row",
        {"points/p.trio": POINT + 'writable\nmodbusWrite: "setpiont"\n'},
        "points/p.trio",
        "modbusWrite",
        "modbusWrite",
        ["no register 'setpiont'", "'setpoint'"],
    ),
    (
        "write to a read-only row",
        {"points/p.trio": POINT + 'writable\nmodbusWrite: "power"\n'},
        "points/p.trio",
        "modbusWrite",
        "modbusWrite",
        ["'power' is read-only"],
    ),
    (
        "modbusWrite without writable",
        {
            "points/p.trio": POINT.replace('unit: "kW"', 'unit: "°C"').replace(
                'modbusCur: "power"', 'modbusWrite: "setpoint"'
            )
        },
        "points/p.trio",
        "modbusWrite",
        "modbusWrite",
        ["needs the writable marker"],
    ),
    (
        "Bool point on a float register",
        {"points/p.trio": POINT.replace('kind: "Number"\nunit: "kW"', 'kind: "Bool"')},
        "points/p.trio",
        "kind",
        "kind",
        ["Bool point cannot read an f4 register"],
    ),
    (
        "Bool point on a scaled register",
        {
            "points/p.trio": POINT.replace('kind: "Number"\nunit: "kW"', 'kind: "Bool"').replace(
                '"power"', '"energy"'
            )
        },
        "points/p.trio",
        "kind",
        "kind",
        ["scaled register"],
    ),
    (
        "Str point on a register",
        {"points/p.trio": POINT.replace('kind: "Number"\nunit: "kW"', 'kind: "Str"')},
        "points/p.trio",
        "kind",
        "kind",
        ["holds a Number or a Bool"],
    ),
    (
        "unit that does not fit the register",
        {"points/p.trio": POINT.replace('unit: "kW"', 'unit: "W"')},
        "points/p.trio",
        "unit",
        "unit",
        ["W does not match register 'power' (kW)"],
    ),
    (
        "point without kind",
        {"points/p.trio": POINT.replace('kind: "Number"\nunit: "kW"\n', "")},
        "points/p.trio",
        "id: @p1",
        None,
        ["needs a kind"],
    ),
    (
        "unit on a Bool",
        {
            "points/p.trio": POINT.replace('kind: "Number"', 'kind: "Bool"').replace(
                '"power"', '"running"'
            )
        },
        "points/p.trio",
        "unit",
        "unit",
        ["only a Number point has a unit"],
    ),
    (
        "runtime tag in configuration",
        {"points/p.trio": POINT + "curVal: 3kW\n"},
        "points/p.trio",
        "curVal",
        "curVal",
        ["set by the gateway at run time"],
    ),
    (
        "misspelled tag",
        {"points/p.trio": POINT + 'modbusCurr: "power"\n'},
        "points/p.trio",
        "modbusCurr",
        "modbusCurr",
        ["did you mean 'modbusCur'"],
    ),
    (
        "misspelled tag by case",
        {"points/p.trio": POINT + "connTuningref: @t\n"},
        "points/p.trio",
        "connTuningref",
        "connTuningref",
        ["did you mean 'connTuningRef'"],
    ),
    (
        "missing register map file",
        {"points/conn.trio": CONN.replace("meter.csv", "meters.csv")},
        "points/conn.trio",
        "modbusRegMapUri",
        "modbusRegMapUri",
        ["no register map 'meters.csv'", "did you mean 'meter.csv'"],
    ),
    (
        "register map that does not parse",
        {"maps/meter.csv": MAP_ROWS_BAD},
        "maps/meter.csv",
        "bad,50001",
        "addr",
        ["must start with 0 (coil)"],
    ),
    (
        "bad connector uri",
        {"points/conn.trio": CONN.replace("modbus-tcp://127.0.0.1:502", "modbus-udp://x")},
        "points/conn.trio",
        "uri:",
        "uri",
        ["scheme must be one of"],
    ),
    (
        "slave id the driver refuses",
        {"points/conn.trio": CONN + "modbusSlave: 300\n"},
        "points/conn.trio",
        "modbusSlave",
        "modbusSlave",
        ["0..255"],
    ),
    (
        "connector of an unknown protocol",
        {"points/x.trio": "id: @b1\nconn\nbacnetConn\nuri: `bacnet://10.0.0.1/5`\n"},
        "points/x.trio",
        "bacnetConn",
        "bacnetConn",
        ["no driver for this protocol", "modbusConn"],
    ),
    (
        "two line settings on one serial port",
        {
            "points/rtu.trio": (
                "id: @r1\nconn\nmodbusConn\nuri: `modbus-rtu:///dev/ttyUSB0?baud=9600`\n"
                'modbusRegMapUri: "meter.csv"\n---\n'
                "id: @r2\nconn\nmodbusConn\nuri: `modbus-rtu:///dev/ttyUSB0?baud=19200`\n"
                'modbusRegMapUri: "meter.csv"\nmodbusSlave: 2\n'
            )
        },
        "points/rtu.trio",
        "baud=19200",
        "uri",
        ["same line settings", "rtu.trio:1"],
    ),
    (
        "tuning time without a unit",
        {"points/t.trio": "id: @fast\nconnTuning\npollTime: 5\n"},
        "points/t.trio",
        "pollTime",
        "pollTime",
        ["pollTime must be a time Number"],
    ),
    (
        "misspelled tuning tag",
        {"points/t.trio": "id: @fast\nconnTuning\npolltime: 5s\n"},
        "points/t.trio",
        "polltime",
        "polltime",
        ["did you mean 'pollTime'"],
    ),
    (
        "history collection without tz",
        {"points/p.trio": POINT + "his\nhisCollectInterval: 15min\n"},
        "points/p.trio",
        "his",
        "his",
        ["needs a tz tag"],
    ),
    (
        "connTuningRef to a point",
        {"points/p.trio": POINT + "connTuningRef: @p1\n"},
        "points/p.trio",
        "connTuningRef",
        "connTuningRef",
        ["@p1 is not a connTuning record"],
    ),
    (
        "Trio that does not parse",
        {"points/p.trio": POINT + "---\nid: @p2\ndis: 3rd\tFloor (east)\n"},
        "points/p.trio",
        "3rd",
        None,
        ["cannot read Trio"],
    ),
]


@pytest.mark.parametrize(
    ("files", "where", "needle", "key", "words"),
    [c[1:] for c in TRIO_CASES],
    ids=[c[0] for c in TRIO_CASES],
)
def test_database_problem_names_file_line_and_key(
    tmp_path: Path,
    files: dict[str, str],
    where: str,
    needle: str,
    *,
    key: str | None,
    words: list[str],
) -> None:
    root = write_config(tmp_path / "etc", files=files)
    problems = problems_of(root)
    text = (root / where).read_text(encoding="utf-8")
    matching = [p for p in problems if p.file == str(root / where)]
    assert matching, problems
    problem = matching[0]
    assert problem.line == line_of(text, needle), problems
    assert problem.key == key, problems
    for word in words:
        assert word in problem.message, problems


def test_every_problem_is_reported_in_one_pass(tmp_path: Path) -> None:
    points = (
        POINT.replace("siteRef: @site", "siteRef: @nowhere")
        + "---\n"
        + POINT.replace("@p1", "@p2").replace('"power"', '"nope"')
        + "---\n"
        + POINT.replace("@p1", "@p3").replace('kind: "Number"', 'kind: "Text"')
    )
    toml = TOML.replace("port = 8443", "port = 0") + "colour = 1\n"
    root = write_config(tmp_path, toml, {"points/p.trio": points})
    problems = problems_of(root)
    keys = sorted((Path(p.file).name, p.key or "") for p in problems)
    assert keys == [
        ("gateway.toml", "server.port"),
        ("gateway.toml", "storage.colour"),
        ("p.trio", "kind"),
        ("p.trio", "modbusCur"),
        ("p.trio", "siteRef"),
        ("p.trio", "unit"),  # a unit on a point whose kind is not Number
    ]
    with pytest.raises(ConfigError) as caught:
        load_config(root, check_tls_files=False)
    assert len(caught.value.problems) == 6
    assert "6 configuration problems" in str(caught.value)


def test_missing_settings_file_is_a_problem(tmp_path: Path) -> None:
    write_config(tmp_path)
    (tmp_path / "gateway.toml").unlink()
    problems = problems_of(tmp_path)
    assert [(Path(p.file).name, p.line) for p in problems] == [("gateway.toml", 1)]
    assert "missing" in problems[0].message
