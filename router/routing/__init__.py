"""Routing: which rails a payment goes to, in what order, and why."""

from router.routing.health import HealthBook
from router.routing.router import Router, adapter_kind

__all__ = ["HealthBook", "Router", "adapter_kind"]
