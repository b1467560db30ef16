"""Points: priority arrays, point status, tuning and poll/write scheduling (pure).

Nothing here does I/O or reads a clock: time comes in as ``now`` and decisions come out as data,
so the server's ops and storage and the connection runner share one tested set of rules.

- :mod:`~gateway.points.priority`: the 17-level priority array (``pointWrite``, persistence).
- :mod:`~gateway.points.status`: curStatus/connStatus/writeStatus, roll-up, status tags, stale.
- :mod:`~gateway.points.tuning`: tuning records and their point -> connector -> default lookup.
- :mod:`~gateway.points.durations`: time Numbers (``30min``) as seconds.
- :mod:`~gateway.points.schedule`: poll buckets and reconnect backoff.
- :mod:`~gateway.points.writes`: when the effective value is written to the device.
- :mod:`~gateway.points.hiscollect`: which readings become history samples.
"""
