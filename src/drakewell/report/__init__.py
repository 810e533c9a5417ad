"""Drakewell report."""
