"""Simulator of the Alipay OpenAPI gateway: RSA2-signed `gateway.do`, a ledger, faults.

`records` (trades and refunds), `answers` (gateway answers and how trades show in them),
`checks` (business fields), `ledger` (the state machine and the one place money is taken),
`refunds`, `runtime` (request checks, signing, notifications, faults) and `app` (routes).
"""
