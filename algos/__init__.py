"""Learning algorithms behind one small interface.

algos.sb3    PPO, SAC and SAC+HER from Stable-Baselines3: build(name, env, hp, seed), load(name, path)
algos.drqv2  DrQ-v2, our own, for pixels
"""
