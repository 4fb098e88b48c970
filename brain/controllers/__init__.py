"""Signal controllers behind one interface, chosen by name.

Example:
    >>> from brain.controllers import make, names
    >>> names()
    ['actuated', 'fixed', 'greedy', 'max-pressure', 'mpc', 'plan', 'webster']
"""

from brain.controllers import mpc, native, plan, pressure, webster  # noqa: F401  (registers the controllers)
from brain.controllers.base import Controller, NativeController
from brain.controllers.registry import make, names, register

__all__ = ["Controller", "NativeController", "make", "names", "register"]
