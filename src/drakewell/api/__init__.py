"""Drakewell api."""
