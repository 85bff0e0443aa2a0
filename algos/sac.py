"""SAC (Stable-Baselines3) on the task's state observations; the block holds SB3's own arguments
plus net_width and net_depth (algos/sb3.py)."""
from algos import sb3

PARAMS = sb3.off_policy_params()


def env_settings(env_params: dict, hp: dict) -> dict:
    return dict(env_params)


def make_trainer(vec_env, hp, seed, threads, log_dir):
    from stable_baselines3 import SAC
    vec = sb3.make_vec(vec_env, hp)
    model = SAC("MlpPolicy", vec, seed=seed, verbose=0, device="cpu",
                policy_kwargs={"net_arch": sb3.net(hp)}, **sb3.ctor_args(hp))
    return sb3.SB3Trainer(model, SAC, vec, hp["total_timesteps"], replay=True, log_dir=log_dir)


def load_policy(path, deterministic=True, step=0):
    from stable_baselines3 import SAC
    return sb3.load_policy(SAC, path, deterministic, replay=True)


read_weights = sb3.read_weights
