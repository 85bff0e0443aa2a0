"""PPO (Stable-Baselines3) on the task's state observations.

Besides SB3's own arguments, the block holds (algos/sb3.py): net_width, net_depth, log_std_init,
activation (tanh | relu | elu), target_kl (0: no early stop) and reward_scale (a factor on the
rewards PPO learns from; statistics and reports keep the reward's own units).
"""
from algos import sb3
from envs.settings import Field, count

PARAMS = {**sb3.common_params(), "n_steps": count(doc="env steps per env in one rollout"),
          "n_epochs": count(doc="passes over each rollout"),
          "gae_lambda": Field("float", min=0.0, max=1.0, doc="GAE's lambda"),
          "clip_range": Field("float", min=0.0, doc="PPO's ratio clip"),
          "ent_coef": Field("float", min=0.0, doc="entropy bonus coefficient"),
          "vf_coef": Field("float", min=0.0, doc="value loss coefficient"),
          "max_grad_norm": Field("float", min=0.0, doc="gradient norm clip"),
          "log_std_init": Field("float", doc="initial log std of the Gaussian policy"),
          "activation": Field("str", choices=("tanh", "relu", "elu"), doc="hidden-layer activation"),
          "target_kl": Field("float", min=0.0, doc="> 0: stop an update's epochs past 1.5x this KL; 0: never"),
          "reward_scale": Field("float", min=0.0, doc="factor on the rewards PPO learns from (reports stay unscaled)")}


def env_settings(env_params: dict, hp: dict) -> dict:
    return dict(env_params)


def make_trainer(vec_env, hp, seed, threads, log_dir):
    import torch
    from stable_baselines3 import PPO
    vec = sb3.make_vec(vec_env, hp)
    args = sb3.ctor_args(hp)
    args["target_kl"] = args.get("target_kl") or None
    activation = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "elu": torch.nn.ELU}[hp["activation"]]
    model = PPO("MlpPolicy", vec, seed=seed, verbose=0, device="cpu",
                policy_kwargs={"net_arch": {"pi": sb3.net(hp), "vf": sb3.net(hp)},
                               "log_std_init": hp["log_std_init"], "activation_fn": activation}, **args)
    return sb3.SB3Trainer(model, PPO, vec, hp["total_timesteps"], replay=False, log_dir=log_dir)


def load_policy(path, deterministic=True, step=0):
    from stable_baselines3 import PPO
    return sb3.load_policy(PPO, path, deterministic, replay=False)


read_weights = sb3.read_weights
