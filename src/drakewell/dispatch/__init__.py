"""Drakewell dispatch."""
