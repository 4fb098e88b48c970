"""Camera geometry, placement, ground truth and rendering (SUMO for placement and truth)."""

import math

import numpy as np
import pytest

from sim.camera import Fleet, ground_truth, lane_zone
from wire.cameras import CLASSES, Camera, CameraLane
from sim.render import Scene, Style


def _cam(**kw):
    base = dict(id="c", tls="t", position=(0.0, -20.0, 10.0), yaw=math.pi / 2, pitch=math.radians(22), focal=550.0,
                size=(512, 320))
    base.update(kw)
    return Camera(**base)


def _fleet(rows):
    """rows: (x, y, heading, speed, lane, lane_pos, cls)"""
    n = len(rows)
    dims = {0: (4.5, 1.8, 1.5), 1: (2.2, 0.9, 1.5), 2: (12.0, 2.5, 3.2), 3: (8.0, 2.4, 3.4)}
    return Fleet([f"v{k}" for k in range(n)], np.array([[r[0], r[1]] for r in rows], float).reshape(n, 2),
                 np.array([r[2] for r in rows], float), np.array([r[3] for r in rows], float), [r[4] for r in rows],
                 np.array([r[5] for r in rows], float), np.array([dims[r[6]][0] for r in rows]),
                 np.array([dims[r[6]][1] for r in rows]), np.array([dims[r[6]][2] for r in rows]),
                 np.array([r[6] for r in rows], dtype=np.int64))


def test_projection_and_back_to_the_ground():
    cam = _cam()
    pts = np.array([[1.0, 10.0, 0.0], [-3.0, 30.0, 0.0], [4.0, 55.0, 0.0]])
    uv, z = cam.project(pts)
    assert (z > 0).all()
    assert np.allclose(cam.ground(uv), pts[:, :2], atol=1e-6)
    # straight ahead on the optical axis lands in the image centre
    d = 10.0 / math.tan(cam.pitch)
    uv, _ = cam.project(np.array([[0.0, -20.0 + d, 0.0]]))
    assert np.allclose(uv, [[256, 160]], atol=1e-6)
    # a point to the right of the view direction is right of centre
    uv, _ = cam.project(np.array([[3.0, 20.0, 0.0]]))
    assert uv[0, 0] > 256


def test_camera_config_round_trip_and_errors():
    zone, stop = lane_zone(np.array([[0.0, 100.0], [0.0, 0.0]]), 3.2, 45.0)
    cam = _cam(lanes=(CameraLane("e_0", zone, stop, 45.0, 100.0),))
    back = Camera.from_dict(cam.to_dict())
    assert back.id == cam.id and back.lanes[0].lane == "e_0"
    assert np.allclose(back.lanes[0].zone, zone)
    with pytest.raises(ValueError, match="camera"):
        Camera.from_dict({"id": "x"})


def test_lane_zone_runs_from_the_stop_line_upstream():
    # a lane driving south (+y to -y), stop line at y = 0
    zone, stop = lane_zone(np.array([[0.0, 100.0], [0.0, 0.0]]), 3.2, 45.0)
    assert np.allclose(sorted(stop[:, 0]), [-1.6, 1.6]) and np.allclose(stop[:, 1], 0.0)
    assert zone[:, 1].min() == pytest.approx(0.0) and zone[:, 1].max() == pytest.approx(45.0)
    # the first stop-line end is on the right of travel (west when driving south)
    assert stop[0, 0] < 0


def test_ground_truth_counts_queue_and_crossings():
    zone, stop = lane_zone(np.array([[0.0, 100.0], [0.0, 0.0]]), 3.2, 45.0)
    cam = _cam(lanes=(CameraLane("e_0", zone, stop, 45.0, 100.0),))
    last: dict = {}
    f1 = _fleet([(0, 5, -math.pi / 2, 0.0, "e_0", 95.0, 0), (0, 12, -math.pi / 2, 0.05, "e_0", 88.0, 2),
                 (0, 80, -math.pi / 2, 10.0, "e_0", 20.0, 0)])  # the last one is beyond the zone
    g = ground_truth(cam, f1, last)
    assert g.present.tolist() == [2.0] and g.queue.tolist() == [2.0] and g.crossed.tolist() == [0.0]
    assert g.classes[0, CLASSES.index("bus")] == 1
    # v0 left the lane (crossed its stop line); v2 drove on, still upstream of the zone
    f2 = _fleet([(0, 12, -math.pi / 2, 3.0, "e_0", 88.0, 2), (0, 70, -math.pi / 2, 10.0, "e_0", 30.0, 0)])
    f2.ids = ["v1", "v2"]
    g = ground_truth(cam, f2, last)
    assert g.crossed.tolist() == [1.0] and g.queue.tolist() == [0.0] and g.present.tolist() == [1.0]


def _road_scene(cam):
    road = np.array([[-6.0, -30.0], [6.0, -30.0], [6.0, 120.0], [-6.0, 120.0]])
    return Scene(cam, [(road, (95, 95, 100))])


def test_rendered_frame_labels_each_visible_vehicle():
    cam = _cam()
    scene = _road_scene(cam)
    # a car, a truck and a motorcycle in three lanes, driving south towards the camera
    fleet = _fleet([(0, 10, -math.pi / 2, 0, "e_0", 0, 0), (3.2, 25, -math.pi / 2, 0, "e_1", 0, 3),
                    (-3.2, 20, -math.pi / 2, 0, "e_2", 0, 1)])
    img, labels = scene.frame(fleet, Style(noise=0.0), np.random.default_rng(0))
    assert img.shape == (320, 512, 3) and img.dtype == np.uint8
    assert sorted(lb.row for lb in labels) == [0, 1, 2]
    assert sorted(lb.cls for lb in labels) == [0, 1, 3]
    for lb in labels:  # each box holds the vehicle's front bumper on the ground
        uv, _ = cam.project(np.array([[*fleet.xy[lb.row], 0.0]]))
        x1, y1, x2, y2 = lb.box
        assert x1 - 2 <= uv[0, 0] <= x2 + 2 and y1 - 2 <= uv[0, 1] <= y2 + 2
    # the vehicles changed the picture where their boxes are, not elsewhere
    empty, none = scene.frame(_fleet([]), Style(noise=0.0), np.random.default_rng(0))
    assert none == []
    x1, y1, x2, y2 = (int(v) for v in labels[0].box)
    assert np.abs(img[y1:y2, x1:x2].astype(int) - empty[y1:y2, x1:x2]).mean() > 10


def test_tiny_far_vehicles_are_not_labelled():
    cam = _cam()
    _, labels = _road_scene(cam).frame(_fleet([(0, 130, -math.pi / 2, 0, "e_0", 0, 1)]), Style(noise=0.0),
                                       np.random.default_rng(0))
    assert labels == []  # a motorcycle 150 m away is a few pixels: below the 10 px labelling floor


def test_occluded_vehicle_is_not_labelled():
    cam = _cam()
    scene = _road_scene(cam)
    # a car right behind a bus in the same lane: hidden from a camera looking along the lane
    fleet = _fleet([(0, 15, -math.pi / 2, 0, "e_0", 0, 2), (0, 29, -math.pi / 2, 0, "e_0", 0, 0)])
    _, labels = scene.frame(fleet, Style(noise=0.0), np.random.default_rng(0))
    assert [lb.row for lb in labels] == [0]
