"""Reward versions of the lift task."""
