"""Learn for Modbus: a register map's rows as Haystack point records (pure).

Modbus has no discovery, so learning a device means reading its register map. Each row
becomes one record with these tags:

=================  ==============================================================
tag                value
=================  ==============================================================
``dis``            the row's ``dis`` (its name when the map gives none)
``point``          marker
``modbusPoint``    marker
``kind``           ``"Bool"`` for ``bit``/``bit:N`` rows, else ``"Number"``
``unit``           the row's unit, when it has one
``cur``            marker, for readable rows (``r``/``rw``)
``modbusCur``      the row name, for readable rows
``writable``       marker, for writable rows (``w``/``rw``)
``modbusWrite``    the row name, for writable rows
``modbusConnRef``  the connector's id, when given
``his``            marker, when ``his=True`` is asked for (all rows) or the row's
                   ``tags`` column has ``his``
(row ``tags``)     every marker and ``name:value`` of the row's ``tags`` column
=================  ==============================================================

The runtime adds ``id``, ``siteRef``/``equipRef`` and ``tz`` when it imports the records.
"""

from __future__ import annotations

from drivers.modbus.regmap import RegisterMap, RegisterRow
from gateway.haystack.kinds import MARKER, Ref, Value

__all__ = ["learn_points", "point_from_row"]


def point_from_row(
    row: RegisterRow, *, conn_ref: Ref | None = None, his: bool = False
) -> dict[str, Value]:
    """The point record for one register map row."""
    rec: dict[str, Value] = dict(row.tags)
    rec.update({"dis": row.dis, "point": MARKER, "modbusPoint": MARKER, "kind": row.kind})
    if row.unit is not None:
        rec["unit"] = row.unit
    if row.readable:
        rec["cur"] = MARKER
        rec["modbusCur"] = row.name
    if row.writable:
        rec["writable"] = MARKER
        rec["modbusWrite"] = row.name
    if conn_ref is not None:
        rec["modbusConnRef"] = conn_ref
    if his:
        rec["his"] = MARKER
    return rec


def learn_points(
    register_map: RegisterMap, *, conn_ref: Ref | None = None, his: bool = False
) -> list[dict[str, Value]]:
    """One point record per row of ``register_map``, in map order."""
    return [point_from_row(row, conn_ref=conn_ref, his=his) for row in register_map]
