"""The process-wide settings: sluice.configure(**settings) and
sluice.setting(name) through the core's settings table (the one behind C's
sluice_set and Node's configure), durations in seconds."""

import pytest

import sluice


def test_table():
    byname = {s["name"]: s for s in sluice.SETTINGS}
    assert list(byname) == ["max_service_connections", "service_idle_timeout", "io_threads"]
    assert byname["max_service_connections"]["kind"] == "count"
    assert (byname["max_service_connections"]["min"], byname["max_service_connections"]["max"]) == (1, 4294967295)
    assert byname["service_idle_timeout"]["kind"] == "timeout"
    assert byname["service_idle_timeout"]["unit"] == "seconds"
    assert byname["io_threads"]["max"] == 1024
    assert all(s["doc"] and s["default"] for s in sluice.SETTINGS)
    assert "configure" in sluice.__all__ and "setting" in sluice.__all__ and "SETTINGS" in sluice.__all__


def test_service_idle_timeout_in_seconds():
    try:
        sluice.configure(service_idle_timeout=1.5)
        assert sluice.setting("service_idle_timeout") == 1.5
        sluice.configure(service_idle_timeout=None)
        assert sluice.setting("service_idle_timeout") is None
        sluice.configure(service_idle_timeout=2)
        assert sluice.setting("service_idle_timeout") == 2.0
        assert isinstance(sluice.setting("service_idle_timeout"), float)
        sluice.configure(service_idle_timeout=0)
        assert sluice.setting("service_idle_timeout") is None
    finally:
        sluice.configure(service_idle_timeout=300)
    assert sluice.setting("service_idle_timeout") == 300.0


def test_counts_are_ints():
    n = sluice.setting("max_service_connections")
    assert isinstance(n, int) and n >= 1
    try:
        sluice.configure(max_service_connections=n + 1)
        assert sluice.setting("max_service_connections") == n + 1
        # None leaves a count as it is.
        sluice.configure(max_service_connections=None)
        assert sluice.setting("max_service_connections") == n + 1
    finally:
        sluice.configure(max_service_connections=n)
    assert isinstance(sluice.setting("io_threads"), int)


def test_refusals_carry_the_core_text():
    n = sluice.setting("max_service_connections")
    with pytest.raises(ValueError) as e:
        sluice.configure(max_service_connections=0)
    assert str(e.value) == "max_service_connections: must be a whole number from 1 to 4294967295, got 0"
    with pytest.raises(ValueError) as e:
        sluice.configure(no_such=1)
    assert str(e.value) == "no_such: unknown setting"
    with pytest.raises(ValueError) as e:
        sluice.setting("no_such")
    assert str(e.value) == "no_such: unknown setting"
    with pytest.raises(ValueError) as e:
        sluice.configure(service_idle_timeout=-1)
    assert str(e.value) == "service_idle_timeout: must be a number of seconds from 0 to 1000000000 (0 or null: never), got -1"
    # Names are checked before anything is set.
    with pytest.raises(ValueError, match="^no_such: unknown setting$"):
        sluice.configure(max_service_connections=n + 7, no_such=1)
    assert sluice.setting("max_service_connections") == n
    # A value of a type no setting takes is a TypeError, as for the options.
    with pytest.raises(TypeError):
        sluice.configure(max_service_connections=[1])
    sluice.configure()
