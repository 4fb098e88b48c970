"""Lane counting from tracked boxes: zones, queue by standing tracks, crossings with hysteresis."""

import math

import numpy as np
import pytest

from sim.camera import lane_zone
from wire.cameras import Camera, CameraLane
from vision.counter import LaneCounter
from vision.worker import ConfigError, WorkerConfig, parse_class_map


def _cam():
    # two lanes driving south, stop line at y = 0; camera 20 m past it looking north (upstream)
    lanes = []
    for k, x in enumerate((-1.6, 1.6)):
        zone, stop = lane_zone(np.array([[x, 100.0], [x, 0.0]]), 3.2, 45.0)
        lanes.append(CameraLane(f"e_{k}", zone, stop, 45.0, 100.0))
    return Camera("c", "t", (0.0, -20.0, 10.0), math.pi / 2, math.radians(22), 550.0, (512, 320), tuple(lanes))


def _box(cam, x, y, w=1.8, h=40.0):
    """A box whose bottom centre is the ground point (x, y)."""
    uv, _ = cam.project(np.array([[x, y, 0.0]]))
    u, v = uv[0]
    half = cam.focal * w / 2 / (np.hypot(x - cam.position[0], y - cam.position[1]))
    return [u - half, v - h, u + half, v]


def test_lane_of_ground_points():
    c = LaneCounter(_cam())
    pts = np.array([[-1.6, 10.0], [1.6, 44.0], [1.6, 50.0], [8.0, 10.0], [0.0, -2.0]])
    assert c.lane_of(pts).tolist() == [0, 1, -1, -1, -1]


def test_standing_vehicles_are_the_queue_moving_ones_are_not():
    cam = _cam()
    c = LaneCounter(cam)
    for k in range(9):  # 2 s at 4 frames/s
        t = k * 0.25
        boxes = np.array([_box(cam, -1.6, 5.0), _box(cam, -1.6, 12.0), _box(cam, 1.6, 40.0 - 10.0 * t)])
        c.update(t, boxes, np.array([0, 0, 3]), np.array([1, 2, 3]))
    assert c.last_present.tolist() == [2.0, 1.0]
    assert c.last_queue.tolist() == [2.0, 0.0]
    out = c.flush(2.0)
    assert out.lanes == ("e_0", "e_1") and out.frames == 9
    assert out.classes[1, 3] == pytest.approx(1.0)  # the truck, present every frame
    # where the moving vehicles are now: the truck, 20 m before the stop line; standing ones not
    assert out.approach[0] == ()
    assert out.approach[1] == pytest.approx((20.0,), abs=0.5)


def test_a_crossing_counts_once_despite_jitter_at_the_line():
    cam = _cam()
    c = LaneCounter(cam)
    ys = [6.0, 3.0, 1.0, -0.3, 0.2, -0.5, -1.0, -0.2, -3.0, -6.0, -5.5, -4.0]  # noisy around the stop line
    for k, y in enumerate(ys):
        c.update(k * 0.25, np.array([_box(cam, 1.6, y)]), np.array([0]), np.array([7]))
    assert c.flush(3.0).crossed.tolist() == [0.0, 1.0]
    # a track first seen past the line never counts (its approach side is unknown)
    c.update(4.0, np.array([_box(cam, -1.6, -3.0)]), np.array([0]), np.array([8]))
    c.update(4.25, np.array([_box(cam, -1.6, -6.0)]), np.array([0]), np.array([8]))
    assert c.flush(4.5).crossed.sum() == 0


def test_untracked_detections_count_as_present_not_crossing_and_tracks_are_forgotten():
    cam = _cam()
    c = LaneCounter(cam, forget_s=1.0)
    c.update(0.0, np.array([_box(cam, -1.6, 3.0)]), np.array([0]), np.array([-1]))
    assert c.last_present.tolist() == [1.0, 0.0] and c.n_tracks == 0
    c.update(0.25, np.array([_box(cam, -1.6, 3.0)]), np.array([0]), np.array([5]))
    assert c.n_tracks == 1
    c.update(2.0, np.zeros((0, 4)), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    assert c.n_tracks == 0


def test_worker_config_checks_its_keys_and_class_maps():
    cam = _cam().to_dict()
    cfg = WorkerConfig.from_dict({"cameras": [dict(cam, source="a.mp4")], "class_map": "coco", "interval": 5})
    assert cfg.class_map == {2: 0, 3: 1, 5: 2, 7: 3} and cfg.interval == 5.0 and cfg.sources[0].endswith("a.mp4")
    with pytest.raises(ConfigError, match="unknown worker config keys: colour"):
        WorkerConfig.from_dict({"cameras": [cam], "colour": 1})
    with pytest.raises(ConfigError, match="non-empty 'cameras'"):
        WorkerConfig.from_dict({"cameras": []})
    assert parse_class_map("2:0,7:3") == {2: 0, 7: 3}
    with pytest.raises(ConfigError, match="class map"):
        parse_class_map("cars")
    with pytest.raises(ConfigError, match="project classes are 0-3 .*not 5"):
        parse_class_map("2:0,7:5")  # would crash the counter at the first class-5 detection
    with pytest.raises(ConfigError, match="not -1"):
        WorkerConfig.from_dict({"cameras": [cam], "class_map": {"2": -1}})


def test_a_track_lost_at_the_line_and_found_past_it_counts_once():
    cam = _cam()
    c = LaneCounter(cam)
    for k, y in enumerate([8.0, 5.0, 2.5]):  # track 1 approaches, then the tracker loses it
        c.update(k * 0.25, np.array([_box(cam, 1.6, y)]), np.array([0]), np.array([1]))
    c.update(0.75, np.zeros((0, 4)), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    for k, y in enumerate([-2.0, -5.0, -8.0]):  # ... and a new id appears just past the line
        c.update(1.0 + k * 0.25, np.array([_box(cam, 1.6, y)]), np.array([0]), np.array([2]))
    c.update(1.75, np.array([_box(cam, 1.6, 3.0)]), np.array([0]), np.array([1]))  # the old id resurfaces
    assert c.flush(2.0).crossed.tolist() == [0.0, 1.0]
    # no stitching across lanes or after too long
    c.update(10.0, np.array([_box(cam, -1.6, 3.0)]), np.array([0]), np.array([5]))
    c.update(13.0, np.array([_box(cam, -1.6, -3.0)]), np.array([0]), np.array([6]))
    assert c.flush(14.0).crossed.sum() == 0


def test_tracker_keeps_a_fast_vehicle_when_boxes_grow_for_association():
    from vision.detector import Detections, Tracker

    def run(grow):
        tr = Tracker(fps=4.0, grow=grow)
        ids = []
        for k in range(8):  # a 40 px box moving 44 px a frame: consecutive boxes do not overlap
            y = 20.0 + 44.0 * k
            det = Detections(np.array([[100.0, y, 140.0, y + 40.0]]), np.array([0.9]), np.array([0]))
            ids.append(int(tr.update(det)[0]))
        return ids

    grown = run(0.5)
    assert grown[1] > 0 and len(set(grown[1:])) == 1  # one identity from the second frame on
    plain = run(0.0)
    assert len(set(i for i in plain if i > 0)) != 1 or -1 in plain[2:]  # ByteTrack alone loses it


def test_worker_counts_a_new_run_from_its_start_when_the_clock_goes_back():
    from vision.detector import Detections
    from vision.worker import CameraWorker

    def nothing(frames):
        return [Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64)) for _ in frames]

    w = CameraWorker([_cam()], nothing, interval=2.0, fps=4.0)
    img = np.zeros((320, 512, 3), dtype=np.uint8)
    ends = [out[0].time for k in range(1, 41) if (out := w.process(k * 0.25 + 3590.0, [img]))]
    assert ends == [3592.0, 3594.0, 3596.0, 3598.0, 3600.0]
    ends = [out[0].time for k in range(1, 9) if (out := w.process(k * 0.25, [img]))]  # the next run
    assert ends == [2.0] and w.frames == 8


def test_worker_warm_up_runs_the_detector_on_each_cameras_frame_size_and_counts_nothing():
    from vision.detector import Detections
    from vision.worker import CameraWorker

    seen = []

    def detector(frames):
        seen.append([f.shape for f in frames])
        return [Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64)) for _ in frames]

    w = CameraWorker([_cam(), _cam()], detector, interval=2.0, fps=4.0)
    w.warm_up()
    assert seen == [[(320, 512, 3), (320, 512, 3)]]
    assert w.frames == 0 and all(t.update(Detections.empty()).size == 0 for t in w.trackers)
