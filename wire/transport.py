"""ZeroMQ plumbing shared by the processes: sockets with bounded queues, CURVE keys, JSON logs.

Every socket gets ``linger=0`` and high-water marks of :data:`wire.protocol.HWM`; sends never
block (:func:`send` drops and reports a full queue). With CURVE on (``--keys DIR`` on every
process, the folder ``citybrain keys`` makes), every channel is encrypted and authenticated:
each binding side (the brain's intake; the sim's frames and decisions) is a CURVE server whose
ZAP handler admits only the public keys enrolled in ``DIR/clients``, and each connecting side
proves its own key and checks the server's (``DIR/brain.key``, ``DIR/sim.key``).

A handshake that fails is never silent: every socket is watched (:func:`handshake_failures`),
and a peer that speaks CURVE when this side does not (or the reverse), a key the server has not
enrolled, or a server key that is not the one in the folder is reported in one line that says
which and what to do.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import zmq

from wire.errors import ChannelError, InputError
from wire.protocol import HWM

_log = logging.getLogger("citybrain.transport")

__all__ = ["make_socket", "send", "close", "make_keys", "Curve", "JsonFormatter", "setup_logging",
           "handshake_failures", "check_handshakes", "free_ports"]


class Curve:
    """CURVE settings of one process: its own key pair (``DIR/NAME.key_secret``), the servers'
    public keys (``DIR/brain.key``, ``DIR/sim.key``) and the enrolled clients' folder."""

    def __init__(self, keys_dir: str | Path, name: str) -> None:
        import zmq.auth

        self.dir = Path(keys_dir)
        self.name = name
        secret = self.dir / f"{name}.key_secret"
        if not secret.exists():
            raise InputError(f"--keys {self.dir}: no CURVE key {secret.name} for {name!r} "
                             f"(make keys with `citybrain keys --out {self.dir}`)")
        self.public, self.secret = zmq.auth.load_certificate(str(secret))
        self.clients = self.dir / "clients"

    def server_key(self, server: str) -> bytes:
        """The public key of the server ``server`` (``brain`` or ``sim``)."""
        import zmq.auth

        path = self.dir / f"{server}.key"
        if not path.exists():
            raise InputError(f"--keys {self.dir}: no public key {path.name} of the {server} to connect to")
        return zmq.auth.load_certificate(str(path))[0]


_AUTH = None
_WATCHED = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
            | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
_MONITORS: dict[int, list] = {}  # id(socket) -> [monitor, endpoint, curve, server, handshakes broken off in a row]
_BROKEN_OFF_FATAL = 3
"""A connecting side with CURVE keys whose handshake breaks off this many times gives up:
the server speaks no CURVE (a one-off, say a proxy's probe, is only logged)."""


def make_socket(ctx: zmq.Context, kind: int, endpoint: str, *, bind: bool, curve: Curve | None = None,
                curve_server: bool = False, server: str = "brain", hwm: int = HWM) -> zmq.Socket:
    """A socket bound or connected to ``endpoint`` with bounded queues and no linger, its
    handshakes watched. With ``curve``: a CURVE server (``curve_server``, admitting the enrolled
    keys) or a client of the server named ``server``."""
    global _AUTH
    s = ctx.socket(kind)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDHWM, hwm)
    s.setsockopt(zmq.RCVHWM, hwm)
    if curve is not None:
        s.curve_publickey, s.curve_secretkey = curve.public, curve.secret
        if curve_server:
            if _AUTH is None:
                from zmq.auth.thread import ThreadAuthenticator

                _AUTH = ThreadAuthenticator(ctx)
                _AUTH.start()
                _AUTH.configure_curve(domain="*", location=str(curve.clients))
            s.curve_server = True
        else:
            s.curve_serverkey = curve.server_key(server)
    mon = s.get_monitor_socket(_WATCHED)
    mon.setsockopt(zmq.LINGER, 0)
    _MONITORS[id(s)] = [mon, endpoint, curve is not None, bool(curve_server), 0]
    try:
        if bind:
            s.bind(endpoint)
        else:
            s.connect(endpoint)
    except zmq.ZMQError:
        close(s)
        raise
    return s


def close(sock: zmq.Socket) -> None:
    """Close ``sock`` and its handshake watch."""
    entry = _MONITORS.pop(id(sock), None)
    if entry is not None:
        try:
            sock.disable_monitor()
        except zmq.ZMQError:
            pass
        entry[0].close(0)
    sock.close(0)


def _explain(event: int, value: int, endpoint: str, curve: bool, server: bool) -> str:
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL and value == 0x11000002:  # ZMTP mechanism mismatch
        if curve:
            return (f"{endpoint}: a peer without CURVE keys tried to talk to this side, which has them: "
                    f"give every process the same --keys folder (or none)")
        return (f"{endpoint}: the peer uses CURVE keys and this side has none: give this process --keys "
                f"(the folder `citybrain keys` made)")
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        if server:
            return f"{endpoint}: refused a client whose key is not enrolled in the keys folder's clients/"
        return (f"{endpoint}: the server refused this process's key (status {value}): enrol it with "
                f"`citybrain keys --client NAME` in the server's keys folder")
    detail = f"protocol error 0x{value:x}" if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL else f"errno {value}"
    if not curve:
        return f"{endpoint}: a connection broke off before its handshake completed ({detail})"
    if server:
        return (f"{endpoint}: a peer failed the CURVE handshake ({detail}): it has no CURVE keys or keys from "
                f"another folder (or it was a probe of the port)")
    return (f"{endpoint}: the CURVE handshake failed ({detail}): the server's key is not the one in the keys "
            f"folder, or the server has no --keys")


def handshake_failures(sock: zmq.Socket) -> list[tuple[bool, str]]:
    """The handshakes on ``sock`` that failed since the last call, each ``(fatal, why)`` with ``why``
    in one line. Fatal only for a connecting side: the peer speaks another mechanism (keys on one
    side only), the server refused this side's key, or with CURVE on the handshake broke off
    :data:`_BROKEN_OFF_FATAL` times in a row. A binding side's failures are never fatal: a client
    without keys, or a probe of the port, must not stop the process that serves the others."""
    entry = _MONITORS.get(id(sock))
    if entry is None:
        return []
    from zmq.utils.monitor import recv_monitor_message

    mon, endpoint, curve, server = entry[:4]
    out = []
    while mon.poll(0):
        e = recv_monitor_message(mon)
        why = _explain(e["event"], e["value"], endpoint, curve, server)
        mismatch = e["event"] == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL and e["value"] == 0x11000002
        if mismatch or e["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            out.append((not server, why))
            continue
        entry[4] += 1
        out.append((not server and curve and entry[4] >= _BROKEN_OFF_FATAL, why))
    return out


def check_handshakes(*socks: zmq.Socket) -> None:
    """Raise :class:`ChannelError` with the first fatal failed handshake of ``socks``; log the others."""
    for s in socks:
        for fatal, why in handshake_failures(s):
            if fatal:
                raise ChannelError(why)
            _log.warning("%s", why)


def free_ports(n: int) -> list[int]:
    """``n`` TCP ports free on loopback now."""
    import socket

    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def stop_auth() -> None:
    global _AUTH
    if _AUTH is not None:
        _AUTH.stop()
        _AUTH = None


def send(sock: zmq.Socket, raw: bytes, topic: bytes | None = None) -> bool:
    """Send without blocking; False when the queue is full (the message is dropped)."""
    try:
        if topic is None:
            sock.send(raw, zmq.NOBLOCK)
        else:
            sock.send_multipart([topic, raw], zmq.NOBLOCK)
        return True
    except zmq.Again:
        return False


def make_keys(out: str | Path, clients: list[str]) -> list[Path]:
    """Key pairs for ``brain``, ``sim`` and each client (a worker), every public key enrolled in
    ``out/clients`` (each server admits the others). Secret keys are readable by their owner
    only (0600). Returns the files written."""
    import os

    import zmq.auth

    out = Path(out)
    (out / "clients").mkdir(parents=True, exist_ok=True)
    written = []
    for name in dict.fromkeys(["brain", "sim", *clients]):
        pub, sec = zmq.auth.create_certificates(str(out), name)
        os.chmod(sec, 0o600)
        written += [Path(pub), Path(sec)]
        dst = out / "clients" / f"{name}.key"
        dst.write_bytes(Path(pub).read_bytes())
        written.append(dst)
    return written


class JsonFormatter(logging.Formatter):
    """One JSON object per log line: time, level, logger, message and any ``extra`` fields."""

    _skip = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        d = {"ts": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name,
             "msg": record.getMessage()}
        d.update({k: v for k, v in record.__dict__.items() if k not in self._skip})
        if record.exc_info:
            d["exc"] = self.formatException(record.exc_info)
        return json.dumps(d, default=str)


def setup_logging(json_logs: bool, verbose: bool, process: str) -> None:
    """Root logging for a service process (the CLI's composition root calls this, not libraries)."""
    h = logging.StreamHandler()
    h.setFormatter(JsonFormatter() if json_logs else logging.Formatter(f"%(asctime)s {process} %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [h]
    root.setLevel(logging.INFO if verbose or json_logs else logging.WARNING)
    logging.Formatter.converter = time.gmtime
