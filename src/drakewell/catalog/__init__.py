"""Drakewell catalog."""
