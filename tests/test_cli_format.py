"""Times a reader can use (issue 20, item 4): durations in significant figures from one helper, and the rule
that marks a run whose step time jumped while it ran (NOTE [a run whose time jumped] in microdl._format),
checked on synthetic timings."""

import math
import re

import numpy as np
import pytest

from microdl._format import JUMP_FACTOR, JUMP_MIN_STEPS, format_seconds, step_times, timing_jumped


@pytest.mark.parametrize(("seconds", "text"), [
    (1.2345, "1.23 s"), (45.6e-3, "45.6 ms"), (780e-6, "780 µs"), (2.5e-8, "25 ns"), (12.345, "12.3 s"),
    (0.1, "100 ms"), (86.0, "86 s"), (999.7, "1000 s"), (3601.7, "3602 s"), (9.9996e-4, "1 ms"),
    (0.9996, "1 s"), (0.0, "0 s"), (-0.5, "-500 ms"), (None, "—"), (math.nan, "—"), (math.inf, "—"),
])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


def test_format_seconds_never_prints_zero_for_a_small_time():
    for exponent in range(-9, 4):
        for mantissa in (1.0, 1.5, 4.321, 9.99):
            text = format_seconds(mantissa * 10.0 ** exponent)
            number = float(text.split()[0])
            assert number != 0 and re.fullmatch(r"-?[\d.]+ (s|ms|µs|ns)", text), text
            assert len(text.split()[0].replace(".", "").lstrip("0")) <= 4  # significant figures, not decimals


def test_a_steady_run_is_not_marked_even_with_a_slow_first_epoch():
    rng = np.random.default_rng(0)
    steady = 0.01 * (1 + 0.2 * rng.random(50))
    assert not timing_jumped(steady)
    steady[0] = 2.0  # the first epoch compiled a kernel: 200 times slower
    assert not timing_jumped(steady)


def test_a_run_whose_steps_slowed_down_is_marked():
    rng = np.random.default_rng(1)
    quiet = 0.01 * (1 + 0.2 * rng.random(40))
    busy = np.concatenate([quiet, 4 * quiet[:8]])  # the last sixth ran 4x slower: the machine got busy
    assert timing_jumped(busy)
    mild = np.concatenate([quiet, 2 * quiet[:8]])  # 2x is within the rule's tolerance
    assert not timing_jumped(mild)
    # where the line lies: a tenth of the steps just above, and just below, the factor
    n = 100
    assert timing_jumped([1.0] * (n - 10) + [JUMP_FACTOR * 1.01] * 10)
    assert not timing_jumped([1.0] * (n - 10) + [JUMP_FACTOR * 0.99] * 10)
    assert not timing_jumped([1.0] * (n - 9) + [10 * JUMP_FACTOR] * 9)  # fewer than a tenth
    assert timing_jumped([1.0] * 10 + [10.0] * 2) and not timing_jumped([1.0] * 11 + [100.0])  # never one alone


def test_short_or_broken_runs_are_never_marked():
    assert not timing_jumped([0.01] * (JUMP_MIN_STEPS - 4) + [1.0] * 3)
    assert not timing_jumped([0.01] * 20 + [math.nan] + [1.0] * 5)
    assert not timing_jumped([0.0] * 30)


def test_step_times_from_cumulative_times():
    np.testing.assert_allclose(step_times([0.5, 0.75, 1.75]), [0.5, 0.25, 1.0])


def test_no_time_is_printed_with_fixed_decimals_anywhere():
    """One home: the CLI and the experiments print durations through format_seconds, never ':.3f} s'."""
    from pathlib import Path

    import microdl

    root = Path(microdl.__file__).parent
    pattern = re.compile(r"\{[^{}]*(time|seconds|wall|tic)[^{}]*:\.\d+f\}\s*(s|ms)\b")
    offenders = [f"{path.relative_to(root)}: {line.strip()}" for path in root.rglob("*.py")
                 if path.name != "_format.py" for line in path.read_text().splitlines() if pattern.search(line)]
    assert not offenders, offenders
