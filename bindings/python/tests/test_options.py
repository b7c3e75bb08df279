"""The shared option cases (tests/options/cases.json at the repository's
root): every case's verdict and error text must be the ones C and Node
give, since all three go through the core's option table; its "settings"
cases the ones Node gives through the core's settings table."""

import json
import pathlib

import pytest

import sluice

CASES = pathlib.Path(__file__).resolve().parents[3] / "tests" / "options" / "cases.json"


def _cases(section="cases"):
    return json.loads(CASES.read_text())[section]


def _expected(text, table=sluice.OPTIONS):
    # {name} stands for the option's name in the language: Python's are the
    # C/snake names; {unit}: Python's durations are seconds.
    text = text.replace("{unit}", "seconds")
    for spec in table:
        text = text.replace("{%s}" % spec["name"], spec["name"])
    return text


@pytest.mark.parametrize("case", _cases(), ids=lambda c: json.dumps(c["set"], sort_keys=False))
def test_case(case):
    if case.get("ok"):
        sluice.Server("127.0.0.1", 0, **case["set"]).close()
    else:
        with pytest.raises(ValueError) as e:
            sluice.Server("127.0.0.1", 0, **case["set"]).close()
        assert str(e.value) == _expected(case["error"])


@pytest.mark.parametrize("case", _cases("settings"), ids=lambda c: json.dumps(c["set"], sort_keys=False))
def test_settings_case(case):
    names = [s["name"] for s in sluice.SETTINGS]
    saved = {n: sluice.setting(n) for n in names}
    try:
        if case.get("ok"):
            sluice.configure(**case["set"])
        else:
            with pytest.raises(ValueError) as e:
                sluice.configure(**case["set"])
            assert str(e.value) == _expected(case["error"], sluice.SETTINGS)
        for name, value in case.get("get", {}).items():
            assert sluice.setting(name) == value, name
    finally:
        # io_threads is left out: the cases never change it, and once the
        # runtime runs it can no longer be set.
        sluice.configure(**{n: v for n, v in saved.items() if n != "io_threads"})
    assert {n: sluice.setting(n) for n in names} == saved


def test_channel_takes_the_same_options():
    # Refused before any connection is tried.
    with pytest.raises(ValueError, match=r"^max_frame_size: must be a whole number from 16 to 4294967295, got 0$"):
        sluice.Channel("127.0.0.1", 1, max_frame_size=0)
    with pytest.raises(TypeError):
        sluice.Channel("127.0.0.1", 1, max_frame_size=[1])
    with pytest.raises(TypeError):
        sluice.Channel("127.0.0.1", 1, no_such_option=1)


def test_table():
    names = [o["name"] for o in sluice.OPTIONS]
    for n in ("dialect", "protocol", "role", "profile", "max_frame_size", "header_table_size", "lenient",
              "high_watermark", "low_watermark", "max_queued", "connect_timeout", "close_linger", "max_pending",
              "read_size", "frame_timeout", "read_idle_timeout", "max_sessions", "copy_threshold", "batch"):
        assert n in names
    byname = {o["name"]: o for o in sluice.OPTIONS}
    assert byname["max_frame_size"]["kind"] == "count" and byname["max_frame_size"]["min"] == 16
    assert byname["connect_timeout"]["unit"] == "seconds"
    assert all(o["doc"] and o["default"] for o in sluice.OPTIONS)


def test_bool_is_not_an_int():
    with pytest.raises(ValueError, match=r"^max_frame_size: must be a whole number from 16 to 4294967295, got true$"):
        sluice.Server("127.0.0.1", 0, max_frame_size=True)


def test_huge_int_refused_by_the_table():
    with pytest.raises(ValueError, match=r"^max_frame_size: must be a whole number"):
        sluice.Server("127.0.0.1", 0, max_frame_size=1 << 200)


def test_errno_names_and_texts_from_the_core():
    assert sluice.errors.errno_name(104) == "ECONNRESET"
    assert sluice.errors.errno_name(9999) == "EUNKNOWN"
    assert "not a valid frame" in sluice.errors.errno_text(74)
    assert sluice.errors.from_errno(108).strerror == sluice.errors.errno_text(108)
