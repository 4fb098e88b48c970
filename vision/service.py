"""``citybrain worker --frames ... --connect ...``: a camera worker as a networked process.

Frames come from the sim's PUB socket (subscribed to this worker's cameras only) or from local
sources (files, folders, RTSP); counts go to the brain's intake over PUSH, one message per
camera per interval, with a heartbeat every second of wall time. A frame that does not decode is
counted and skipped. SIGTERM ends the loop; a ``bye`` tells the brain.
"""

from __future__ import annotations

import logging
import signal
import time

import cv2
import numpy as np
import zmq

from vision.counter import LaneCounts
from vision.worker import CameraWorker, WorkerConfig
from wire.protocol import ProtocolError, decode, encode
from wire.transport import Curve, check_handshakes, close, make_socket, send

__all__ = ["CountSender", "serve_frames"]

log = logging.getLogger("citybrain.worker")


class CountSender:
    """Pushes counts and heartbeats to the brain."""

    def __init__(self, ctx: zmq.Context, endpoint: str, cfg: WorkerConfig, name: str,
                 curve: Curve | None = None) -> None:
        self.sock = make_socket(ctx, zmq.PUSH, endpoint, bind=False, curve=curve, server="brain")
        self.cfg = cfg
        self.name = name
        self.seq = 0
        self.dropped = 0
        self.sent = 0
        self._beat = 0.0

    def _send(self, type_: str, t: float, body: dict) -> None:
        self.seq += 1
        if send(self.sock, encode(type_, self.name, self.seq, t, body)):
            self.sent += 1
        else:
            self.dropped += 1

    def counts(self, counts: list[LaneCounts]) -> None:
        for cam, c in zip(self.cfg.cameras, counts):
            self._send("counts", c.time, {"camera": cam.id, "tls": cam.tls, "lanes": list(c.lanes),
                                          "present": c.present.tolist(), "queue": c.queue.tolist(),
                                          "crossed": c.crossed.tolist(), "classes": c.classes.tolist(),
                                          "interval": self.cfg.interval, "frames": c.frames,
                                          "approach_n": [len(x) for x in c.approach] if c.approach else [0] * len(c.lanes),
                                          "approach_m": [float(d) for x in c.approach for d in x]})

    def heartbeat(self, t: float) -> None:
        now = time.time()
        if now - self._beat >= 1.0:
            self._beat = now
            self._send("heartbeat", t, {"role": "worker", "cameras": [c.id for c in self.cfg.cameras]})

    def close(self) -> None:
        self._send("bye", 0.0, {"role": "worker"})
        close(self.sock)


def serve_frames(cfg: WorkerConfig, worker: CameraWorker, frames_endpoint: str, sender: CountSender,
                 *, idle_exit_s: float | None = None, curve: Curve | None = None) -> dict:
    """Count frames published by the sim until SIGTERM (or ``idle_exit_s`` without frames).

    Raises :class:`wire.errors.ChannelError` when a handshake with the sim or the brain fails
    (keys on one side only, a key not enrolled): the worker cannot work, and says why."""
    ctx = zmq.Context.instance()
    sub = make_socket(ctx, zmq.SUB, frames_endpoint, bind=False, hwm=1000, curve=curve, server="sim")
    index = {c.id: k for k, c in enumerate(cfg.cameras)}
    for cid in index:
        sub.setsockopt(zmq.SUBSCRIBE, cid.encode())
    stop = {"flag": False}

    def on_term(*_):
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    stats = {"frames": 0, "bad_frames": 0, "steps": 0}
    pending: dict[int, list] = {}
    t_cur = None
    last_frame = time.time()
    n = len(cfg.cameras)
    try:
        while not stop["flag"]:
            sender.heartbeat(t_cur or 0.0)
            check_handshakes(sub, sender.sock)
            if not sub.poll(100):
                if idle_exit_s is not None and time.time() - last_frame > idle_exit_s:
                    break
                if t_cur is not None and t_cur in pending and time.time() - last_frame > 0.5:
                    _flush(worker, sender, pending, t_cur, n, stats)  # a camera's frame never came
                continue
            _, raw = sub.recv_multipart()
            last_frame = time.time()
            try:
                m = decode(raw)
            except ProtocolError as e:
                stats["bad_frames"] += 1
                log.warning("bad frame message: %s", e)
                continue
            k = index.get(m.body["camera"])
            img = cv2.imdecode(np.frombuffer(m.body["jpeg"], np.uint8), cv2.IMREAD_COLOR) if k is not None else None
            if img is None:
                stats["bad_frames"] += 1
                continue
            stats["frames"] += 1
            t = m.sim_time
            if t_cur is not None and t < t_cur - 1e-9:  # a new run: the worker starts afresh on this frame
                log.info("frame for t=%g after t=%g: a new run", t, t_cur)
                pending.clear()
            if t_cur is not None and t > t_cur + 1e-9 and t_cur in pending:
                _flush(worker, sender, pending, t_cur, n, stats)  # a newer step began: count the older one
            t_cur = t
            slot = pending.setdefault(t, [None] * n)
            slot[k] = img
            if all(f is not None for f in slot):
                _flush(worker, sender, pending, t, n, stats)
    finally:
        close(sub)
    return stats


def _flush(worker: CameraWorker, sender: CountSender, pending: dict, t: float, n: int, stats: dict) -> None:
    frames = pending.pop(t)
    for old in [x for x in pending if x < t]:
        pending.pop(old)
    out = worker.process(t, frames)
    stats["steps"] += 1
    if out:
        sender.counts(out)
