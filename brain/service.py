"""``citybrain serve``: the brain as a service. Counts and status in, decisions out, over ZeroMQ.

The brain binds one PULL socket (the *intake*) that workers (counts, heartbeats) and the sim
(signal status, and with truth sensing its detector readings) push into, and pushes decisions
to the sim's PULL socket. For each status it decides every intersection's wished phase with its
controller and flags the intersections that must run the fallback plan (a camera of theirs is
stale). In lockstep it first waits, up to ``wait_s`` of wall time, for every camera whose worker
is alive to report up to the status's time (its last counting interval ending at or before it:
workers count every ``interval`` seconds of the camera config); a camera that misses the
deadline is stale for this decision.

Everything received is decoded strictly (:mod:`wire.protocol`); rejected messages are
counted by reason and logged (at most once a second), never raised. SIGTERM and SIGINT stop the
loop after the current message; sockets close with ``linger=0``.
"""

from __future__ import annotations

import logging
import math
import signal
import time
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import zmq

from brain.model import Readings, SignalStatus
from brain.netfile import NetworkFile
from brain.sensing import CameraSensing
from wire.errors import ChannelError
from wire.protocol import PORTS, ProtocolError, decode, encode
from wire.transport import Curve, close, handshake_failures, make_socket, send, stop_auth

__all__ = ["ServeConfig", "Brain", "Metrics", "remote_controller"]

log = logging.getLogger("citybrain.brain")


@dataclass(frozen=True)
class ServeConfig:
    """What ``citybrain serve`` runs (TOML keys of the same names; unknown keys raise).

    Attributes:
        network: the network description (``citybrain export-network``): the controlled
            intersections and the timing rules, which are the sim's (it announces their digest).
        controller: controller name; mpc: its options (``KEY = VALUE`` strings or numbers).
        cameras: a camera config JSON (vision sensing); empty: the sim's detector readings.
        intake: endpoint the brain binds for counts and status; decisions: the sim's endpoint.
        lockstep: wait for the cameras of live workers before deciding; wait_s: the longest wait
            (wall seconds); a camera without counts for the status's time is stale for that decision.
        stale_after: free-running: seconds of simulation time after which a silent camera is stale.
        dead_after_s: a worker not heard from (counts or heartbeat) for this long (wall) is not waited for.
        metrics_port: Prometheus endpoint (0: none). keys: CURVE keys folder (empty: off).
        sender: this brain's name in message headers.
        step: decision interval (s) of controllers without a cadence of their own.
    """

    network: str = ""
    controller: str = "mpc"
    mpc: dict = field(default_factory=dict)
    cameras: str = ""
    intake: str = f"tcp://*:{PORTS['intake']}"
    decisions: str = f"tcp://127.0.0.1:{PORTS['decisions']}"
    lockstep: bool = True
    wait_s: float = 2.0
    stale_after: float = 5.0
    dead_after_s: float = 3.0
    metrics_port: int = 0
    keys: str = ""
    sender: str = "brain"
    step: float = 10.0
    """Decision interval of controllers without a cadence of their own (mpc decides every 3 s)."""

    @classmethod
    def load(cls, path: str | Path | None, **overrides) -> ServeConfig:
        values: dict = {}
        if path:
            try:
                values = tomllib.loads(Path(path).read_text())
            except FileNotFoundError:
                raise ValueError(f"service config not found: {path}") from None
            except tomllib.TOMLDecodeError as e:
                raise ValueError(f"{path}: not valid TOML ({e})") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown service config key(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**values)


class Metrics:
    """Prometheus metrics of the brain (a private registry; served when a port is given)."""

    def __init__(self, port: int = 0) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter("citybrain_messages_total", "Messages received, by type", ["type"], registry=r)
        self.rejected = Counter("citybrain_messages_rejected_total", "Messages rejected, by reason", ["reason"],
                                registry=r)
        self.stale = Gauge("citybrain_stale_cameras", "Cameras stale at the last decision", registry=r)
        self.fallbacks = Gauge("citybrain_fallback_intersections", "Intersections on the fallback plan", registry=r)
        self.fallback_total = Counter("citybrain_fallback_decisions_total", "Intersection decisions on fallback",
                                      registry=r)
        self.latency = Histogram("citybrain_decision_latency_seconds", "Status received to decision sent",
                                 buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5), registry=r)
        self.dropped = Counter("citybrain_decisions_dropped_total", "Decisions dropped on a full queue", registry=r)
        self.server = None
        if port:
            self.server = start_http_server(port, registry=r)


def remote_controller(name: str, options: dict | None = None):
    """The controller ``name`` as the service runs it (raises ``ValueError`` for one that SUMO runs
    itself: over the service it would only echo the signals' phases)."""
    from brain.controllers import NativeController, make

    try:
        ctrl = make(name, options or None)
    except KeyError as e:  # an unknown name: one line, exit 2
        raise ValueError(e.args[0]) from None
    if isinstance(ctrl, NativeController):
        raise ValueError(f"controller {name!r} is SUMO's own program and cannot drive signals over the service; "
                         "use 'plan' (the scenario's fixed-time plan through the actuator) or another controller")
    return ctrl


class Brain:
    """The brain process. ``run()`` serves until :meth:`stop` (or SIGTERM).

    ``network``: the description it drives (:func:`brain.netfile.load_network`); its rules are
    the brain's timing, with ``cfg.step`` as the decision interval.
    """

    def __init__(self, cfg: ServeConfig, network: NetworkFile, *, ctx: zmq.Context | None = None) -> None:
        self.cfg = cfg
        self.timing = replace(network.timing, step=cfg.step)
        self.digest = network.digest
        self.net = network.network
        self.n = len(self.net.intersections)
        self._n_phases = [len(x.phases) for x in self.net.intersections]
        self.sensing: CameraSensing | None = None
        self.expected: list[str] = []
        self.count_interval = 2.0  # the workers' counting interval (the camera config's)
        if cfg.cameras:
            self._load_cameras(Path(cfg.cameras))
        self.controller = remote_controller(cfg.controller, cfg.mpc)
        self.controller.reset(self.net, self.timing)
        self.metrics = Metrics(cfg.metrics_port)
        self.ctx = ctx or zmq.Context.instance()
        curve = Curve(cfg.keys, "brain") if cfg.keys else None
        self.intake = make_socket(self.ctx, zmq.PULL, cfg.intake, bind=True, curve=curve, curve_server=curve is not None)
        self.out = make_socket(self.ctx, zmq.PUSH, cfg.decisions, bind=False, hwm=100, curve=curve, server="sim")
        self.sim: str | None = None  # the sim whose hello announced this network
        self.refused: str = ""  # why the brain stopped: the sim drives another network, a channel failed
        self._last_handshake_check = 0.0
        self._stop = False
        self._seq = 0
        self._pending = None
        self._pending_since = 0.0
        self._stale: set[str] = set()
        self._heard: dict[str, float] = {}  # camera -> wall time its worker was last heard from
        self._newest_count_wall = 0.0
        self._last_reject_log = 0.0
        self._status_time: float | None = None
        self.decisions = 0
        self.rejected: dict[str, int] = {}

    def _load_cameras(self, path: Path) -> None:
        import json

        from wire.cameras import Camera

        try:
            raw = json.loads(path.read_text())
            cams = [Camera.from_dict(c) for c in raw["cameras"]]
            self.count_interval = float(raw.get("interval", 2.0))
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise ValueError(f"camera config {path}: {e}") from None
        if self.count_interval <= 0:
            raise ValueError(f"camera config {path}: interval must be above 0, got {self.count_interval:g}")
        index = {x.id: i for i, x in enumerate(self.net.intersections)}
        cap = {ln.lane: max(ln.zone_m / 4.0, 4.0) for c in cams for ln in c.lanes}
        self.sensing = CameraSensing(self.net.lanes, {c.id: (c.tls, [ln.lane for ln in c.lanes]) for c in cams}, index,
                                     stale_after=self.cfg.stale_after, zone_capacity=cap)
        self.expected = [c.id for c in cams]
        # the controllers' model: a camera lane is sensed over the camera's zone, not the detectors' 200 m
        length = self.net.lane_length.copy()
        for c in cams:
            for ln in c.lanes:
                length[self.net.lanes.index(ln.lane)] = ln.zone_m
        self.net = replace(self.net, lane_length=length)

    # -- the loop ---------------------------------------------------------------------------
    def stop(self, *_: object) -> None:
        self._stop = True

    def run(self, *, install_signals: bool = True, until: float | None = None) -> None:
        if install_signals:
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
        poller = zmq.Poller()
        poller.register(self.intake, zmq.POLLIN)
        log.info("brain serving", extra={"intake": self.cfg.intake, "cameras": len(self.expected),
                                          "controller": self.cfg.controller})
        try:
            while not self._stop and (until is None or time.time() < until):
                if poller.poll(50):
                    for _ in range(10_000):  # drain what is there
                        try:
                            raw = self.intake.recv(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self.handle(raw)
                self._maybe_decide()
                self._check_channels()
        finally:
            self.close()
        if self.refused:
            raise ChannelError(self.refused)

    def _check_channels(self) -> None:
        """Failed handshakes: on the decisions channel (the brain connects) the brain cannot work and
        stops; on the intake (others connect) each is logged, and the brain serves the others."""
        now = time.time()
        if now - self._last_handshake_check < 0.2:
            return
        self._last_handshake_check = now
        for _, why in handshake_failures(self.intake):
            log.error("intake: %s", why)
            self.rejected["handshake"] = self.rejected.get("handshake", 0) + 1
            self.metrics.rejected.labels("handshake").inc()
        for fatal, why in handshake_failures(self.out):
            if not fatal:
                log.warning("decisions channel %s", why)
                continue
            self.refused = f"decisions channel {why}"
            self._stop = True

    def close(self) -> None:
        for s in (self.intake, self.out):
            close(s)
        stop_auth()
        if self.metrics.server is not None:
            self.metrics.server[0].shutdown()
            self.metrics.server = None

    def _reject(self, reason: str, detail: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        self.metrics.rejected.labels(reason).inc()
        now = time.time()
        if now - self._last_reject_log > 1.0:
            self._last_reject_log = now
            log.warning("rejected message: %s", detail, extra={"reason": reason, "rejected": dict(self.rejected)})

    def handle(self, raw: bytes) -> None:
        """Take one received message (never raises)."""
        try:
            m = decode(raw)
        except ProtocolError as e:
            self._reject(e.reason, str(e))
            return
        if self._take(m):
            self.metrics.messages.labels(m.type).inc()

    def _take(self, m) -> bool:
        """Act on one decoded message; False when it is rejected (counted as rejected, not received)."""
        if m.type == "hello":
            return self._hello(m)
        if m.type == "counts":
            if self.sensing is None:
                self._reject("range", f"counts from {m.sender} but this brain uses detector readings")
                return False
            b = m.body
            try:
                ok = self.sensing.update(b["camera"], m.sim_time, b["lanes"], present=b["present"], queue=b["queue"],
                                         crossed=b["crossed"], frames=b["frames"],
                                         approach=_split(b.get("approach_n"), b.get("approach_m")))
            except KeyError as e:
                self._reject("range", str(e))
                return False
            if not ok:
                self._reject("range", f"implausible counts from {b['camera']}: {self.sensing.cams[b['camera']].bad}")
                return False
            self._newest_count_wall = max(self._newest_count_wall, m.wall_time)
            self._heard[b["camera"]] = time.time()
        elif m.type == "heartbeat":
            now = time.time()
            for c in m.body["cameras"]:
                self._heard[c] = now
        elif m.type == "status":
            if self.sim is None:
                self._reject("hello", f"status from {m.sender} before its hello (the network it drives): not decided")
                return False
            if len(m.body["phase"]) != self.n:
                self._reject("range", f"status for {len(m.body['phase'])} signals, the network has {self.n}")
                return False
            wrong = [i for i, (p, k) in enumerate(zip(m.body["phase"], self._n_phases)) if p >= k]
            if wrong:
                i = wrong[0]
                self._reject("range", f"status shows phase {m.body['phase'][i]} at {self.net.intersections[i].id}, "
                                      f"which has {self._n_phases[i]} phases")
                return False
            r = m.body.get("readings")
            if self.sensing is None and r is None:
                self._reject("range", "status without readings but this brain has no cameras")
                return False
            if r is not None and self.sensing is None and len(r["vehicles"]) != self.net.n_lanes:
                self._reject("range", f"readings for {len(r['vehicles'])} lanes, network has {self.net.n_lanes}")
                return False
            if any(max(a, c) >= self.net.n_lanes for a, c, _ in m.body.get("emergency", ())):
                self._reject("range", f"emergency movement on a lane beyond the network's {self.net.n_lanes}")
                return False
            if self._status_time is not None and m.sim_time < self._status_time - 1e-6:
                self._new_run(m.sim_time)
                self._pending = None
            self._status_time = m.sim_time
            if self._pending is not None:
                log.warning("status step %d superseded by step %d before a decision", self._pending.body["step"],
                            m.body["step"])
            self._pending, self._pending_since = m, time.time()
        elif m.type == "bye":
            log.info("%s %s said bye", m.body["role"], m.sender)
        return True

    def _hello(self, m) -> bool:
        """The sim announces the network it drives: the same as this brain's file, or refused."""
        b = m.body
        if b["network"] != self.digest:
            self.refused = (f"the sim {m.sender!r} drives another network than this brain's "
                            f"(scenario {b['scenario'] or '?'}, {b['signals']} signals, digest {b['network'][:12]}; "
                            f"this brain's {self.cfg.network or 'network'}: {self.n} signals, digest {self.digest[:12]}): "
                            f"export the sim's scenario under the sim's rules with `citybrain export-network` "
                            f"and serve that file")
            log.error("%s", self.refused)
            self._stop = True
            self._reject("network", self.refused)
            return False
        cadence = self.controller.interval or self.timing.step
        if abs(b["interval"] - cadence) > 1e-6:
            self.refused = (f"the sim {m.sender!r} asks for a decision every {b['interval']:g} s, but this brain's "
                            f"{self.cfg.controller} decides every {cadence:g} s: start the sim with --interval "
                            f"{cadence:g}" + ("" if self.controller.interval else " (or the brain with --step)"))
            log.error("%s", self.refused)
            self._stop = True
            self._reject("interval", self.refused)
            return False
        if self.sim != m.sender:
            log.info("sim %s drives this network (digest %s)", m.sender, self.digest[:12])
        self.sim = m.sender
        return True

    def _new_run(self, t: float) -> None:
        """A status from before the last one: the sim started a new run. The controller and the
        camera state start afresh (their clocks would otherwise refuse every reading)."""
        log.warning("status for t=%g after one for t=%g: a new run; controller and cameras start afresh",
                    t, self._status_time)
        if self.cfg.cameras:
            self._load_cameras(Path(self.cfg.cameras))
        self.controller.reset(self.net, self.timing)
        self._stale = set()

    def alive(self) -> list[str]:
        """Cameras whose worker was heard from within ``dead_after_s`` (wall)."""
        now = time.time()
        return [c for c in self.expected if now - self._heard.get(c, -1e18) <= self.cfg.dead_after_s]

    def _ready(self, t: float) -> bool:
        if self.sensing is None or not self.cfg.lockstep:
            return True
        cams = self.sensing.cams
        due = self._due(t)
        return all(cams[c].time >= due for c in self.alive())

    def _due(self, t: float) -> float:
        """The newest count time a camera on time has reported at a decision at ``t``: workers
        count every ``interval`` seconds (on its multiples), so a decision every 3 s with counts
        every 2 s takes the count of the last even second."""
        iv = self.count_interval
        return math.floor(t / iv + 1e-9) * iv - 1e-6

    def _maybe_decide(self) -> None:
        m = self._pending
        if m is None:
            return
        t = m.sim_time
        if not self._ready(t) and time.time() - self._pending_since < self.cfg.wait_s:
            return
        self._pending = None
        b = m.body
        status = SignalStatus(np.array(b["phase"], dtype=np.int64), np.array(b["green"]),
                              np.array(b["in_transition"], dtype=bool))
        fallback = np.zeros(self.n, dtype=bool)
        if self.sensing is not None:
            # lockstep: a camera without this step's counts is stale now; free-running: by age
            due = self._due(t)
            late = [c for c in self.expected if self.sensing.cams[c].time < due] if self.cfg.lockstep else []
            stale = set(self.sensing.stale(t)) | set(late)
            for c in stale:
                fallback[self.sensing.tls_index[self.sensing.cams[c].tls]] = True
            if stale != self._stale:
                log.warning("stale cameras: %s", sorted(stale) or "none", extra={"sim_time": t, "stale": sorted(stale)})
            self._stale = stale
            self.metrics.stale.set(len(stale))
            readings = self.sensing.readings(t)
        else:
            r = b["readings"]  # checked when the status came (_take)
            located = {}
            if "approach_n" in r:
                ptr = np.zeros(len(r["approach_n"]) + 1, dtype=np.int64)
                np.cumsum(r["approach_n"], out=ptr[1:])
                located = {"approach": np.column_stack([np.array(r["approach_m"], dtype=np.float64),
                                                        np.array(r["approach_w"], dtype=np.float64)]).reshape(-1, 2),
                           "approach_ptr": ptr}
            readings = Readings(t, *(np.array(r[k]) for k in ("vehicles", "halting", "arrivals", "departures")),
                                **located)
        emergency = tuple(b.get("emergency", ()))
        if emergency:
            readings = replace(readings, emergency=emergency)
        try:
            wish = np.asarray(self.controller.decide(readings, status), dtype=np.int64)
        except Exception:  # a controller failure must not take the service down: everyone on fallback
            log.exception("controller %s failed at t=%g; all intersections on fallback", self.cfg.controller, t)
            wish, fallback = status.phase.copy(), np.ones(self.n, dtype=bool)
        self._seq += 1
        body = {"step": b["step"], "wish": wish.tolist(), "fallback": fallback.tolist(), "controller": self.controller.name}
        if self._newest_count_wall:
            body["count_wall"] = self._newest_count_wall
        if self.sensing is not None:
            body["counted"] = float(readings.departures.sum())
        if not send(self.out, encode("decision", self.cfg.sender, self._seq, t, body)):
            self.metrics.dropped.inc()
        self.decisions += 1
        self.metrics.fallbacks.set(int(fallback.sum()))
        self.metrics.fallback_total.inc(int(fallback.sum()))
        self.metrics.latency.observe(time.time() - self._pending_since)


def _split(per_lane: list[int] | None, flat: list[float] | None) -> list[list[float]] | None:
    """Per-lane lists from a message's ``approach_n`` counts and flat ``approach_m``."""
    if per_lane is None or flat is None:
        return None
    out, k = [], 0
    for n in per_lane:
        out.append(flat[k:k + n])
        k += n
    return out
