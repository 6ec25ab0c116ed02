"""One conformance suite that every adapter passes, run through the core's own I/O path.

A rail provides a `RailKit`: how to start its simulator and build its adapter against
it, which payer fields each scene needs, how the simulated payer pays or fails an
order, how its payees are named, and what the rail can do at all (`capabilities`). A
`Check` is an async function of a running `RailEnv`; it performs every adapter operation with
`router.rails.client.RailClient`, exactly as the core does, against the simulator on a
real loopback port. A check that needs a capability the kit lacks is *skipped with a
reason* (`Check.skip_reason`), never silently passed: `plan(kit)` lists what runs.

The kits for the built-in rails (`bank`, `wechatpay`, `alipay`, `instant`) are in
`builtin.py`. `tests/test_conformance.py` runs every check against every kit.
"""

from __future__ import annotations

# The check modules register their checks on import: this order is the order of CHECKS.
from adapters.conformance import (  # noqa: F401
    checks_authorizations,
    checks_bills,
    checks_crossborder,
    checks_invoices,
    checks_payments,
    checks_payouts,
    checks_refunds,
    checks_splits,
    checks_status,
)
from adapters.conformance.builtin import KITS
from adapters.conformance.checks import CHECKS, Check, plan
from adapters.conformance.env import RailEnv, running
from adapters.conformance.kit import (
    CAPABILITIES,
    ConformanceError,
    EnvSettings,
    RailKit,
    SimSpec,
)

__all__ = [
    "CAPABILITIES",
    "CHECKS",
    "KITS",
    "Check",
    "ConformanceError",
    "EnvSettings",
    "RailEnv",
    "RailKit",
    "SimSpec",
    "plan",
    "running",
]
