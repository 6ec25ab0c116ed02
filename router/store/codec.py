"""Compact storage of JSON bodies kept in Redis (stored idempotent answers, outbox events).

A body is stored as one version byte followed by raw DEFLATE data compressed against a
preset dictionary of the API's own vocabulary, so even a single small document shrinks
to a fraction (a 640-byte payment answer to about 120 bytes). A dictionary, once used,
must never change: a new one takes a new version byte, and the old stays readable.
"""

from __future__ import annotations

import zlib
from typing import Final

_RAW: Final = b"\x00"  # stored as is (small bodies, or nothing gained)
_V2: Final = b"\x02"

# The API's vocabulary, the most common last (nearer strings cost fewer bits): a 640-byte
# payment answer packs to about 120 bytes.
_DICT_V2: Final = (
    b'{"error":{"code":"","message":"","param":"payment_id":"pay_","payment_status":"'
    b'{"id":"evt_","object":"event","type":"payment.succeeded","payment.failed",'
    b'"payment.closed","refund.succeeded","refund.failed","created_at":"2026-11-22T","data":'
    b'{"id":"re_","object":"refund","payment_id":"pay_","out_refund_no":"","reason":"'
    b'{"id":"pay_","object":"payment","status":"succeeded","processing","requires_action",'
    b'"failed","closed","partially_refunded","refunded","amount":,"currency":"CNY",'
    b'"out_trade_no":"","scene":"quickpay","native","jsapi","mini_program","app","h5",'
    b'"method":"","adapter":"wechatpay","alipay","bank","instant","description":"",'
    b'"refunded_amount":0,"metadata":{},"created_at":"2026-11-22T00:00:00.000Z",'
    b'"updated_at":"2026-11-22T","routing":{"chosen":"","candidates":[""],'
    b'"reason":"method named by the request","first rail that takes the scene"},'
    b'"attempts":[{"number":1,"adapter":"","rail_order_no":"_1"}],"notify_url":"https://",'
    b'"action":{"type":"qr_code","qr_code":"weixin://wxpay/bizpayurl?pr=","sdk_params",'
    b'"redirect","url":"https://"},"failure":{"code":"","message":""},"rail_reference":"'
    # the routing explanation, attempts and event envelope as answers carry them
    b'"reason":"default order of rails taking the scene","the payer\'s wallet (wechatpay) '
    b'first","rule \'","\', strategy ","; breaker open on ",'
    b'"strategy":"priority","weighted","success_rate","cost","rule":"",'
    b'"considered":[{"rail":"","rank":1,"breaker":"closed","open","half_open","weight":,'
    b'"share":0.,"score":,"fee":}],"failure_code":"","via":"share_link","payer":{"wallet":'
    b'""},"rail_reference":"inst_","BT","wx","4200000",'
    b'"attempts":[{"number":1,"adapter":"","rail_order_no":"_1"},{"number":2,'
    b'"routing":{"chosen":"bank","candidates":["bank"],"reason":"method named by the '
    b'request","strategy":"priority","considered":[{"rail":"bank","rank":1,"breaker":'
    b'"closed"}]},"description":"","refunded_amount":0,"metadata":{},"created_at":'
    b'"2026-11-22T0","updated_at":"2026-11-22T0",{"id":"evt_","object":"event","type":'
    b'"payment.succeeded","created_at":"2026-11-22T","data":{"id":"pay_","object":'
    b'"payment","status":"succeeded","amount":'
)
_WBITS_V2: Final = -12  # 4 KiB window: the 2 KiB dictionary plus one body
_MIN_SIZE: Final = 64


def pack(body: bytes) -> bytes:
    if len(body) < _MIN_SIZE:
        return _RAW + body
    # Level 1 with the full hash table: ~7 µs, within a few bytes of level 9. A fresh
    # compressor per body is cheaper than `copy()` of a prepared one: the copy moves the
    # whole ~144 KiB deflate state, where a fresh one clears 64 KiB and hashes the 2 KiB
    # dictionary (measured: 3 % faster with hot caches, 5-10 % slower with cold ones).
    compressor = zlib.compressobj(1, zlib.DEFLATED, _WBITS_V2, 8, zlib.Z_DEFAULT_STRATEGY,
                                  _DICT_V2)
    packed = compressor.compress(body) + compressor.flush()
    return _V2 + packed if len(packed) + 1 < len(body) else _RAW + body


def unpack(stored: bytes) -> bytes:
    version, data = stored[:1], stored[1:]
    if version == _RAW:
        return data
    if version != _V2:
        raise ValueError(f"unknown stored body version {version!r}")
    decompressor = zlib.decompressobj(_WBITS_V2, _DICT_V2)
    return decompressor.decompress(data) + decompressor.flush()
