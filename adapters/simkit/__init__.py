"""What the rail simulators share, so that each rail keeps only what it does differently.

- `faults`: the settings of `POST /sim/faults`.
- `delivery`: notification deliveries (a rail's resend schedule, drops, duplicates).
- `runtime`: the event-loop side (options, fault dice, timers, withheld and late answers,
  the shutdown lifecycle).
- `replies`: a rail's answer before signing, the refusal that carries one, compact JSON.
- `signed_api`: signed JSON APIs (bank, WeChat Pay): verify, read, apply under faults, answer.
- `payer_code`: the payer-code script, where the code's last digit decides the outcome.
- `snapshot`: the `GET /sim/ledger` view of orders and money taken.
- `controls`: the `/sim/*` routes (simulated payer, faults, ledger).
"""
