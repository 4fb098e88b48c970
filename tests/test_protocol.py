"""Message round trips and strict rejection (including a fuzz run)."""

import math
import random

import msgpack
import pytest

from wire.protocol import MAX_BYTES, VERSION, ProtocolError, decode, encode

COUNTS = {"camera": "A0/n", "tls": "A0", "lanes": ["n_0", "n_1"], "present": [3.0, 1.0], "queue": [2.0, 0.0],
          "crossed": [1.0, 0.0], "classes": [[3, 0, 0, 0], [0, 0, 1, 0]], "interval": 2.0, "frames": 8}
STATUS = {"step": 4, "phase": [0, 2], "green": [12.0, 3.0], "in_transition": [False, True]}


@pytest.mark.parametrize("type_,body", [
    ("counts", COUNTS),
    ("frame", {"camera": "A0/n", "jpeg": b"\xff\xd8jpeg", "index": 3}),
    ("status", STATUS),
    ("status", dict(STATUS, readings={"vehicles": [1.0], "halting": [0.0], "arrivals": [5.0], "departures": [4.0]})),
    ("decision", {"step": 4, "wish": [1, 0], "fallback": [False, True], "controller": "mpc"}),
    ("heartbeat", {"role": "worker", "cameras": ["A0/n", "A0/s"]}),
    ("bye", {"role": "brain"}),
])
def test_round_trip(type_, body):
    m = decode(encode(type_, "w1", 42, 123.5, body, wall_time=1000.0))
    assert (m.version, m.type, m.sender, m.seq, m.sim_time, m.wall_time) == (VERSION, type_, "w1", 42, 123.5, 1000.0)
    for k, v in body.items():
        assert m.body[k] == v


def _raw(h, b):
    return msgpack.packb({"h": h, "b": b}, use_bin_type=True)


@pytest.mark.parametrize("raw,reason", [
    (b"\x00\x01garbage", "malformed"),
    (b"", "malformed"),
    (_raw([2, "counts", "w", 1, 0.0, 1.0], COUNTS), "version"),
    (_raw([VERSION, "launch", "w", 1, 0.0, 1.0], {}), "type"),
    (_raw([VERSION, "counts", "w", 1, 0.0, 1.0], dict(COUNTS, extra=1)), "malformed"),
    (_raw([VERSION, "counts", "w", 1, 0.0, 1.0], {k: v for k, v in COUNTS.items() if k != "queue"}), "malformed"),
    (_raw([VERSION, "counts", "w", 1, 0.0, 1.0], dict(COUNTS, present=[3.0, -1.0])), "range"),
    (_raw([VERSION, "counts", "w", 1, 0.0, 1.0], dict(COUNTS, present=[3.0, math.nan])), "range"),
    (_raw([VERSION, "counts", "w", 1, 0.0, 1.0], dict(COUNTS, queue=[5.0, 0.0])), "range"),  # queue > present
    (_raw([VERSION, "counts", "w", 1, 0.0, 1.0], dict(COUNTS, present=[1.0])), "range"),  # lengths differ
    (_raw([VERSION, "counts", "w", -1, 0.0, 1.0], COUNTS), "range"),
    (_raw([VERSION, "counts", "", 1, 0.0, 1.0], COUNTS), "range"),
    (_raw([VERSION, "status", "s", 1, 0.0, 1.0], dict(STATUS, phase=[0, True])), "range"),
    (_raw([VERSION, "counts", "w", 1, 0.0, 1.0], dict(COUNTS, camera="x" * (MAX_BYTES + 10))), "malformed"),
])
def test_rejections_name_their_reason(raw, reason):
    with pytest.raises(ProtocolError) as e:
        decode(raw)
    assert e.value.reason == reason


def test_oversized_is_refused_on_both_sides():
    with pytest.raises(ProtocolError, match="oversized"):
        encode("counts", "w", 1, 0.0, dict(COUNTS, camera="x" * 128, lanes=["l" * 200] * 2000))


def _mutate(rng: random.Random, raw: bytes) -> bytes:
    b = bytearray(raw)
    for _ in range(rng.randint(1, 8)):
        op = rng.random()
        if op < 0.5 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op < 0.7 and b:
            del b[rng.randrange(len(b))]
        else:
            b.insert(rng.randrange(len(b) + 1), rng.randrange(256))
    return bytes(b)


def _random_value(rng: random.Random, depth: int = 0):
    kinds = [lambda: rng.randint(-2**40, 2**40), lambda: rng.random() * 1e6, lambda: "s" * rng.randint(0, 5),
             lambda: None, lambda: True, lambda: b"\x00" * rng.randint(0, 4), lambda: math.inf]
    if depth < 2:
        kinds += [lambda: [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))],
                  lambda: {str(k): _random_value(rng, depth + 1) for k in range(rng.randint(0, 3))}]
    return rng.choice(kinds)()


def test_ten_thousand_fuzzed_messages_are_all_rejected_cleanly():
    rng = random.Random(1)
    good = [encode("counts", "w", 1, 0.0, COUNTS), encode("status", "s", 1, 0.0, STATUS),
            encode("decision", "b", 1, 0.0, {"step": 1, "wish": [0], "fallback": [False], "controller": "mpc"})]
    rejected = accepted = 0
    for k in range(10_000):
        if k % 3 == 0:
            raw = _mutate(rng, rng.choice(good))
        elif k % 3 == 1:
            h = [rng.choice([VERSION, 0, 2, "1"]), rng.choice(["counts", "status", "decision", "x", 5]), "f",
                 rng.choice([1, -5, 2**63, "x"]), rng.choice([0.0, math.nan, "t"]), 1.0]
            body = {k2: _random_value(rng) for k2 in rng.sample(sorted(COUNTS), rng.randint(0, len(COUNTS)))}
            raw = msgpack.packb({"h": h, "b": body}, use_bin_type=True)
        else:
            raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
        try:
            decode(raw)
            accepted += 1  # a mutation may leave a valid message (e.g. a changed digit)
        except ProtocolError:
            rejected += 1
    assert rejected + accepted == 10_000
    assert rejected >= 9_000


def test_status_carries_emergency_movements_and_refuses_bad_ones():
    body = {"step": 3, "phase": [0], "green": [4.0], "in_transition": [False], "emergency": [[2, 7, 150.5]]}
    assert decode(encode("status", "sim", 3, 6.0, body)).body["emergency"] == [(2, 7, 150.5)]
    for bad in ([[2, 7]], [[2, 7, -1.0]], [["a", 7, 1.0]], "x"):
        with pytest.raises(ProtocolError) as e:
            decode(_raw([VERSION, "status", "sim", 3, 6.0, 1.0], {**body, "emergency": bad}))
        assert e.value.reason == "range"


def test_located_vehicles_travel_with_counts_and_readings_and_must_add_up():
    counts = {"camera": "c", "tls": "t", "lanes": ["a_0", "b_0"], "present": [2.0, 1.0], "queue": [1.0, 0.0],
              "crossed": [0.0, 1.0], "classes": [[0.0] * 4] * 2, "interval": 2.0, "frames": 8,
              "approach_n": [1, 0], "approach_m": [35.5]}
    got = decode(encode("counts", "w", 1, 2.0, counts)).body
    assert got["approach_n"] == [1, 0] and got["approach_m"] == [35.5]
    readings = {"vehicles": [2.0], "halting": [0.0], "arrivals": [0.0], "departures": [0.0],
                "approach_n": [2], "approach_m": [10.0, 80.0], "approach_w": [1.0, 0.5]}
    body = {"step": 1, "phase": [0], "green": [4.0], "in_transition": [False], "readings": readings}
    assert decode(encode("status", "sim", 1, 2.0, body)).body["readings"]["approach_w"] == [1.0, 0.5]
    for bad in ({**counts, "approach_n": [2, 0]}, {**counts, "approach_m": [-1.0]}, {**counts, "approach_n": [1]}):
        with pytest.raises(ProtocolError) as e:
            decode(_raw([VERSION, "counts", "w", 1, 2.0, 1.0], bad))
        assert e.value.reason == "range"
