"""Benchmark of the gym env and of training: env steps/s at b=50 (one env, and two envs in
processes), MaskablePPO training steps/s including updates, and process memory over many resets.

    python benchmarks/bench_env.py [--steps 20000] [--train-steps 20480] [--resets 5000]

Actions: uniformly random within the mask (episodes end early in deadlock, so resets weigh in) and
"most urgent" (the valid type whose stock runs out first: full zero-idle weeks of 232 decisions).
Target: one env >= 3,000 steps/s at b=50.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from twin import LineEnv

TARGET_STEPS_S = 3000
Chooser = Callable[[LineEnv, np.ndarray, np.random.Generator], int]


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def random_action(env: LineEnv, obs: np.ndarray, rng: np.random.Generator) -> int:
    return int(rng.choice(np.flatnonzero(env.action_masks())))


def most_urgent(env: LineEnv, obs: np.ndarray, rng: np.random.Generator) -> int:
    n = env.action_space.n
    allowed = np.flatnonzero(env.action_masks())
    return int(allowed[np.argmin(obs[2 * n : 3 * n][allowed])])


def env_steps_per_s(choose: Chooser, steps: int) -> tuple[float, float]:
    env = LineEnv(batch_size=50)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    episodes, start = 1, time.perf_counter()
    for _ in range(steps):
        obs, _, done, _, _ = env.step(choose(env, obs, rng))
        if done:
            obs, _ = env.reset()
            episodes += 1
    wall = time.perf_counter() - start
    return steps / wall, steps / episodes


def vec_steps_per_s(vec: VecEnv, steps: int) -> float:
    rng = np.random.default_rng(0)
    vec.reset()
    start = time.perf_counter()
    for _ in range(steps // vec.num_envs):
        masks = np.stack(vec.env_method("action_masks"))
        vec.step(np.array([rng.choice(np.flatnonzero(m)) for m in masks]))
    return steps / (time.perf_counter() - start)


def train_steps_per_s(envs: int, steps: int) -> float:
    factories = [lambda: LineEnv(batch_size=50)] * envs
    vec: VecEnv = SubprocVecEnv(factories) if envs > 1 else DummyVecEnv(factories)
    model = MaskablePPO("MlpPolicy", vec, n_steps=1024, batch_size=128, seed=0, device="cpu")
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    wall = time.perf_counter() - start
    vec.close()
    return model.num_timesteps / wall


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=20_000, help="env steps per throughput figure")
    parser.add_argument("--train-steps", type=int, default=20_480, help="training steps per figure")
    parser.add_argument("--resets", type=int, default=5_000, help="resets for the memory figure")
    args = parser.parse_args()
    torch.set_num_threads(1)

    print("env steps/s at b=50 (reference line, week w1), this process alone")
    for name, choose in (("random in mask", random_action), ("most urgent", most_urgent)):
        rate, per_episode = env_steps_per_s(choose, args.steps)
        print(
            f"  {name:<15} {rate:>8.0f} steps/s  ({per_episode:.0f} steps/episode; target {TARGET_STEPS_S})"
        )

    for envs in (1, 2):
        factories = [lambda: LineEnv(batch_size=50)] * envs
        vec: VecEnv = SubprocVecEnv(factories) if envs > 1 else DummyVecEnv(factories)
        vec.seed(0)
        rate = vec_steps_per_s(vec, args.steps)
        vec.close()
        kind = "SubprocVecEnv" if envs > 1 else "DummyVecEnv"
        print(f"  --envs {envs} ({kind}, random in mask): {rate:>8.0f} steps/s")

    print("\nMaskablePPO training steps/s including updates (n_steps 1024/env, batch 128, 10 epochs)")
    for envs in (1, 2):
        print(f"  --envs {envs}: {train_steps_per_s(envs, args.train_steps):>8.0f} steps/s")

    print(f"\nprocess memory over {args.resets} resets (one env, 10 random steps after each reset)")
    env = LineEnv(batch_size=50)
    rng = np.random.default_rng(0)
    samples = []
    for i in range(1, args.resets + 1):
        obs, _ = env.reset(seed=i)
        for _ in range(10):
            obs, _, done, _, _ = env.step(random_action(env, obs, rng))
            if done:
                break
        if i % max(1, args.resets // 10) == 0:
            samples.append((i, rss_mb()))
    for i, mb in samples:
        print(f"  {i:>6} resets: {mb:7.1f} MiB")
    print(
        f"  growth from {samples[0][0]} to {samples[-1][0]} resets: {samples[-1][1] - samples[0][1]:+.1f} MiB"
    )


if __name__ == "__main__":
    main()
