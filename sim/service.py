"""``citybrain sim``: SUMO, the actuator and its safety monitor, and the synthetic cameras, as a process.

Every decision step the sim pushes the signals' status (and, with truth sensing, its detector
readings) to the brain's intake and applies the brain's decision through the actuator. It never
waits forever and never trusts the brain blindly:

- lockstep: it waits up to ``timeout_s`` (wall) for the decision of this step; free-running: it
  takes the newest decision at most two steps old;
- no decision (brain dead, slow or restarting): every intersection runs the scenario's own
  fixed-time plan (:class:`brain.controllers.plan.FixedPlan`) until decisions come again;
- a decision flags intersections whose cameras are stale: those run the plan too.

With vision sensing, every simulation step (``1 / fps`` s) renders every camera and publishes
the JPEG frames on a PUB socket, topic = camera id (a subscriber that falls ``HWM`` frames behind
loses the newest frames: PUB drops when full, explicitly).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import zmq

from brain.controllers.base import Controller
from brain.controllers.plan import FixedPlan
from brain.model import Network, Readings, SignalStatus
from brain.netfile import digest
from brain.timing import Timing, timing_of
from wire.errors import ChannelError
from wire.protocol import PORTS, ProtocolError, decode, encode
from wire.transport import Curve, close, handshake_failures, make_socket, send, stop_auth

__all__ = ["SimConfig", "RemoteBrain", "run_sim"]

log = logging.getLogger("citybrain.sim")


@dataclass(frozen=True)
class SimConfig:
    scenario: str = "single"
    seed: int = 1
    sensing: str = "truth"  # or "vision"
    cameras: str = ""
    fps: float = 4.0
    interval: float = 3.0
    """Seconds between decisions: the brain's controller's cadence (mpc: 3 s), which its hello
    tells the brain; a brain whose controller decides at another refuses."""
    lockstep: bool = True
    timeout_s: float = 5.0
    frames: str = f"tcp://*:{PORTS['frames']}"
    brain: str = f"tcp://127.0.0.1:{PORTS['intake']}"
    decisions: str = f"tcp://*:{PORTS['decisions']}"
    end: float | None = None
    json: str = ""
    sender: str = "sim"
    jpeg_quality: int = 90
    # the timing rules the actuator enforces (brain.timing.Timing); the sim's hello announces their
    # digest with the network's, and a brain whose description says otherwise refuses to drive
    yellow: float | None = None
    all_red: float | None = None
    min_green: float = 5.0
    max_green: float = 120.0
    clearance: str = "fixed"
    walk: float = 7.0
    ped_speed: float = 1.2
    profile: str = "mutcd"
    protocol: str = "citybrain"
    trace: str = ""
    keys: str = ""
    """CURVE keys folder (``citybrain keys``): frames and decisions are CURVE servers, the brain's
    intake is reached as the enrolled client ``sim``."""
    network: str = ""
    """Digest the network this sim drives must have (the brain's description of it, from
    ``citybrain export-network``); empty: not checked here (the brain checks the hello)."""
    realtime: float = 0.0  # free-running live use: simulated seconds per wall second (0: as fast as it goes)
    step_length: float | None = None
    """SUMO's step (s): the scenario's own unless given; vision sensing needs one frame per step,
    so there it is ``1 / fps`` unless given."""
    net: str = ""
    routes: tuple[str, ...] = ()
    additional: tuple[str, ...] = ()
    progress: bool = False
    """Print the simulated time every simulated minute on stderr, as ``citybrain run`` does."""


class RemoteBrain(Controller):
    """The sim's side of the brain: status out, decision in, fallback plan when it fails."""

    name = "remote"

    def __init__(self, cfg: SimConfig, ctx: zmq.Context) -> None:
        self.cfg = cfg
        self.interval = cfg.interval
        curve = Curve(cfg.keys, "sim") if cfg.keys else None
        self.push = make_socket(ctx, zmq.PUSH, cfg.brain, bind=False, hwm=100, curve=curve, server="brain")
        self.pull = make_socket(ctx, zmq.PULL, cfg.decisions, bind=True, hwm=100, curve=curve,
                                curve_server=curve is not None)
        self.digest = ""
        self.scenario_name = ""
        self.channel_error = ""
        self._camera_lanes: np.ndarray | None = None  # vision sensing: the lanes the cameras count on
        self._last_count: tuple[float, float] | None = None  # the last decision's (cameras' count, SUMO's)
        self.counted = {"window_s": [None, None], "cameras": 0.0, "sumo": 0.0}  # summed between decisions
        self.fallback = FixedPlan()
        self.step = 0
        self.controller = ""
        self.stats = {"steps": 0, "brain_missing_steps": 0, "fallback_decisions": 0, "decided": 0,
                      "status_dropped": 0, "rejected_decisions": 0, "hellos": 0,
                      "handshakes_failed": 0, "live_steps": 0}
        self.fallback_since: dict[int, float] = {}
        self.events: list[dict] = []  # (time, intersection, fallback on/off)
        self.latency_ms: list[float] = []
        self._on_fallback: np.ndarray | None = None
        self._brain_ok = True
        self._trace = open(cfg.trace, "w", buffering=1) if cfg.trace else None

    def reset(self, network: Network, timing: Timing) -> None:
        super().reset(network, timing)
        self.fallback.reset(network, timing)
        self._on_fallback = np.zeros(len(network.intersections), dtype=bool)
        self._n_phases = np.array([len(x.phases) for x in network.intersections], dtype=np.int64)
        if self.cfg.sensing == "vision" and self.cfg.cameras:
            from wire.cameras import Camera

            cams = [Camera.from_dict(c) for c in json.loads(Path(self.cfg.cameras).read_text())["cameras"]]
            lanes = {ln.lane for c in cams for ln in c.lanes}
            self._camera_lanes = np.array([i for i, ln in enumerate(network.lanes) if ln in lanes], dtype=np.int64)
        self.digest = digest(network, timing)
        if self.cfg.network and self.cfg.network != self.digest:
            self._fail(f"the network this sim drives (digest {self.digest[:12]}) is not the one its "
                               f"--network file describes ({self.cfg.network[:12]}): the file was exported from "
                               f"another scenario or under other rules")
        self._hello()

    def _count(self, t: float, cameras: float, sumo: float) -> None:
        """Add the crossings counted since the last decision, the cameras' and SUMO's; a count that
        went down (the brain restarted) starts a new baseline."""
        last, self._last_count = self._last_count, (cameras, sumo)
        if last is None or cameras < last[0]:
            return
        c = self.counted
        c["window_s"] = [c["window_s"][0] if c["window_s"][0] is not None else t, t]
        c["cameras"] += cameras - last[0]
        c["sumo"] += sumo - last[1]

    def _fail(self, why: str) -> None:
        self.channel_error = why
        raise ChannelError(why)

    def _hello(self) -> None:
        """Announce the network this sim drives and how often it asks for a decision (the brain
        refuses another network, or a cadence that is not its controller's)."""
        body = {"role": "sim", "network": self.digest, "scenario": self.scenario_name[:256],
                "signals": len(self.network.intersections), "interval": float(self.interval)}
        if send(self.push, encode("hello", self.cfg.sender, self.step, 0.0, body)):
            self.stats["hellos"] += 1

    def _receive(self, want: int, deadline: float) -> dict | None:
        """The decision for step ``want`` (free-running: the newest not older than two steps)."""
        best = None
        while True:
            while True:
                try:
                    raw = self.pull.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                try:
                    m = decode(raw)
                except ProtocolError as e:
                    self.stats["rejected_decisions"] += 1
                    log.warning("rejected decision: %s", e)
                    continue
                if m.type != "decision" or len(m.body["wish"]) != len(self.network.intersections):
                    self.stats["rejected_decisions"] += 1
                    continue
                step = m.body["step"]
                if step == want or (not self.cfg.lockstep and want - 2 <= step <= want):
                    best = m.body
            if best is not None and (best["step"] == want or not self.cfg.lockstep):
                return best
            left = deadline - time.time()
            if left <= 0:
                return best
            self.pull.poll(max(1, int(left * 1000)))

    def decide(self, readings: Readings, status: SignalStatus) -> np.ndarray:
        self.step += 1
        self.stats["steps"] += 1
        body = {"step": self.step, "phase": status.phase.astype(int).tolist(),
                "green": [float(x) for x in status.green_time],
                "in_transition": [bool(x) for x in status.in_transition]}
        if self.cfg.sensing == "truth":
            body["readings"] = {"vehicles": readings.vehicles.tolist(), "halting": readings.halting.tolist(),
                                "arrivals": readings.arrivals.tolist(), "departures": readings.departures.tolist()}
            if readings.approach is not None:  # the moving vehicles where they are
                body["readings"].update(approach_n=np.diff(readings.approach_ptr).tolist(),
                                        approach_m=readings.approach[:, 0].tolist(),
                                        approach_w=readings.approach[:, 1].tolist())
        if readings.emergency:  # the emergency vehicles' transponders, whatever senses the traffic
            body["emergency"] = [[int(a), int(b), float(d)] for a, b, d in readings.emergency]
        if not send(self.push, encode("status", self.cfg.sender, self.step, readings.time, body)):
            self.stats["status_dropped"] += 1
        plan = self.fallback.decide(readings, status)
        timeout = self.cfg.timeout_s if self._brain_ok else min(self.cfg.timeout_s, 0.5)
        d = self._receive(self.step, time.time() + (timeout if self.cfg.lockstep else 0.0))
        n = len(plan)
        for fatal, why in handshake_failures(self.push):  # the brain's intake: this side is the client
            if fatal:
                self._fail(f"intake channel {why}")
            log.warning("intake channel %s", why)
        for _, why in handshake_failures(self.pull):  # bound here: a brain without keys says so itself
            self.stats["handshakes_failed"] += 1
            log.error("decisions channel %s", why)
        if d is None:
            self._hello()  # a brain that started (or restarted) after the last hello learns the network
            if self._brain_ok:
                log.warning("no decision from the brain at t=%g: all signals on the fixed-time plan", readings.time)
            self._brain_ok = False
            self.stats["brain_missing_steps"] += 1
            fb = np.ones(n, dtype=bool)
            wish = plan
        else:
            if not self._brain_ok:
                log.warning("brain decisions again at t=%g", readings.time)
            self._brain_ok = True
            self.controller = d["controller"]
            fb = np.array(d["fallback"], dtype=bool)
            wish = np.array(d["wish"], dtype=np.int64)
            bad = wish >= self._n_phases  # a phase the signal does not have: that signal runs the plan
            if bad.any():
                self.stats["rejected_decisions"] += 1
                log.warning("decision at t=%g wishes phases the signals lack (%s): those signals on the plan",
                            readings.time, ", ".join(f"{self.network.intersections[i].id}: {wish[i]}"
                                                     for i in np.flatnonzero(bad)[:5]))
                fb = fb | bad
            wish = np.where(fb, plan, wish)
            self.stats["decided"] += 1
            if "count_wall" in d:
                self.latency_ms.append(1000.0 * (time.time() - d["count_wall"]))
            if "counted" in d and self._camera_lanes is not None:  # the cameras' count beside SUMO's own
                self._count(readings.time, d["counted"], float(readings.departures[self._camera_lanes].sum()))
        self.stats["fallback_decisions"] += int(fb.sum())
        self.stats["live_steps"] += int(d is not None and not fb.any())  # the brain decided every signal
        for i in np.flatnonzero(fb != self._on_fallback):
            self.events.append({"time": readings.time, "tls": self.network.intersections[i].id,
                                "fallback": bool(fb[i])})
        self._on_fallback = fb
        if self._trace is not None:
            self._trace.write(json.dumps({"step": self.step, "time": readings.time, "wall": time.time(),
                                          "brain": d is not None, "fallback": int(fb.sum())}) + "\n")
        return wish

    def close(self) -> None:
        send(self.push, encode("bye", self.cfg.sender, self.step + 1, 0.0, {"role": "sim"}))
        close(self.push)
        close(self.pull)
        if self._trace is not None:
            self._trace.close()


class _Frames:
    """The camera feed, published every simulation step."""

    def __init__(self, cfg: SimConfig, ctx: zmq.Context) -> None:
        from wire.cameras import Camera

        self.cfg = cfg
        self.cams = [Camera.from_dict(c) for c in json.loads(Path(cfg.cameras).read_text())["cameras"]]
        curve = Curve(cfg.keys, "sim") if cfg.keys else None
        self.pub = make_socket(ctx, zmq.PUB, cfg.frames, bind=True, hwm=1000, curve=curve,
                               curve_server=curve is not None)
        self.feed = None
        self.index = 0
        self.dropped = 0

    def __call__(self, backend) -> None:
        from sim.feed import CameraFeed

        if self.feed is None:
            self.feed = CameraFeed(backend.ts, self.cams, seed=self.cfg.seed)
        shot = self.feed.shoot(self.feed.observe(), backend.time)
        for cam, img in zip(self.cams, shot.frames):
            ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, self.cfg.jpeg_quality])
            raw = encode("frame", self.cfg.sender, self.index, backend.time,
                         {"camera": cam.id, "jpeg": jpg.tobytes(), "index": self.index})
            if not send(self.pub, raw, cam.id.encode()):
                self.dropped += 1
        self.index += 1

    def close(self) -> None:
        for _, why in handshake_failures(self.pub):
            log.error("frames: %s", why)
        close(self.pub)


class _Pacer:
    """Holds the simulation to ``speed`` simulated seconds per wall second (live, free-running use)."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.t0: tuple[float, float] | None = None

    def __call__(self, backend) -> None:
        now = time.perf_counter()
        if self.t0 is None:
            self.t0 = (now, backend.time)
            return
        ahead = (backend.time - self.t0[1]) / self.speed - (now - self.t0[0])
        if ahead > 0:
            time.sleep(ahead)


def run_sim(cfg: SimConfig) -> dict:
    """Run the scenario under the remote brain; returns (and writes to ``cfg.json``) the record."""
    from sim.loop import Stop, run_scenario
    from sim.scenario import load_scenario

    if cfg.sensing not in ("truth", "vision"):
        raise ValueError(f"sensing must be truth or vision, got {cfg.sensing!r}")
    if cfg.sensing == "vision" and not cfg.cameras:
        raise ValueError("vision sensing needs --cameras (a camera config)")
    timing = timing_of(cfg, cfg.interval)
    ctx = zmq.Context.instance()
    remote = RemoteBrain(cfg, ctx)
    frames = _Frames(cfg, ctx) if cfg.sensing == "vision" else None
    stopping = {"signal": ""}

    def on_term(signum, _frame) -> None:
        stopping["signal"] = signal.Signals(signum).name

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    time.sleep(0.3)  # let subscribers and the brain connect before the first frames
    hooks = [h for h in (frames, _Pacer(cfg.realtime) if cfg.realtime > 0 else None) if h is not None]

    def on_step(backend) -> None:
        if stopping["signal"]:  # run_scenario records the error and keeps the trips measured so far
            raise Stop(f"stopped by {stopping['signal']}")
        for h in hooks:
            h(backend)

    step = cfg.step_length if cfg.step_length is not None else (1.0 / cfg.fps if cfg.sensing == "vision" else None)
    sc = (load_scenario(net=cfg.net, routes=cfg.routes, additional=cfg.additional) if cfg.net
          else load_scenario(cfg.scenario))
    t0 = time.perf_counter()

    def progress(done: float, total: float) -> None:
        rate = done / max(time.perf_counter() - t0, 1e-9)
        print(f"{sc.name} x {remote.controller or 'brain'}: {done:.0f}/{total:.0f} s simulated ({rate:.0f}x real time)",
              file=sys.stderr, flush=True)

    remote.scenario_name = sc.name
    try:
        rec = run_scenario(sc, remote, seed=cfg.seed, timing=timing, end=cfg.end, step_length=step,
                           on_step=on_step, progress=progress if cfg.progress else None)
        d = rec.to_dict()
    finally:
        remote.close()
        if frames is not None:
            frames.close()
        stop_auth()
    lat = np.array(remote.latency_ms) if remote.latency_ms else np.zeros(0)
    if d.get("provenance"):
        d["provenance"]["controller"] = f"{remote.controller or 'none'} (brain, over the service)"
    if remote.channel_error:
        d["channel_error"] = remote.channel_error
    c = remote.counted
    if c["window_s"][0] is not None:
        d["vehicles_counted"] = dict(c, ratio=c["cameras"] / c["sumo"] if c["sumo"] > 0 else None)
    if remote.stats["steps"] and not remote.stats["decided"]:
        d.setdefault("warnings", []).append(
            f"the brain decided none of the {remote.stats['steps']} decision steps: every signal ran the "
            f"scenario's fixed-time plan (is a brain serving {cfg.brain}?)")
    d.update({"sensing": cfg.sensing, "brain_controller": remote.controller, "service": remote.stats,
              "fallback_events": remote.events[:1000], "frames_dropped": frames.dropped if frames else 0,
              "count_to_decision_ms_p50": float(np.percentile(lat, 50)) if lat.size else None,  # JSON has no NaN
              "count_to_decision_ms_p99": float(np.percentile(lat, 99)) if lat.size else None})
    if cfg.json:
        Path(cfg.json).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.json).write_text(json.dumps(d, indent=1, default=str) + "\n")
    return d
