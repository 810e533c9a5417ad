"""Drakewell chain."""
