"""The ETA of long work: weighted by work, not by steps."""

from hfp8sim.progress import Eta


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_time_left_is_elapsed_times_work_left_over_work_done():
    clock = FakeClock()
    eta = Eta(1000, clock=clock)
    clock.now += 10
    assert eta.advance(250) == "25% of the work in 10 s, about 30 s left"
    clock.now += 290
    assert eta.advance(250) == "50% of the work in 300 s, about 5 min left"
    clock.now += 3300 * 3
    assert eta.advance(400) == "90% of the work in 10200 s, about 19 min left"
    assert eta.advance(100) == "100% of the work in 10200 s, about 0 s left"


def test_before_any_work_only_the_elapsed_time_is_known():
    clock = FakeClock()
    eta = Eta(0, clock=clock)
    clock.now += 3
    assert eta.status() == "3 s elapsed"
