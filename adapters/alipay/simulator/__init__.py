"""Simulator of the Alipay OpenAPI gateway: RSA2-signed `gateway.do`, a ledger, faults.

`records` (trades and refunds), `answers` (gateway answers and how trades show in them),
`checks` (business fields), `ledger` (the state machine and the one place money is taken),
`refunds`, `transfers` (payouts), `royalties` (splits), `fund_auths` and
`fund_auth_records` (pre-authorisation), `pricing` and `abroad` (cross-border trades),
`bills` (the trade bill download), `runtime` (request checks, signing, notifications,
faults) and `app` (routes).
"""
