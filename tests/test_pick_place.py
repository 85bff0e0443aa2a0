"""pick_place's story (devlog 004): the dense reward that taught pushing, and the episode metrics
that tell pushing from lifting, on scripted pushes and scripted lifts."""
import dataclasses

import numpy as np
import pytest

from envs.controllers.picker import FIXED_JAW_CLEARANCE, ScriptedPicker
from envs.ik import top_down_ik
from envs.rewards.pick_place import dense, staged, staged_v2
from envs.tasks.base import CUBE_HALF, GRIPPER_OPEN
from envs.vector import BatchedEnv, episode_stats


def make(reward="dense", n=2, steps=300):
    return BatchedEnv(task="pick_place", reward=reward, num_envs=n, seed=0, max_episode_steps=steps,
                      domain_randomization=False)


def run(env, policy):
    """Step until every env finished one episode; each env's final_info."""
    env.reset(seed=0)
    done, stats = np.zeros(env.num_envs, bool), [None] * env.num_envs
    while not done.all():
        _, _, term, trunc, infos = env.step(policy())
        for i in np.flatnonzero((term | trunc) & ~done):
            stats[i], done[i] = episode_stats(infos, i), True
    return stats


def pusher(env):
    """Open jaws lowered around the cube to the table, then moved 8 cm towards the moving jaw, just
    off the table: the fixed jaw pushes the cube along, never lifting it."""
    task, t = env.task, [0]

    def act():
        actions = np.zeros((env.num_envs, 6))
        closing = task.physics.site_xmat_of(task.sites["grasp"])[:, :, 1]   # fixed jaw -> moving jaw
        for i in range(env.num_envs):
            cube = task.cube_spawn[i] - FIXED_JAW_CLEARANCE * closing[i]      # as ScriptedPicker: jaws clear it
            if t[0] < 80:
                goal = cube + [0, 0, 0.06]
            elif t[0] < 120:
                goal = cube + [0, 0, 0.011]         # fingertips on the table, jaws around the cube
            else:
                # along the closing direction: the fixed jaw pushes the cube ahead of it
                goal = cube + min(0.08, 0.001 * (t[0] - 120)) * closing[i] + [0, 0, 0.016]
            desired = np.array([*top_down_ik(goal, 0.0), GRIPPER_OPEN])
            actions[i] = np.clip((desired - task.target[i]) / task.cfg.action_scale, -1, 1)
        t[0] += 1
        return actions
    return act


def test_dense_reward_is_reach_plus_place_with_no_grasp_term():
    env = make()
    env.reset(seed=0)
    state = env.task.read_state()
    reward, parts = dense.compute(state)
    assert set(parts) == {"reach", "place"}
    assert np.allclose(reward, parts["reach"] + parts["place"])
    grasped = dataclasses.replace(state, grasped=~state.grasped, lifted=~state.lifted)
    assert np.array_equal(dense.compute(grasped)[0], reward), "a grasp changes nothing in the dense reward"
    assert np.allclose(parts["place"], -np.linalg.norm(state.cube_pos - state.goal_pos, axis=1))
    env.close()


def held(state, cube, goal, tolerance=0.02):
    """state with the cube held in the jaws at cube (one row per position), the goal at goal."""
    cube, goal = np.atleast_2d(cube), np.broadcast_to(goal, np.shape(np.atleast_2d(cube)))
    n = len(cube)
    pick = lambda a: np.repeat(a[:1], n, axis=0)
    return dataclasses.replace(
        state, grasp_pos=cube.copy(), moving_finger_pos=pick(state.moving_finger_pos),
        fixed_finger_pos=pick(state.fixed_finger_pos), cube_quat=pick(state.cube_quat), cube_pos=cube,
        cube_height=cube[:, 2] - CUBE_HALF, grasped=np.ones(n, bool), lifted=np.zeros(n, bool),
        hold_count=np.zeros(n, int), success=np.linalg.norm(cube - goal, axis=1) < tolerance,
        goal_pos=np.array(goal), action=pick(state.action))


@pytest.mark.parametrize("goal_height", [0.0, 0.06])
def test_staged_v2_pays_a_held_cube_more_the_nearer_it_is_to_the_goal(goal_height):
    """Along a carry that keeps the cube off the table, from 15 cm away to 1.5 cm above the goal
    (within its 2 cm tolerance), then on up 10 cm past it, staged_v2's reward rises to the goal and
    falls after it, for goals on the table and in the air; `staged` pays the cube held high above a
    table goal more than the cube at the goal (why it lifts and does not place)."""
    env = make(reward="staged_v2", n=1)
    env.reset(seed=0)
    state = env.task.read_state()
    goal = np.array([0.2, 0.0, CUBE_HALF + goal_height])
    start, end = goal + [0.0, 0.15, 0.03], goal + [0.0, 0.0, 0.015]
    carry = [start + (end - start) * f for f in np.linspace(0, 1, 16)]
    above = [end + [0, 0, dz] for dz in np.linspace(0.01, 0.10, 10)]
    reward, parts = staged_v2.compute(held(state, carry + above, goal))
    assert set(parts) == {"reach", "grasp", "lift", "place", "success"}
    assert np.allclose(reward, sum(parts.values()))
    assert (np.diff(reward[:16]) > 0).all(), f"the nearer the goal, the higher the pay: {reward[:16]}"
    assert (np.diff(reward[15:]) < 0).all() and reward[15] > reward[-1] + 5, f"past the goal it falls: {reward[15:]}"
    old = staged.compute(held(state, [goal, goal + [0, 0, 0.10]], goal))[0]
    if goal_height == 0.0:
        assert old[1] > old[0] - 10, "staged: held 10 cm above a table goal beats the goal once success's bonus is set aside"
    env.close()


def test_staged_v2_pays_nothing_for_pushing_the_cube_towards_the_goal():
    env = make(reward="staged_v2", n=1)
    env.reset(seed=0)
    state = env.task.read_state()
    goal = np.array([0.2, 0.0, CUBE_HALF])
    pushed = dataclasses.replace(held(state, [goal + [0, 0.10, 0], goal + [0, 0.04, 0]], goal),
                                 grasped=np.zeros(2, bool))
    pushed = dataclasses.replace(pushed, grasp_pos=pushed.cube_pos + [0, 0.02, 0])
    reward, parts = staged_v2.compute(pushed)
    assert np.isclose(reward[0], reward[1]) and (parts["place"] == 0).all() and (parts["lift"] == 0).all()
    env.close()


def test_a_scripted_push_reads_as_pushing():
    env = make()
    stats = run(env, pusher(env))     # 300 steps: the push ends by step 200
    for s in stats:
        assert s["cube_travel"] > 0.02 and s["cube_moved"] and not s["cube_lifted"] and s["pushed_only"], s
        assert s["max_cube_z"] < CUBE_HALF + 0.01
    env.close()


def test_a_scripted_lift_reads_as_lifting():
    env = make(reward="staged", steps=300)
    picker = ScriptedPicker(env)
    picker.reset()
    stats = run(env, picker.act)
    for s in stats:
        assert s["cube_lifted"] and not s["pushed_only"], s
    env.close()


def test_an_untouched_cube_neither_moved_nor_lifted():
    env = make(steps=30)
    stats = run(env, lambda: np.zeros((env.num_envs, 6)))
    for s in stats:
        assert not s["cube_moved"] and not s["cube_lifted"] and not s["pushed_only"] and s["cube_travel"] < 0.005
    env.close()


@pytest.mark.parametrize("seed", [0, 1])
def test_her_relabelled_rewards_equal_the_envs_reward(seed):
    """SB3's HerReplayBuffer relabels goals and recomputes rewards with the env's compute_reward: for
    every sampled transition, that is the reward the env gives for those goals (sparse's
    goal_reward, the same test as the task's success)."""
    from stable_baselines3 import SAC
    from stable_baselines3.her import HerReplayBuffer

    from envs.sb3 import SB3VecEnv
    vec = SB3VecEnv(BatchedEnv(task="pick_place", reward="sparse", num_envs=2, seed=seed, obs_mode="goal",
                               max_episode_steps=20))
    model = SAC("MultiInputPolicy", vec, seed=seed, learning_starts=10_000, buffer_size=2000, device="cpu",
                replay_buffer_class=HerReplayBuffer,
                replay_buffer_kwargs={"n_sampled_goal": 4, "goal_selection_strategy": "future"})
    model.learn(200)
    batch = model.replay_buffer.sample(256)
    achieved = batch.next_observations["achieved_goal"].numpy()
    desired = batch.observations["desired_goal"].numpy()
    env_reward = vec.env_method("compute_reward", achieved, desired, None, indices=[0])[0]
    rewards = batch.rewards.numpy().ravel()
    assert np.array_equal(rewards, np.asarray(env_reward, dtype=rewards.dtype).ravel())
    # relabelled goals were reached (0), the original ones, far from the untouched cube, were not (-1)
    assert (rewards == 0).any() and (rewards == -1).any()
    vec.close()
