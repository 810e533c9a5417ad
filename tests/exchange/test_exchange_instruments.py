from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from drakewell.exchange.instruments import (
    GPU_MODELS,
    REGIONS,
    InstrumentError,
    day_contracts,
    make_instrument,
    next_day_starts,
    parse_instrument,
)


def test_parse_round_trips_and_states_the_window() -> None:
    inst = parse_instrument("H100-SXM.us-tx.2026-12-01T00Z.24h")
    assert inst.gpu_model == "H100-SXM"
    assert inst.region == "us-tx"
    assert inst.start == datetime(2026, 12, 1, tzinfo=UTC)
    assert inst.duration_h == 24
    assert inst.end_s - inst.start_s == 24 * 3600
    assert inst.id == "H100-SXM.us-tx.2026-12-01T00Z.24h"
    assert str(parse_instrument("B200.no-no.2027-01-31T23Z.1h").end) == "2027-02-01 00:00:00+00:00"


@pytest.mark.parametrize("model", list(GPU_MODELS))
def test_every_model_and_region_parses(model: str) -> None:
    for region in REGIONS:
        iid = f"{model}.{region}.2026-12-01T05Z.3h"
        assert parse_instrument(iid).id == iid


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ("A100.us-tx.2026-12-01T00Z.24h", "unknown GPU model"),
        ("H100-SXM.xx-yy.2026-12-01T00Z.24h", "unknown region"),
        ("H100-SXM.us-tx.2026-13-01T00Z.24h", "impossible start"),
        ("H100-SXM.us-tx.2026-12-01T24Z.24h", "impossible start"),
        ("H100-SXM.us-tx.2026-12-01T00Z.0h", "whole number of hours"),
        ("H100-SXM.us-tx.2026-12-01T00Z.99999h", "whole number of hours"),
        ("H100-SXM.us-tx.2026-12-01T00:30Z.24h", "malformed"),
        ("H100-SXM.us-tx.2026-12-01T00Z.1.5h", "malformed"),
        ("H100-SXM.us-tx.2026-12-01T00Z", "malformed"),
        ("", "malformed"),
    ],
)
def test_bad_ids_are_refused_with_a_hint(bad: str, words: str) -> None:
    with pytest.raises(InstrumentError, match=words) as info:
        parse_instrument(bad)
    assert info.value.hint


def test_make_instrument_refuses_off_hour_naive_and_converts_zones() -> None:
    with pytest.raises(InstrumentError, match="not on the hour"):
        make_instrument("B200", "us-tx", datetime(2026, 12, 1, 0, 30, tzinfo=UTC), 1)
    with pytest.raises(InstrumentError, match="no time zone"):
        make_instrument("B200", "us-tx", datetime(2026, 12, 1), 1)
    with pytest.raises(InstrumentError, match="whole number"):
        make_instrument("B200", "us-tx", datetime(2026, 12, 1, tzinfo=UTC), True)  # type: ignore[arg-type]
    central = timezone(timedelta(hours=-6))
    inst = make_instrument("B200", "us-tx", datetime(2026, 11, 30, 18, tzinfo=central), 2)
    assert inst.id == "B200.us-tx.2026-12-01T00Z.2h"


def test_listed_days_follow_the_given_clock_and_skip_the_day_that_has_begun() -> None:
    midnight = int(datetime(2030, 1, 1, tzinfo=UTC).timestamp())
    assert next_day_starts(midnight, 2) == [
        datetime(2030, 1, 2, tzinfo=UTC),
        datetime(2030, 1, 3, tzinfo=UTC),
    ]
    assert next_day_starts(midnight - 1, 1) == [datetime(2030, 1, 1, tzinfo=UTC)]  # 23:59:59 the day before
    assert next_day_starts(midnight, 0) == []
    ids = [i.id for i in day_contracts("H200-SXM", "no-no", midnight + 5 * 3600, 2)]
    assert ids == ["H200-SXM.no-no.2030-01-02T00Z.24h", "H200-SXM.no-no.2030-01-03T00Z.24h"]
    with pytest.raises(InstrumentError, match="negative") as info:
        next_day_starts(midnight, -1)
    assert info.value.hint
