"""A realistic mix of merchant traffic for locust (FastHttpUser), against a sandbox gateway.

    PAYROUTER_BENCH_API_KEY=<key> locust -f loadtest/locustfile.py --headless \\
        --host http://127.0.0.1:8080 -u 20 -r 10 -t 30s --csv bench-locust

Run it from the repository root. The gateway must be in sandbox mode (`payrouter serve`
without --config): native payments are paid through `POST /v1/sandbox/payments/{id}/pay`.
Each simulated user, with a short think time between tasks, by weight:

- 6  quick-pay create (`PAYROUTER_BENCH_METHOD`: `instant`, the default, or `bank`), a
     payer code ending in 1 (paid at once);
- 2  native create (`PAYROUTER_BENCH_NATIVE_METHOD`, default `bank`: a rail with a
     simulated payer), then the sandbox pays it;
- 6  GET of one of the user's payments;
- 1  partial refund of one of the user's paid payments (each refunded once).

The API key comes from PAYROUTER_BENCH_API_KEY (the sandbox prints the demo merchant's;
it is also in `.payrouter/demo_merchant.json`). Only loopback hosts are accepted.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import uuid
from collections import deque
from typing import Any

from locust import FastHttpUser, between, events, task
from locust.env import Environment

from loadtest.generator import API_KEY_ENV
from loadtest.loopback import is_loopback_url

QUICKPAY_METHOD = os.environ.get("PAYROUTER_BENCH_METHOD", "instant")
NATIVE_METHOD = os.environ.get("PAYROUTER_BENCH_NATIVE_METHOD", "bank")
AMOUNT = 1000
REFUND = 300
_RUN = uuid.uuid4().hex[:10]  # out_trade_no prefix: unique per locust process
_SEQ = itertools.count(1)


def _check(environment: Environment, **_kwargs: Any) -> None:
    host = environment.host or ""
    if not is_loopback_url(host):
        logging.error("locustfile: --host %r is not a loopback URL (localhost, 127.0.0.0/8, "
                      "::1): refusing to send load there", host)
        raise SystemExit(2)
    if not os.environ.get(API_KEY_ENV):
        logging.error("locustfile: set %s to the merchant's API key", API_KEY_ENV)
        raise SystemExit(2)


events.init.add_listener(_check)  # type: ignore[no-untyped-call]


class Merchant(FastHttpUser):
    wait_time = between(0.05, 0.2)

    def on_start(self) -> None:
        self.auth = {"Authorization": f"Bearer {os.environ.get(API_KEY_ENV, '')}"}
        self.payments: deque[str] = deque(maxlen=500)  # any of this user's, for GETs
        self.paid: deque[str] = deque(maxlen=500)  # paid and not yet refunded

    def _create(self, body: dict[str, Any], name: str, expect: str) -> str | None:
        headers = {**self.auth, "Idempotency-Key": body["out_trade_no"]}
        with self.client.post("/v1/payments", json=body, headers=headers, name=name,
                              catch_response=True) as resp:
            data = resp.json() if resp.status_code in (200, 201) else None
            if data is None or data.get("status") != expect:
                resp.failure(f"{resp.status_code}: {resp.text[:200] if resp.text else ''}")
                return None
        payment_id: str = data["id"]
        self.payments.append(payment_id)
        return payment_id

    @task(6)
    def quickpay(self) -> None:
        seq = next(_SEQ)
        body = {"amount": AMOUNT, "currency": "CNY", "out_trade_no": f"lc-{_RUN}-{seq}",
                "scene": "quickpay", "method": QUICKPAY_METHOD, "description": "locust",
                "payer": {"auth_code": f"13{seq:015d}1"}}
        if (pid := self._create(body, "POST /v1/payments [quickpay]", "succeeded")):
            self.paid.append(pid)

    @task(2)
    def native_then_pay(self) -> None:
        body = {"amount": AMOUNT, "currency": "CNY", "out_trade_no": f"lc-{_RUN}-{next(_SEQ)}",
                "scene": "native", "method": NATIVE_METHOD, "description": "locust"}
        pid = self._create(body, "POST /v1/payments [native]", "requires_action")
        if pid is None:
            return
        with self.client.post(f"/v1/sandbox/payments/{pid}/pay", headers=self.auth,
                              name="POST /v1/sandbox/payments/{id}/pay",
                              catch_response=True) as resp:
            if resp.status_code != 200 or resp.json().get("status") != "succeeded":
                resp.failure(f"{resp.status_code}: {resp.text[:200] if resp.text else ''}")
                return
        self.paid.append(pid)

    @task(6)
    def get_payment(self) -> None:
        if not self.payments:
            return
        pid = random.choice(self.payments)
        self.client.get(f"/v1/payments/{pid}", headers=self.auth, name="GET /v1/payments/{id}")

    @task(1)
    def refund(self) -> None:
        if not self.paid:
            return
        pid = self.paid.popleft()
        body = {"amount": REFUND, "out_refund_no": f"r-{_RUN}-{next(_SEQ)}",
                "reason": "locust"}
        with self.client.post(f"/v1/payments/{pid}/refunds", json=body,
                              headers={**self.auth, "Idempotency-Key": body["out_refund_no"]},
                              name="POST /v1/payments/{id}/refunds",
                              catch_response=True) as resp:
            if resp.status_code != 201:
                resp.failure(f"{resp.status_code}: {resp.text[:200] if resp.text else ''}")
