"""TQC (sb3-contrib): SAC with distributional critics whose top quantiles are dropped from the
target, which curbs SAC's overestimation (RL Zoo's best on the Fetch tasks). The block holds SB3's
own arguments, plus net_width and net_depth (algos/sb3.py) and the critics' shape: n_quantiles
per critic, n_critics."""
from algos import sb3
from envs.settings import count

PARAMS = {**sb3.off_policy_params(),
          "top_quantiles_to_drop_per_net": count(0, doc="quantiles dropped from each critic's target"),
          "n_quantiles": count(doc="quantiles per critic"), "n_critics": count(doc="critics")}
CRITIC_KEYS = ("n_quantiles", "n_critics")      # policy_kwargs, not constructor arguments


def env_settings(env_params: dict, hp: dict) -> dict:
    return dict(env_params)


def make_trainer(vec_env, hp, seed, threads, log_dir):
    from sb3_contrib import TQC
    vec = sb3.make_vec(vec_env, hp)
    args = sb3.ctor_args(hp)
    critics = {k: args.pop(k) for k in CRITIC_KEYS}
    model = TQC("MlpPolicy", vec, seed=seed, verbose=0, device="cpu",
                policy_kwargs={"net_arch": sb3.net(hp), **critics}, **args)
    return sb3.SB3Trainer(model, TQC, vec, hp["total_timesteps"], replay=True, log_dir=log_dir)


def load_policy(path, deterministic=True, step=0):
    from sb3_contrib import TQC
    return sb3.load_policy(TQC, path, deterministic, replay=True)


read_weights = sb3.read_weights
