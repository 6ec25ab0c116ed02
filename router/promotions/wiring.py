"""The promotions' parts (policies, merchant points), wired for one gateway process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from router.clock import Clock
from router.ops.metrics import Metrics
from router.promotions.points import Points
from router.promotions.points_worker import PointsWorker
from router.promotions.policies import Policies
from router.settings import Settings
from router.store.store import Store


@final
@dataclass(frozen=True, slots=True)
class Promotions:
    policies: Policies
    points: Points
    points_worker: PointsWorker

    @classmethod
    def wire(cls, store: Store, settings: Settings, metrics: Metrics, clock: Clock,
             owner: str) -> Promotions:
        points = Points(store.points, settings.points, settings.idempotency.ttl_s, clock)
        return cls(policies=Policies(store.policies, metrics), points=points,
                   points_worker=PointsWorker(store, points, settings.redis.shards, clock,
                                              owner))
