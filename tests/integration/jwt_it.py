"""Client tokens for the integration tests, signed with the `openssl` command line (Debian's
python3 has no JWT or cryptography module here) and the test-only keys in tests/data/."""

import json
import os
import subprocess

from herald_it import REPO, b64url, make_jwt

DATA = os.path.join(REPO, "tests", "data")
RS256_PRIVATE = os.path.join(DATA, "rs256_private.pem")
RS256_PUBLIC = os.path.join(DATA, "rs256_public.pem")
ES256_PRIVATE = os.path.join(DATA, "es256_private.pem")
ES256_PUBLIC = os.path.join(DATA, "es256_public.pem")


def _openssl_sign(private_pem, data):
    r = subprocess.run(["openssl", "dgst", "-sha256", "-sign", private_pem], input=data,
                       capture_output=True, check=True, timeout=10)
    return r.stdout


def _der_ecdsa_to_raw(der):
    """ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } → r || s, 32 bytes each (RFC 7518 §3.4)."""
    def length(buf, i):
        n = buf[i]
        if n < 0x80:
            return n, i + 1
        k = n & 0x7F
        return int.from_bytes(buf[i + 1:i + 1 + k], "big"), i + 1 + k

    assert der[0] == 0x30
    _, i = length(der, 1)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n, i = length(der, i + 1)
        out += der[i:i + n].lstrip(b"\x00").rjust(32, b"\x00")
        i += n
    return out


def sign(alg, claims, header=None, secret=None):
    """A compact JWS of `claims`: HS256 with `secret`, RS256 / ES256 with the test keys."""
    header = header or {"alg": alg, "typ": "JWT"}
    if alg == "HS256":
        return make_jwt(secret, claims, header=header)
    signing = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    if alg == "RS256":
        sig = _openssl_sign(RS256_PRIVATE, signing.encode())
    elif alg == "ES256":
        sig = _der_ecdsa_to_raw(_openssl_sign(ES256_PRIVATE, signing.encode()))
    else:
        raise ValueError(alg)
    return signing + "." + b64url(sig)
