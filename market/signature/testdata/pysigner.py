#!/usr/bin/python3
"""Sign V Cloud market requests the way the Python market client does.

The request text, hashing and signing follow the client's published
behaviour (v-cloud-market-cli-user 0.1.4, utils/server_api_wrapper.py):
query strings from urllib.parse.urlencode(params, doseq=True) after dropping
falsy values, bodies from json.dumps (what requests' json= sends), the
canonical request text, and axolotl_curve25519.calculateSignature.

    /usr/bin/python3 pysigner.py > vectors.json   # the committed vectors
    /usr/bin/python3 pysigner.py --live < spec.json  # one request (tests)

Needs Debian's python3-axolotl-curve25519, python3-pycryptodome and
python3-base58 (run /usr/bin/python3, not a pyenv shim).
"""
import base64
import json
import os
import sys
import urllib.parse
from hashlib import sha256

import axolotl_curve25519 as curve
import base58
from Cryptodome.Hash import BLAKE2b, keccak

USER_AGENT = "market command line v1.0"


def hash_chain(data):
    inner = BLAKE2b.new(digest_bits=256, data=data).digest()
    return keccak.new(digest_bits=256, data=inner).digest()


def address(pub, network):
    chain = b"M" if network == "mainnet" else b"T"
    body = bytes([5]) + chain + hash_chain(pub)[:20]
    return base58.b58encode(body + hash_chain(body)[:4]).decode()


def sign_request(priv, pub, network, method, host, api, params, body, ts):
    """Returns the vector of one signed request.

    body is None for a request sent without a body (hashed as "{}"), else
    the object requests sends as json=body.
    """
    if params:
        params = {k: params[k] for k in params if params[k]}
        api += "?" + urllib.parse.urlencode(params, doseq=True)
    addr = address(pub, network)
    u = urllib.parse.urlparse(host + api)
    path = u.path
    if not path.startswith("/api/v1"):
        path = path[path.find("/api/v1"):]
    sent = "" if body is None else json.dumps(body)
    hashed = json.dumps({}) if body is None else sent
    canonical = (method + "\n" + path + "\n" + "\n".join(u.query.split("&")) + "\n"
                 + "User-Agent:" + USER_AGENT + "\n" + "address:" + addr + "\n"
                 + sha256(hashed.encode("utf-8")).hexdigest())
    message = sha256(("HMAC-SHA256" + str(ts)
                      + sha256(canonical.encode("utf-8")).hexdigest()).encode("utf-8")).digest()
    sig = curve.calculateSignature(os.urandom(64), priv, message)
    assert curve.verifySignature(pub, message, sig) == 0
    target = urllib.parse.urlparse(host + api)
    return {
        "network": network,
        "method": method,
        "target": target.path + ("?" + target.query if target.query else ""),
        "body": sent,
        "time": str(ts),
        "userAgent": USER_AGENT,
        "address": addr,
        "publicKey": base58.b58encode(pub).decode(),
        "signature": base64.b64encode(sig).decode(),
        "canonical": canonical,
        "message": message.hex(),
    }


def new_key():
    priv = curve.generatePrivateKey(os.urandom(32))
    return priv, curve.generatePublicKey(priv)


ORDER_ID = "3f1c2d9e-8a57-4b1e-9c0d-2e6f5a7b8c9d"


def vectors():
    priv, pub = new_key()
    test_priv, test_pub = new_key()
    host = "http://localhost:8080"
    t0 = 1767225600  # 2026-01-01T00:00:00Z
    reqs = [
        ("POST", host, "/api/v1/order/add", None, {
            "serviceID": "0ac3d8e1-d803-4af3-8cd2-f87939131b37",
            "serviceOptions": {"region": "\u4e2d\u56fd-\u9999\u6e2f", "cpu": "2 \u6838",
                               "memory": "4Gi", "note": "He said \"hi\"\\n\t& <b>caf\u00e9</b> \U0001F600 /x"},
            "duration": 720,
            "amount": 12.5,
            "expiredDate": "2026-02-01",
        }),
        ("POST", host, "/api/v1/order/mock", None, {
            "orderId": ORDER_ID,
            "providerAddr": "AR63JhzUU6MxC9mHHMVs3gmRRjVpkXiMcUS",
            "pubKey": "4EyuJtDzQH15qAfnTPgqa8QB4ZU1dzqihdCs13UYEiV4",
            "amt": 1250000000,
        }),
        ("POST", host, "/api/v1/order/userRefund/" + ORDER_ID, None, {}),
        ("GET", host, "/api/v1/order/id/" + ORDER_ID, None, None),
        ("GET", host, "/api/v1/order", {
            "statuses[]": ["OrderPaid", "OrderFiled"],
            "serviceActivated": True,
            "serviceStatuses[]": ["ServicePending", "ServiceRunning"],
            "userServiceStartFrom": "2026-01-01 00:00:00",
            "userServiceEndAt": "",
            "unused": False,
            "current": 1,
            "pageSize": 10,
        }, None),
        ("GET", host, "/api/v1/order/distinct", {
            "distinctField": "serviceID",
            "statuses": ["OrderPaid", "OrderFiled", "OrderComplete"],
        }, None),
        ("GET", host, "/api/v1/service/userAPI/get/secret/status/" + ORDER_ID, None, None),
        ("GET", "http://provider.example:3001/market", "/api/v1/userService/" + ORDER_ID, None, None),
        ("GET", host, "/api/v1/service/provider", {"name": "v-kube \u670d\u52a1 a+b/c", "current": 2}, None),
        ("GET", host, "/api/v1/service/type", None, {"provider": "v-kube-service", "tags": ["a", "b"], "n": None}),
    ]
    out = []
    for i, (method, h, api, params, body) in enumerate(reqs):
        out.append(sign_request(priv, pub, "mainnet", method, h, api, params, body, t0 + i))
    out.append(sign_request(test_priv, test_pub, "testnet", "GET", host,
                            "/api/v1/order/id/" + ORDER_ID, None, None, t0 + 100))
    return {"generator": "pysigner.py (axolotl_curve25519, pycryptodome, base58)", "requests": out}


def live():
    spec = json.load(sys.stdin)
    priv, pub = new_key()
    v = sign_request(priv, pub, spec.get("network", "mainnet"), spec["method"],
                     spec.get("host", "http://localhost"), spec["api"],
                     spec.get("params"), spec.get("body"), int(spec["time"]))
    print(json.dumps(v))


if __name__ == "__main__":
    if sys.argv[1:] == ["--live"]:
        live()
    else:
        print(json.dumps(vectors(), indent=2, ensure_ascii=False))
