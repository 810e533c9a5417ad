"""Drakewell campaigns."""
