"""Reward versions of the walk task (Go2 velocity tracking, envs/tasks/walk.py; devlog 002)."""
