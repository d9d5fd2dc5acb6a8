"""Listing stays linear: the growth exponent of each adapter's listing between n and 4n images.

No wall-clock limit is asserted: only the ratio of two times measured in this run (the best of
many repetitions each, the two sizes in alternation, so a busy machine slows both alike). A
listing that is quadratic in the number of files (FER+'s PNG folders were: a set rebuilt per
file) has an exponent near 2 here.
"""

from __future__ import annotations

import gc
import math
import time

import pytest
from fixtures_scaled import ADAPTER_OF, LAYOUTS

from lldif_bench.datasets import ADAPTERS

SMALL, LARGE = 1000, 4000
REPEATS = 5  # at least; and until MIN_SECONDS of timed listing (a 1,000-item listing takes ~5 ms)
MIN_SECONDS = 0.25
MAX_REPEATS = 200
MAX_EXPONENT = 1.5


def listing_seconds(adapter: str, sources: list) -> list[tuple[float, int]]:
    """(best seconds to open the layout and list its records, item count) for each source. Runs
    alternate between the sources, so a change in the machine's load slows every size alike, for
    at least ``REPEATS`` rounds and until each source had ``MIN_SECONDS`` of timed work. Each run
    starts with the previous run's objects freed and collected (untimed)."""
    best, total, count = [math.inf] * len(sources), [0.0] * len(sources), [0] * len(sources)
    rounds = 0
    while rounds < MAX_REPEATS and (rounds < REPEATS or min(total) < MIN_SECONDS):
        for i, src in enumerate(sources):
            gc.collect()
            start = time.perf_counter()
            ds = ADAPTERS.get(adapter)(src)
            count[i] = len(ds.build_records())
            seconds = time.perf_counter() - start
            del ds
            best[i], total[i] = min(best[i], seconds), total[i] + seconds
        rounds += 1
    return list(zip(best, count))


def growth_exponent(t_small: float, n_small: int, t_large: float, n_large: int) -> float:
    """k in time ∝ n^k between two sizes."""
    return math.log(t_large / t_small) / math.log(n_large / n_small)


def test_growth_exponent_formula():
    assert growth_exponent(1.0, 100, 4.0, 400) == pytest.approx(1.0)
    assert growth_exponent(1.0, 100, 16.0, 400) == pytest.approx(2.0)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_listing_grows_linearly(tmp_path, layout):
    make, adapter = LAYOUTS[layout], ADAPTER_OF[layout]
    small = make(tmp_path / "small", SMALL)
    large = make(tmp_path / "large", LARGE)
    (t_small, n_small), (t_large, n_large) = listing_seconds(adapter, [small, large])
    assert n_small >= SMALL * 0.99 and n_large >= LARGE * 0.99  # every generated item was listed
    k = growth_exponent(t_small, n_small, t_large, n_large)
    assert k < MAX_EXPONENT, (f"{layout}: listing {n_small} items took {t_small * 1e3:.1f} ms, {n_large} took "
                              f"{t_large * 1e3:.1f} ms: time grows as n^{k:.2f}")
