"""Drakewell inputs."""
