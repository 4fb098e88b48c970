"""A controller for tests: asks for another phase every second, so every switch the actuator
allows happens (and most wishes are illegal)."""

import numpy as np

from brain.controllers import Controller


class Chaos(Controller):
    name = "chaos"
    interval = 1.0

    def reset(self, network, timing):
        super().reset(network, timing)
        self.rng = np.random.default_rng(0)

    def decide(self, readings, status):
        n = np.array([x.n_phases for x in self.network.intersections])
        return (status.phase + 1 + self.rng.integers(0, n - 1)) % n
