"""The shipped detector on rendered frames, and a video file through the real worker, offline."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim.camera import Fleet
from sim.render import Scene, Style
from vision.detector import WEIGHTS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def _fleet(rows):
    dims = {0: (4.5, 1.8, 1.5), 1: (2.2, 0.9, 1.5), 2: (12.0, 2.5, 3.2), 3: (8.0, 2.4, 3.4)}
    n = len(rows)
    return Fleet([f"v{k}" for k in range(n)], np.array([[x, y] for x, y, _ in rows], float),
                 np.full(n, -math.pi / 2), np.zeros(n), ["e"] * n, np.zeros(n),
                 np.array([dims[c][0] for *_, c in rows]), np.array([dims[c][1] for *_, c in rows]),
                 np.array([dims[c][2] for *_, c in rows]), np.array([c for *_, c in rows], dtype=np.int64))


@pytest.fixture(scope="module")
def detector():
    from vision.detector import Detector

    return Detector(WEIGHTS, conf=0.3)


def test_shipped_weights_are_small_and_documented():
    assert WEIGHTS.exists(), "the detector weights must ship with the repository"
    assert WEIGHTS.stat().st_size <= 15e6
    card = json.loads((WEIGHTS.parent / "model.json").read_text())
    assert card["map50"] >= 0.9 and card["initialisation"].startswith("random")


def test_detector_finds_known_vehicles_with_their_classes(detector):
    """Vehicles placed by hand in the lanes of the held-out scenario's approach, filmed by its camera."""
    from sim.backend import SumoBackend
    from sim.camera import place_cameras
    from sim.render import RoadMap
    from sim.scenario import load_scenario

    with SumoBackend(load_scenario("single")) as b:
        net, _ = b.network()
        cam = place_cameras(b.ts, [x.id for x in net.intersections])[0]
        scene = Scene.from_map(RoadMap.from_sumo(b.ts), cam)
    lanes = cam.lanes

    def at(lane: int, metres: float, cls: int):
        """A vehicle ``metres`` upstream of the stop line of ``lanes[lane]``, heading to it."""
        a, b_ = lanes[lane].stop_line
        mid = (a + b_) / 2
        d = np.array([(b_ - a)[1], -(b_ - a)[0]])
        d /= np.hypot(*d)  # travel direction
        p = mid - d * metres
        return (p[0], p[1], cls, math.atan2(d[1], d[0]))

    cases = [
        [at(0, 6.0, 0), at(1, 16.0, 3), at(2, 28.0, 2)],
        [at(0, 10.0, 1), at(1, 5.0, 0), at(1, 20.0, 0), at(2, 14.0, 0)],
        [],
    ]
    rng = np.random.default_rng(3)
    frames, truth = [], []
    for rows in cases:
        fleet = _fleet([(x, y, c) for x, y, c, _ in rows])
        fleet.heading[:] = [h for *_, h in rows]
        img, labels = scene.frame(fleet, Style(noise=3.0), rng)
        frames.append(img)
        truth.append(sorted(lb.cls for lb in labels))
    assert truth[0] == [0, 2, 3] and len(truth[1]) == 4  # every vehicle is in view and labelled
    dets = detector(frames)  # one batched call
    assert [sorted(d.cls.tolist()) for d in dets] == truth


def test_detector_counts_on_frames_of_a_scenario_it_never_saw(detector):
    from sim.backend import SumoBackend
    from sim.camera import place_cameras
    from sim.feed import CameraFeed
    from sim.scenario import load_scenario

    with SumoBackend(load_scenario("single"), seed=5) as b:
        net, _ = b.network()
        feed = CameraFeed(b.ts, place_cameras(b.ts, [x.id for x in net.intersections]), seed=5)
        for _ in range(500):
            b.ts.simulationStep()
            feed.truth(feed.observe())
        right = total = 0
        n_true = n_found = 0
        for _ in range(10):
            for _ in range(5):
                b.ts.simulationStep()
                fleet = feed.observe()
            shot = feed.shoot(fleet, 0.0)
            for labels, det in zip(shot.labels, detector(shot.frames)):
                total += 1
                right += len(det) == len(labels)
                n_true += len(labels)
                n_found += len(det)
    assert n_true >= 20
    assert right / total >= 0.8
    assert abs(n_found - n_true) <= 0.1 * n_true


def _no_network_runner(tmp_path: Path) -> Path:
    """A Python start-up file that records and refuses every network connection."""
    site = tmp_path / "nonet"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import os, socket\n"
        "LOG = os.environ['NONET_LOG']\n"
        "def _refuse(*a, **k):\n"
        "    open(LOG, 'a').write(repr(a[:2]) + '\\n')\n"
        "    raise OSError('network disabled by the test')\n"
        "socket.socket.connect = _refuse\n"
        "socket.socket.connect_ex = _refuse\n"
        "socket.create_connection = _refuse\n"
        "socket.getaddrinfo = _refuse\n"
    )
    return site


def test_video_files_through_the_worker_offline(tmp_path):
    from sim.video import render_videos

    cfg = render_videos("single", tmp_path / "cams", seconds=40.0, fps=4.0, seed=9, warmup=400.0)
    site = _no_network_runner(tmp_path)
    log = tmp_path / "connections.log"
    out = tmp_path / "counts.jsonl"
    env = {"PYTHONPATH": f"{site}:{ROOT}", "NONET_LOG": str(log), "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path), "CITYBRAIN_YOLO_DIR": str(tmp_path / "yolo")}
    r = subprocess.run([sys.executable, "-m", "citybrain.cli", "worker", "--config", str(cfg), "--out", str(out)],
                       env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert not log.exists(), f"the worker tried to connect: {log.read_text()}"
    counts = [json.loads(x) for x in out.read_text().splitlines()]
    truth = [json.loads(x) for x in (tmp_path / "cams" / "truth.jsonl").read_text().splitlines()]
    cams = {c["camera"] for c in counts}
    assert len(cams) == 4 and len(counts) >= 4 * 18  # one record per camera every 2 s of video
    crossed = sum(sum(c["crossed"]) for c in counts)
    true_crossed = sum(sum(t["crossed"]) for t in truth)
    assert true_crossed >= 5
    assert abs(crossed - true_crossed) <= max(2, 0.15 * true_crossed)
    # vehicles present per lane: the interval means against the truth's means over the same frames
    by_cam: dict = {}
    for t in truth:
        by_cam.setdefault(t["camera"], []).append(t["present"])
    err = []
    for c in counts:
        rows = np.array(by_cam[c["camera"]])
        k = int(round(c["time"] * 4))
        lo = max(0, k - c["frames"] + 1)
        err.extend(np.abs(np.array(c["present"]) - rows[lo:k + 1].mean(axis=0)).tolist())
    assert np.mean(err) <= 0.35
