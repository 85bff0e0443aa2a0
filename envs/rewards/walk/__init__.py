"""Reward versions of the walk task (Go2 velocity tracking, envs/walk.py; devlog 002)."""
