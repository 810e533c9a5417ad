"""Drakewell metering."""
