"""The seeded simulation (tests/simulation.py) for a bounded number of seeds.

A failure names its seed and step; `python -m tests.simulation --seed S --steps N`
replays it exactly.
"""

from __future__ import annotations

import pytest

from tests.simulation import simulate

SEEDS = range(20)
STEPS = 150


@pytest.mark.parametrize("seed", SEEDS)
async def test_simulation(redis_url: str, seed: int) -> None:
    await simulate(seed, STEPS, redis_url)


@pytest.mark.parametrize("redis_topology", ["cluster"], indirect=True)
@pytest.mark.parametrize("seed", range(5))
async def test_simulation_on_the_cluster(redis_url: str, seed: int) -> None:
    """The same state machine with its keys spread over three masters."""
    await simulate(seed, STEPS, redis_url)


async def test_a_seed_replays_exactly(redis_url: str) -> None:
    first = await simulate(3, 80, redis_url)
    again = await simulate(3, 80, redis_url)
    assert first == again
