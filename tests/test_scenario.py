"""Scenario loading: the own library resolves by name; every broken file is named in one line."""

import pytest

from sim.scenario import ScenarioError, library_names, load_scenario


def test_own_library_is_complete():
    assert library_names() == ["arterial", "crosswalk", "grid10x10", "grid4x4", "single"]
    s = load_scenario("single")
    assert s.name == "single" and (s.begin, s.end) == (0.0, 3600.0)
    assert s.net.name == "single.net.xml" and s.routes[0].name == "single.rou.xml"


def test_resco_folder_by_path(resco):
    s = load_scenario(resco / "cologne1")
    assert (s.begin, s.end) == (25200.0, 28800.0)


def write_cfg(folder, inputs="", time='<begin value="0"/><end value="60"/>'):
    cfg = folder / "x.sumocfg"
    cfg.write_text(f"<configuration><input>{inputs}</input><time>{time}</time></configuration>")
    return cfg


NET = '<net-file value="x.net.xml"/>'


@pytest.mark.parametrize("setup,needle", [
    (lambda d: None, "no SUMO configuration and no network"),
    (lambda d: write_cfg(d), "names no <net-file>"),
    (lambda d: write_cfg(d, NET), "x.net.xml: net-file named in x.sumocfg does not exist"),
    (lambda d: (write_cfg(d, NET), (d / "x.net.xml").write_text("<net><edge")), "x.net.xml: net-file is not valid XML"),
    (lambda d: (write_cfg(d, NET), (d / "x.net.xml").write_text("<routes/>")), "not a SUMO network"),
    (lambda d: (write_cfg(d, NET + '<route-files value="r.xml"/>'), (d / "x.net.xml").write_text("<net/>"),
                (d / "r.xml").write_text("<routes><vehicle id='a'>")), "r.xml: route-file is not valid XML"),
    (lambda d: (write_cfg(d, NET, '<begin value="60"/><end value="10"/>'), (d / "x.net.xml").write_text("<net/>")),
     "is not after <begin>"),
    (lambda d: (d / "x.sumocfg").write_text("<configuration"), "x.sumocfg: not valid XML"),
])
def test_broken_scenarios_name_the_file(tmp_path, setup, needle):
    setup(tmp_path)
    with pytest.raises(ScenarioError) as e:
        load_scenario(tmp_path)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_unknown_name_lists_own_scenarios():
    with pytest.raises(ScenarioError, match="own scenarios: arterial, crosswalk, grid10x10, grid4x4, single"):
        load_scenario("nosuch")
