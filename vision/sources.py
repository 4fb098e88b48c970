"""Frame sources a camera worker reads: video files, RTSP streams, image folders, synthetic SUMO cameras.

Every source yields ``(time_s, frame)`` with ``frame`` a BGR ``uint8`` array, and ends with
``StopIteration`` (a stream that drops is reopened with exponential back-off first).

Example:
    >>> src = open_source("frames/", fps=4)            # doctest: +SKIP
    >>> t, frame = next(iter(src))                      # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

__all__ = ["FolderSource", "VideoSource", "open_source", "SourceError"]

log = logging.getLogger(__name__)

_IMAGES = (".jpg", ".jpeg", ".png", ".bmp")


class SourceError(ValueError):
    """A frame source cannot be opened."""


class FolderSource:
    """Images of a folder in name order, ``fps`` frames per second of camera time."""

    def __init__(self, folder: str | Path, fps: float = 4.0) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise SourceError(f"image folder not found: {self.folder}")
        self.files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in _IMAGES)
        if not self.files:
            raise SourceError(f"no images ({', '.join(_IMAGES)}) in {self.folder}")
        self.fps = fps

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        for k, p in enumerate(self.files):
            img = cv2.imread(str(p))
            if img is None:
                log.warning("skipping unreadable image %s", p)
                continue
            yield k / self.fps, img


class VideoSource:
    """A video file or a stream URL (``rtsp://``, ``http://``) through OpenCV.

    Times come from the container's timestamps (files) or the wall clock (streams). A stream
    that stops is reopened up to ``retries`` times, waiting 0.5, 1, 2... s (capped at 10 s).
    """

    def __init__(self, uri: str | Path, *, retries: int = 5) -> None:
        self.uri = str(uri)
        self.stream = "://" in self.uri
        if not self.stream and not Path(self.uri).is_file():
            raise SourceError(f"video file not found: {self.uri}")
        self.retries = retries
        self.lost = False
        """True once a stream stopped and did not come back after ``retries`` reconnects."""
        cap = cv2.VideoCapture(self.uri)
        ok = cap.isOpened()
        self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) if ok else 0.0
        cap.release()
        if not ok and not self.stream:
            raise SourceError(f"cannot decode video {self.uri}")

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        tries = 0
        t0 = time.time()
        k = 0
        while True:
            cap = cv2.VideoCapture(self.uri)
            while cap.isOpened():
                ok, frame = cap.read()
                if not ok:
                    break
                tries = 0
                if self.stream:
                    t = time.time() - t0
                else:
                    ms = cap.get(cv2.CAP_PROP_POS_MSEC)
                    t = ms / 1000.0 if ms > 0 or k == 0 else k / (self.fps or 25.0)
                k += 1
                yield t, frame
            cap.release()
            if not self.stream or tries >= self.retries:
                if self.stream:
                    self.lost = True
                    log.error("stream %s lost after %d reconnects", self.uri, tries)
                return
            wait = min(0.5 * 2 ** tries, 10.0)
            tries += 1
            log.warning("stream %s dropped; reconnecting in %.1f s (try %d/%d)", self.uri, wait, tries, self.retries)
            time.sleep(wait)


def open_source(spec: str | Path, *, fps: float = 4.0, retries: int = 5) -> FolderSource | VideoSource:
    """A source from a path or URL: a folder of images, a video file, or a stream (reopened up to
    ``retries`` times when it stops)."""
    s = str(spec)
    if "://" in s:
        return VideoSource(s, retries=retries)
    p = Path(s)
    if p.is_dir():
        return FolderSource(p, fps)
    if p.is_file():
        return VideoSource(p)
    raise SourceError(f"frame source not found: {s} (a video file, an image folder or a stream URL)")
