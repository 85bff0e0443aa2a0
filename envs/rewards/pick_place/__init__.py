"""Reward versions of the pick_place task."""
