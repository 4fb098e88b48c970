"""The deployment files say what the command line takes: every command in the compose file and
the service units parses, and the ports are the protocol's."""

import shlex
from pathlib import Path

import pytest
import yaml

from citybrain.cli import build_parser
from wire.protocol import PORTS

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


@pytest.mark.parametrize("service", ["brain", "worker-0", "worker-1", "sim"])
def test_every_compose_command_parses(service):
    args = build_parser().parse_args(_compose()["services"][service]["command"])
    assert args.func.__name__ == {"brain": "cmd_serve", "sim": "cmd_sim"}.get(service, "cmd_worker")
    assert getattr(args, "keys", None) == "/state/keys"  # CURVE on every channel


def test_compose_endpoints_use_the_protocols_ports():
    s = _compose()["services"]
    assert f"tcp://sim:{PORTS['frames']}" in s["worker-0"]["command"]
    assert f"tcp://brain:{PORTS['intake']}" in s["sim"]["command"]
    assert f"tcp://sim:{PORTS['decisions']}" in s["brain"]["command"]
    assert s["brain"]["ports"] == [f"{PORTS['metrics']}:{PORTS['metrics']}"]
    assert "prometheus" in s and f"brain:{PORTS['metrics']}" in (DEPLOY / "prometheus.yml").read_text()


@pytest.mark.parametrize("unit", sorted(p.name for p in (DEPLOY / "systemd").glob("*.service")))
def test_every_service_unit_runs_a_command_that_parses(unit):
    text = (DEPLOY / "systemd" / unit).read_text().replace("\\\n", " ")
    (line,) = [x for x in text.splitlines() if x.startswith("ExecStart=")]
    argv = shlex.split(line.split("=", 1)[1].replace("%i", "worker-0").replace("${BRAIN}", "tcp://brain:5556")
                       .replace("$FRAMES_ARGS", "--frames tcp://sim:5555"))
    assert argv[0].endswith("/citybrain")
    args = build_parser().parse_args(argv[1:])
    assert args.func.__name__ in ("cmd_serve", "cmd_sim", "cmd_worker")


def test_every_port_is_in_the_services_help(capsys):
    for cmd in ("serve", "sim", "worker"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([cmd, "--help"])
        out = capsys.readouterr().out
        for name, port in PORTS.items():
            assert str(port) in out, (cmd, name)
