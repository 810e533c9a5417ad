"""Drakewell routing."""
