import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lockgate.api import durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("5s", 5),
        ("30m", 1800),
        ("24h", 86400),
        ("1h30m", 5400),
        ("2d", 172800),
        ("7y", 7 * 365 * 86400),
    ],
)
def test_parses_go_style_durations(text: str, seconds: int) -> None:
    assert durations.parse(text) == datetime.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "30", "1.5h", "-5m", "5 m", "5ms", "h", "1w"])
def test_refuses_malformed_durations_with_a_hint(text: str) -> None:
    with pytest.raises(ValueError, match="use digits with units"):
        durations.parse(text)


@given(st.integers(min_value=0, max_value=10**8))
def test_format_round_trips(seconds: int) -> None:
    delta = datetime.timedelta(seconds=seconds)
    assert durations.parse(durations.format_duration(delta)) == delta
