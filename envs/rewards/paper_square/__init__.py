"""Reward versions of the paper_square task (envs/tasks/paper_square.py; devlog 003). They read a
PaperState. The residual L2 penalty of residual training is not a reward term here: the residual
mechanism (envs/residual.py) adds it to whatever version is used."""
