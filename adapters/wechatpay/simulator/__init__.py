"""Simulator of WeChat Pay API v3: the real signed protocol, a ledger, faults on demand.

`records` (orders and refunds as WeChat shows them), `checks` (request bodies), `ledger`
(the orders' state machine and the one place money is taken), `refunds`, `runtime`
(signing, encrypted notifications, faults) and `app` (routes). Orders are keyed by
(sub_mchid, out_trade_no); direct-merchant orders have sub_mchid "".
"""
