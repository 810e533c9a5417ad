"""Drakewell exchange."""
