"""Hosts that lack packages: ``citybrain`` run in a process where the named packages fail to
import, as on a host that never installed them (the brain host: no SUMO, no detector; a camera
host: no SUMO)."""

import sys

BRAIN_HOST = ("sim", "vision", "benchmarks", "scenarios", "libsumo", "traci", "sumolib", "torch", "torchvision",
              "ultralytics", "cv2")
CAMERA_HOST = ("sim", "benchmarks", "scenarios", "libsumo", "traci", "sumolib")
NOT_INSTALLED = "is not installed on this host"

_RUN = f"""
import importlib.abc, sys
LACKS = set(sys.argv[1].split(","))
class Lacks(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in LACKS:
            raise ImportError(f"{{name}} {NOT_INSTALLED}")
sys.meta_path.insert(0, Lacks())
from citybrain.cli import main
sys.exit(main(sys.argv[2:]))
"""


def citybrain_without(lacks: tuple[str, ...]) -> list[str]:
    """The argv prefix that runs ``citybrain`` with ``lacks`` not importable."""
    return [sys.executable, "-c", _RUN, ",".join(lacks)]
