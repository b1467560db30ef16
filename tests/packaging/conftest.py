"""The packaging tests: `packaging`-marked ones build and install the .deb (``make test-deb``).

They take minutes and need root, debootstrap and the Debian mirror, so they run only when asked
for with ``-m packaging``; the fast checks of the unit file here run with every ``make test``.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "packaging: builds the .deb and installs it in a Debian 12 root (make test-deb)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "packaging" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="packaging test: run with `make test-deb` (-m packaging)")
    for item in items:
        if item.get_closest_marker("packaging") is not None:
            item.add_marker(skip)
