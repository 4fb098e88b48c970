"""The messages every citybrain process speaks, versioned, with strict decoding.

A message is a msgpack map ``{"h": header, "b": body}``. The header carries the schema
version, the message type, the sender, its sequence number, the simulation time and the wall
time. Bodies are checked field by field against their type's schema; anything else (not
msgpack, too large, another schema version, an unknown type, a missing or extra field, a
value out of range) raises :class:`ProtocolError` with a ``reason`` the receiver counts.

Example:
    >>> raw = encode("heartbeat", "worker-1", 7, 12.0, {"role": "worker", "cameras": ["A0/n"]})
    >>> msg = decode(raw)
    >>> msg.type, msg.seq, msg.body["cameras"]
    ('heartbeat', 7, ['A0/n'])
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import msgpack

from wire.errors import InputError

__all__ = ["VERSION", "MAX_BYTES", "MAX_FRAME_BYTES", "Message", "ProtocolError", "encode", "decode", "TYPES",
           "HWM", "PORTS"]

VERSION = 1
MAX_BYTES = 256 * 1024
"""Largest message other than a frame (bytes)."""
MAX_FRAME_BYTES = 4 * 1024 * 1024
"""Largest frame message (an encoded image and its header)."""
MAX_LANES = 64
MAX_SIGNALS = 100_000
MAX_COUNT = 10_000.0
"""No lane holds more vehicles than this in one interval; larger counts are implausible."""


HWM = 10_000
"""High-water mark of every socket (messages). When a sender's queue is full it drops the new
message and counts it (``NOBLOCK`` sends), never blocks a control loop."""
PORTS = {"frames": 5555, "intake": 5556, "decisions": 5557, "metrics": 9108}
"""Default TCP ports: sim publishes frames, brain pulls counts/status, sim pulls decisions."""


class ProtocolError(InputError):
    """A message that must be rejected. ``reason``: malformed, oversized, version, type or range."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class Message:
    """A decoded message: header fields and the checked body."""

    version: int
    type: str
    sender: str
    seq: int
    sim_time: float
    wall_time: float
    body: dict


# -- field checks ---------------------------------------------------------------------------
def _str(v: Any, name: str, max_len: int = 128) -> str:
    if not isinstance(v, str) or not v or len(v) > max_len:
        raise ProtocolError("range", f"{name} must be a string of 1-{max_len} characters")
    return v


def _num(v: Any, name: str, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise ProtocolError("range", f"{name} must be a number in [{lo:g}, {hi:g}]")
    return float(v)


def _int(v: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ProtocolError("range", f"{name} must be an integer in [{lo}, {hi}]")
    return int(v)


def _list(v: Any, name: str, max_len: int, n: int | None = None) -> list:
    if not isinstance(v, list) or len(v) > max_len or (n is not None and len(v) != n):
        want = f"{n} items" if n is not None else f"at most {max_len} items"
        raise ProtocolError("range", f"{name} must be a list of {want}")
    return v


def _nums(v: Any, name: str, n: int, lo: float, hi: float) -> list[float]:
    return [_num(x, f"{name}[{k}]", lo, hi) for k, x in enumerate(_list(v, name, n, n))]


def _approach(b: dict, name: str, n: int, weighted: bool) -> dict:
    """The optional located moving vehicles: ``approach_n`` per lane, then their ``approach_m``
    (metres to the stop line) lane after lane, and with ``weighted`` their ``approach_w``."""
    if b.get("approach_n") is None:
        return {}
    per = [_int(x, f"{name}approach_n[]", 0, int(MAX_COUNT)) for x in _list(b["approach_n"], f"{name}approach_n", n, n)]
    total = sum(per)
    out = {"approach_n": per,
           "approach_m": _nums(b.get("approach_m"), f"{name}approach_m", total, 0.0, 1e5)}
    if weighted:
        out["approach_w"] = _nums(b.get("approach_w"), f"{name}approach_w", total, 0.0, 1.0)
    return out


def _counts(b: dict) -> dict:
    lanes = [_str(x, "lanes[]", 256) for x in _list(b["lanes"], "lanes", MAX_LANES)]
    n = len(lanes)
    if n == 0:
        raise ProtocolError("range", "lanes must not be empty")
    out = {"camera": _str(b["camera"], "camera"), "tls": _str(b["tls"], "tls"), "lanes": lanes,
           "present": _nums(b["present"], "present", n, 0, MAX_COUNT),
           "queue": _nums(b["queue"], "queue", n, 0, MAX_COUNT),
           "crossed": _nums(b["crossed"], "crossed", n, 0, MAX_COUNT),
           "interval": _num(b["interval"], "interval", 0.0, 3600.0),
           "frames": _int(b["frames"], "frames", 0, 1_000_000)}
    if any(q > p + 1e-6 for q, p in zip(out["queue"], out["present"])):
        raise ProtocolError("range", "queue exceeds vehicles present")
    cls = _list(b["classes"], "classes", n, n)
    out["classes"] = [_nums(row, "classes[]", 4, 0, MAX_COUNT) for row in cls]
    out.update(_approach(b, "", n, weighted=False))
    return out


def _frame(b: dict) -> dict:
    data = b["jpeg"]
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise ProtocolError("range", "jpeg must be non-empty bytes")
    return {"camera": _str(b["camera"], "camera"), "jpeg": bytes(data), "index": _int(b["index"], "index", 0, 2**53)}


def _status(b: dict) -> dict:
    phase = _list(b["phase"], "phase", MAX_SIGNALS)
    n = len(phase)
    out = {"step": _int(b["step"], "step", 0, 2**53), "phase": [_int(x, "phase[]", 0, 1000) for x in phase],
           "green": _nums(b["green"], "green", n, 0, 1e6),
           "in_transition": [bool(x) for x in _list(b["in_transition"], "in_transition", n, n)]}
    r = b.get("readings")
    if r is not None:
        if not isinstance(r, dict):
            raise ProtocolError("range", "readings must be a map")
        m = len(_list(r.get("vehicles"), "readings.vehicles", 10 * MAX_SIGNALS))
        out["readings"] = {k: _nums(r.get(k), f"readings.{k}", m, 0, 1e12)
                           for k in ("vehicles", "halting", "arrivals", "departures")}
        out["readings"].update(_approach(r, "readings.", m, weighted=True))
    e = b.get("emergency")
    if e is not None:  # emergency vehicles' upcoming movements: [in lane, out lane, metres to the stop line]
        out["emergency"] = [(_int(x[0], "emergency[].in", 0, 10 * MAX_SIGNALS), _int(x[1], "emergency[].out", 0, 10 * MAX_SIGNALS),
                             _num(x[2], "emergency[].distance", 0, 1e5))
                            for x in (_list(row, "emergency[]", 3, 3) for row in _list(e, "emergency", 1000))]
    return out


def _decision(b: dict) -> dict:
    wish = _list(b["wish"], "wish", MAX_SIGNALS)
    out = {"step": _int(b["step"], "step", 0, 2**53), "wish": [_int(x, "wish[]", 0, 1000) for x in wish],
           "fallback": [bool(x) for x in _list(b["fallback"], "fallback", len(wish), len(wish))],
           "controller": _str(b["controller"], "controller")}
    if b.get("count_wall") is not None:  # wall time the newest count behind this decision was sent
        out["count_wall"] = _num(b["count_wall"], "count_wall", 0, 1e11)
    if b.get("counted") is not None:  # vehicles the cameras counted across their stop lines so far
        out["counted"] = _num(b["counted"], "counted", 0, 1e12)
    return out


def _heartbeat(b: dict) -> dict:
    return {"role": _str(b["role"], "role", 32),
            "cameras": [_str(x, "cameras[]") for x in _list(b["cameras"], "cameras", 10_000)]}


def _hello(b: dict) -> dict:
    digest = _str(b["network"], "network", 64)
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ProtocolError("range", "network must be a SHA-256 digest (64 hex digits)")
    scenario = b["scenario"]
    if not isinstance(scenario, str) or len(scenario) > 256:
        raise ProtocolError("range", "scenario must be a string of at most 256 characters")
    return {"role": _str(b["role"], "role", 32), "network": digest, "scenario": scenario,
            "signals": _int(b["signals"], "signals", 0, MAX_SIGNALS),
            "interval": _num(b["interval"], "interval", 0.01, 3600.0)}


def _bye(b: dict) -> dict:
    return {"role": _str(b["role"], "role", 32)}


_SCHEMAS = {
    "counts": ({"camera", "tls", "lanes", "present", "queue", "crossed", "classes", "interval", "frames"}, _counts),
    "frame": ({"camera", "jpeg", "index"}, _frame),
    "status": ({"step", "phase", "green", "in_transition"}, _status),
    "decision": ({"step", "wish", "fallback", "controller"}, _decision),
    "heartbeat": ({"role", "cameras"}, _heartbeat),
    "bye": ({"role"}, _bye),
    "hello": ({"role", "network", "scenario", "signals", "interval"}, _hello),
}
_OPTIONAL = {"status": {"readings", "emergency"}, "decision": {"count_wall", "counted"},
             "counts": {"approach_n", "approach_m"}}
TYPES = tuple(_SCHEMAS)


def encode(type_: str, sender: str, seq: int, sim_time: float, body: dict, wall_time: float | None = None) -> bytes:
    """One message as bytes (the body is checked as the receiver would)."""
    if type_ not in _SCHEMAS:
        raise ProtocolError("type", f"unknown message type {type_!r}")
    raw = msgpack.packb({"h": [VERSION, type_, sender, seq, float(sim_time),
                               time.time() if wall_time is None else float(wall_time)], "b": body},
                        use_bin_type=True)
    limit = MAX_FRAME_BYTES if type_ == "frame" else MAX_BYTES
    if len(raw) > limit:
        raise ProtocolError("oversized", f"{type_} message of {len(raw)} bytes exceeds {limit}")
    return raw


def decode(raw: bytes) -> Message:
    """Check and decode one message; raises :class:`ProtocolError`."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise ProtocolError("malformed", "not bytes")
    if len(raw) > MAX_FRAME_BYTES:
        raise ProtocolError("oversized", f"{len(raw)} bytes exceeds {MAX_FRAME_BYTES}")
    try:
        m = msgpack.unpackb(bytes(raw), raw=False, strict_map_key=True, max_bin_len=MAX_FRAME_BYTES,
                            max_str_len=MAX_BYTES, max_array_len=10 * MAX_SIGNALS, max_map_len=64)
    except Exception as e:  # msgpack raises several types for garbage
        raise ProtocolError("malformed", f"not a msgpack message ({type(e).__name__})") from None
    if not isinstance(m, dict) or set(m) != {"h", "b"} or not isinstance(m["h"], list) or len(m["h"]) != 6 \
            or not isinstance(m["b"], dict):
        raise ProtocolError("malformed", "expected {'h': [6 header fields], 'b': {...}}")
    version, type_, sender, seq, sim_time, wall_time = m["h"]
    if version != VERSION:
        raise ProtocolError("version", f"schema version {version!r}, this side speaks {VERSION}")
    if type_ not in _SCHEMAS:
        raise ProtocolError("type", f"unknown message type {type_!r}")
    if type_ != "frame" and len(raw) > MAX_BYTES:
        raise ProtocolError("oversized", f"{type_} message of {len(raw)} bytes exceeds {MAX_BYTES}")
    sender = _str(sender, "sender")
    seq = _int(seq, "seq", 0, 2**63 - 1)
    sim_time = _num(sim_time, "sim_time", -1e9, 1e9)
    wall_time = _num(wall_time, "wall_time", 0, 1e11)
    need, check = _SCHEMAS[type_]
    body = m["b"]
    extra = set(body) - need - _OPTIONAL.get(type_, set())
    missing = need - set(body)
    if missing or extra:
        raise ProtocolError("malformed", f"{type_} body: missing {sorted(missing)}, unknown {sorted(extra)}")
    try:
        checked = check(body)
    except (KeyError, TypeError) as e:
        raise ProtocolError("malformed", f"{type_} body: {e}") from None
    return Message(version, type_, sender, seq, sim_time, wall_time, checked)
