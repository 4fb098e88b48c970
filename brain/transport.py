"""ZeroMQ plumbing shared by the processes: sockets with bounded queues, CURVE keys, JSON logs.

Every socket gets ``linger=0`` and high-water marks of :data:`brain.protocol.HWM`; sends never
block (:func:`send` drops and reports a full queue). With CURVE on, the brain's intake is a
CURVE server whose ZAP handler admits only the client keys enrolled in a folder
(``citybrain keys``), so a worker without an enrolled key cannot deliver counts.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import zmq

from brain.protocol import HWM

__all__ = ["make_socket", "send", "make_keys", "Curve", "JsonFormatter", "setup_logging"]


class Curve:
    """CURVE settings of one process: its own key pair, the server's public key (clients), the
    enrolled clients' folder (server)."""

    def __init__(self, keys_dir: str | Path, name: str) -> None:
        self.dir = Path(keys_dir)
        secret = self.dir / f"{name}.key_secret"
        if not secret.exists():
            raise FileNotFoundError(f"no CURVE key {secret} (make keys with `citybrain keys --out {self.dir}`)")
        import zmq.auth

        self.public, self.secret = zmq.auth.load_certificate(str(secret))
        server_pub = self.dir / "brain.key"
        self.server_public = zmq.auth.load_certificate(str(server_pub))[0] if server_pub.exists() else None
        self.clients = self.dir / "clients"


_AUTH = None


def make_socket(ctx: zmq.Context, kind: int, endpoint: str, *, bind: bool, curve: Curve | None = None,
                curve_server: bool = False, hwm: int = HWM) -> zmq.Socket:
    """A socket bound or connected to ``endpoint`` with bounded queues and no linger."""
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
            if curve.server_public is None:
                raise FileNotFoundError(f"no server public key brain.key in {curve.dir}")
            s.curve_serverkey = curve.server_public
    if bind:
        s.bind(endpoint)
    else:
        s.connect(endpoint)
    return s


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
    """Key pairs: ``brain`` (the server) and one per client; clients' public keys are enrolled
    in ``out/clients``. Returns the files written."""
    import zmq.auth

    out = Path(out)
    (out / "clients").mkdir(parents=True, exist_ok=True)
    written = []
    for name in ["brain", *clients]:
        pub, sec = zmq.auth.create_certificates(str(out), name)
        written += [Path(pub), Path(sec)]
        if name != "brain":
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
