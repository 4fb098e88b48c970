"""SUMO side of citybrain: scenarios, the SUMO bridge, the actuator, the safety monitor, measurement."""
