#!/usr/bin/python3
"""Generate XEdDSA, address and sealed-box vectors with independent libraries.

Run once with Debian's python3 (not a pyenv shim):

    apt-get install -y python3-axolotl-curve25519 python3-pycryptodome \
        python3-base58 python3-nacl
    /usr/bin/python3 gen_vectors.py > vectors.json

Libraries: axolotl_curve25519 (libsignal's curve25519 C code, the module the
V Cloud client signs with) for keys and signatures; pycryptodome's BLAKE2b
and Keccak and the base58 package (as the client's wallet code uses) for
addresses; PyNaCl (libsodium crypto_box_seal) for sealed boxes.
"""
import base64
import json
import os

import axolotl_curve25519 as curve
import base58
import nacl.public
from Cryptodome.Hash import BLAKE2b, keccak


def hash_chain(data):
    inner = BLAKE2b.new(digest_bits=256, data=data).digest()
    return keccak.new(digest_bits=256, data=inner).digest()


def address(pub, chain_id):
    body = bytes([5]) + chain_id + hash_chain(pub)[:20]
    return base58.b58encode(body + hash_chain(body)[:4]).decode()


def b58(b):
    return base58.b58encode(b).decode()


# The protocol reference's address test vector must hold here too.
ref = base58.b58decode("4EyuJtDzQH15qAfnTPgqa8QB4ZU1dzqihdCs13UYEiV4")
assert address(ref, b"T") == "ATuQXbkZV4dCKsoFtXSCH5eKw92dMXQdUYU"
assert address(ref, b"M") == "AR63JhzUU6MxC9mHHMVs3gmRRjVpkXiMcUS"

messages = [
    b"",
    b"hello",
    os.urandom(32),  # the client signs 32-byte sha256 digests
    os.urandom(32),
    os.urandom(32),
    os.urandom(32),
    "V Cloud \u4e2d\u6587 message".encode("utf-8"),
    os.urandom(200),
]

signatures = []
for msg in messages:
    priv = curve.generatePrivateKey(os.urandom(32))
    pub = curve.generatePublicKey(priv)
    rnd = os.urandom(64)
    sig = curve.calculateSignature(rnd, priv, msg)
    assert curve.verifySignature(pub, msg, sig) == 0
    signatures.append({
        "privateKey": b58(priv),
        "publicKey": b58(pub),
        "message": msg.hex(),
        "random": rnd.hex(),
        "signature": base64.b64encode(sig).decode(),
        "mainnet": address(pub, b"M"),
        "testnet": address(pub, b"T"),
    })

sealed = []
for text in [b"", b"root:s3cret-pa55", "\u5bc6\u7801 password".encode("utf-8")]:
    priv = curve.generatePrivateKey(os.urandom(32))
    pub = curve.generatePublicKey(priv)
    sk = nacl.public.PrivateKey(priv)
    assert bytes(sk.public_key) == pub
    box = nacl.public.SealedBox(sk.public_key).encrypt(text)
    sealed.append({
        "privateKey": b58(priv),
        "publicKey": b58(pub),
        "plaintext": text.hex(),
        "sealed": base64.b64encode(box).decode(),
    })

print(json.dumps({
    "generator": "gen_vectors.py (axolotl_curve25519, pycryptodome, base58, PyNaCl)",
    "signatures": signatures,
    "sealed": sealed,
}, indent=2))
