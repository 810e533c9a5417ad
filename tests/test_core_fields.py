"""The typed readers of rows, JSON and journal records (core.fields)."""

from __future__ import annotations

import pytest

from drakewell.core.fields import as_float, as_int, as_str, hex_bytes, hex_list, json_list, json_object
from drakewell.store import database_url, sqlite_url


def test_hex_bytes_reads_0x_hex() -> None:
    assert hex_bytes("0x00ff") == b"\x00\xff"
    assert hex_list(["0x01", "0x0203"]) == (b"\x01", b"\x02\x03")


@pytest.mark.parametrize("text", ["00ff", "abcd", "", None, 12, b"0x00"])
def test_hex_bytes_refuses_what_is_not_0x_hex(text: object) -> None:
    # text without the 0x prefix once lost its first two digits silently ("abcd" read as b"\xcd")
    with pytest.raises(ValueError, match="is not 0x hex"):
        hex_bytes(text)


def test_hex_list_refuses_a_non_list() -> None:
    with pytest.raises(TypeError):
        hex_list(5)


def test_number_readers_convert_as_int_and_float_do() -> None:
    assert as_int("12") == 12 and as_int(3.9) == 3 and as_float("2.5") == 2.5
    with pytest.raises(TypeError):
        as_int(None)
    with pytest.raises(TypeError):
        as_float([1])
    with pytest.raises(ValueError):
        as_int("twelve")


def test_structure_readers_refuse_the_wrong_kind() -> None:
    assert as_str("a") == "a" and json_list([1]) == [1] and json_object({"a": 1}) == {"a": 1}
    for reader, wrong in ((as_str, 1), (json_list, {}), (json_object, [])):
        with pytest.raises(TypeError):
            reader(wrong)


def test_database_url_keeps_urls_and_turns_paths_into_sqlite_urls() -> None:
    assert database_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert database_url("run/meter.sqlite") == sqlite_url("run/meter.sqlite") == "sqlite:///run/meter.sqlite"
