"""What every citybrain process shares: the wire format, ZeroMQ plumbing, camera geometry, errors."""
