"""Camera workers (frame sources, YOLO detection, lane zones, counts out over ZeroMQ)."""
