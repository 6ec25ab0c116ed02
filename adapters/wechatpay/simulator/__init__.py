"""Simulator of WeChat Pay API v3: the real signed protocol, a ledger, faults on demand.

`records` (orders, refunds and transfer bills as WeChat shows them), `checks` (request
bodies), `ledger` (the orders' state machine and the one place money is taken), `refunds`,
`transfer_bills` (payouts, and the one place money is paid out), `profit_sharing` (splits
and their returns, and the one place a split is weighed against its cap), `payscore` (Pay
Score service orders: the credit rule, confirmation, collection), `crossborder` (the
Global API's orders and refunds, priced abroad), `fapiao` (e-invoices), `trade_bills`
(the day's bill, and differences planted in it), `runtime`
(signing, encrypted notifications, faults) and `app` (routes). Orders are keyed by
(sub_mchid, out_trade_no); direct-merchant orders have sub_mchid "".
"""
