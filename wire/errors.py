"""One exception tree for the whole project; the command line maps it to exit codes.

    CitybrainError
    ├── InputError        bad input: one line naming the file or option (exit 2)
    │   ├── ScenarioError a scenario that cannot be run (sim.scenario)
    │   ├── ProtocolError a message that breaks the wire format (wire.protocol)
    │   └── ChannelError  a channel whose two ends disagree (CURVE keys on one side only, say)
    └── SimulatorError    SUMO failed to start or died (sim.backend.SumoError)
"""

from __future__ import annotations

__all__ = ["CitybrainError", "InputError", "ScenarioError", "SimulatorError", "ChannelError"]


class CitybrainError(Exception):
    """Every error citybrain raises on purpose."""


class InputError(CitybrainError, ValueError):
    """Bad input: the message names the file or option, in one line."""


class ScenarioError(InputError):
    """A scenario that cannot be run; the message names the offending file."""


class ChannelError(InputError):
    """A channel whose two ends disagree: one has CURVE keys and the other not, a key not
    enrolled, a network description that is not the sim's."""


class SimulatorError(CitybrainError, RuntimeError):
    """The simulator failed to start or died during a run."""
