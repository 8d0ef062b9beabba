#!/usr/bin/env python3
"""A secret sealed the way pgext 1.0 sealed account secrets (format 0x01),
for sql/data_rights.sql: 1.1 must still read it, and secret_rewrap must
reseal it as 0x02 with the account's salt.

Uses the test-only master keys of test/keys.sh.  Format and AAD: src/secrets/box.h;
key derivation: src/secrets/keyring.c (root key, then the unsalted account key).
Run: python3 test/vectors/gen_legacy_secret.py   (prints the sealed value as hex)
"""
import struct
import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

VERSION = 2
MASTER = bytes.fromhex("202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f")
SECRET_ID = uuid.UUID("5ec2e7a1-0000-4000-8000-000000000001")
ACCOUNT = uuid.UUID("0ddba11a-0000-4000-8000-000000000001")
NAME = b"legacy:api_key"
PLAIN = b"sk-legacy-1.0-value-0123456789"
NONCE = bytes(range(12))

root = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"pgext-keyring",
            info=b"pgext/secrets/root" + struct.pack(">I", VERSION)).derive(MASTER)
key = HKDFExpand(algorithm=hashes.SHA256(), length=32,
                 info=b"pgext/secrets/aes-256-gcm" + struct.pack(">I", VERSION) + b"\x01"
                 + ACCOUNT.bytes).derive(root)
aad = (b"pgext.secret.v1" + struct.pack(">I", VERSION) + SECRET_ID.bytes + b"\x01" + ACCOUNT.bytes
       + b"\x00" + struct.pack(">Q", 0) + struct.pack(">I", len(NAME)) + NAME)
sealed = b"\x01" + NONCE + AESGCM(key).encrypt(NONCE, PLAIN, aad)
print(sealed.hex())
