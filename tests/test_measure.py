"""The RESCO delay metric from tripinfo: finished, unfinished, undeparted, and a file cut short."""

import pytest

from sim.measure import read_tripinfo

TRIPS = """<tripinfos>
 <tripinfo id="a" depart="10" departDelay="2" arrival="70" duration="60" timeLoss="20" waitingTime="10"/>
 <tripinfo id="b" depart="20" departDelay="0" arrival="-1" duration="40" timeLoss="30" waitingTime="25"/>
 <tripinfo id="c" depart="-1" departDelay="50" arrival="-1" duration="-1" timeLoss="0" waitingTime="0"/>
</tripinfos>
"""


def test_delay_counts_every_kind_of_trip(tmp_path):
    p = tmp_path / "t.xml"
    p.write_text(TRIPS)
    s = read_tripinfo(p)
    assert s.vehicles == 3 and s.arrived == 1
    assert s.avg_delay_s == pytest.approx((22 + 30 + 50) / 3)
    assert s.avg_trip_time_s == pytest.approx(60)
    assert s.avg_wait_s == pytest.approx(35 / 3)
    assert s.complete


def test_truncated_file_keeps_what_it_holds(tmp_path):
    p = tmp_path / "t.xml"
    p.write_text(TRIPS[: TRIPS.index('<tripinfo id="c"') + 20])
    s = read_tripinfo(p)
    assert s.vehicles == 2 and not s.complete
    assert s.avg_delay_s == pytest.approx(26)


def test_missing_file(tmp_path):
    s = read_tripinfo(tmp_path / "none.xml")
    assert s.vehicles == 0 and not s.complete
