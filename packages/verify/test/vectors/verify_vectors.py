"""Checks the committed test vectors with Python's `cryptography`, written
from docs/formats.md alone: a second, independent implementation of the
verifier. Prints one line per check and exits non-zero on any failure.

    python3 test/vectors/verify_vectors.py
"""
import base64
import hashlib
import json
import pathlib
import re
import sys

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HERE = pathlib.Path(__file__).parent


def b64url(text):
    if "=" in text or not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def dearmor(text, label):
    begin, end = f"-----BEGIN {label}-----", f"-----END {label}-----"
    body = text[text.index(begin) + len(begin):text.index(end)]
    return base64.b64decode(re.sub(r"[ \t\r\n]", "", body), validate=True)


KEYS = {k["id"]: Ed25519PublicKey.from_public_bytes(b64url(k["public_key"]))
        for k in json.loads((HERE / "signing-keys.json").read_text())["data"]}


def ed25519_ok(kid, signature, message):
    try:
        KEYS[kid].verify(signature, message)
        return True
    except InvalidSignature:
        return False


def verify_key(key):
    key = key.strip()
    m = re.fullmatch(r"KM1\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{86})", key)
    if not m:
        return "MALFORMED", None
    claims = json.loads(b64url(m.group(1)).decode("utf-8"))
    if claims["kid"] not in KEYS:
        return "UNKNOWN_KEY_ID", None
    if not ed25519_ok(claims["kid"], b64url(m.group(2)), key.rsplit(".", 1)[0].encode("ascii")):
        return "BAD_SIGNATURE", None
    return "VALID", claims


def verify_file(text, license_key, fingerprint, now, skew=300):
    envelope = json.loads(dearmor(text, "KEYMINT LICENSE FILE").decode("utf-8"))
    if envelope["kid"] not in KEYS:
        return "UNKNOWN_KEY_ID", None
    if not ed25519_ok(envelope["kid"], b64url(envelope["sig"]), ("license/" + envelope["enc"]).encode("ascii")):
        return "BAD_SIGNATURE", None
    reason, claims = verify_key(license_key)
    if reason != "VALID":
        return "WRONG_KEY", None
    data = b64url(envelope["enc"])
    if envelope["alg"] == "aes-256-gcm+ed25519":
        candidates = ([license_key.encode() + fingerprint.encode()] if fingerprint else []) + [license_key.encode()]
        for material in candidates:
            try:
                # AESGCM takes ciphertext ‖ tag, exactly as enc carries it after the IV.
                data = AESGCM(hashlib.sha256(material).digest()).decrypt(data[:12], data[12:], None)
                break
            except InvalidTag:
                continue
        else:
            return "WRONG_DEVICE", None
    payload = json.loads(data.decode("utf-8"))
    if payload["license"]["id"] != claims["lid"]:
        return "WRONG_KEY", None
    if payload["device"] is not None and payload["device"]["fingerprint"] != fingerprint:
        return "WRONG_DEVICE", None
    if payload["issued"] > now + skew:
        return "NOT_YET_VALID", None
    if now >= min(payload["expires"], payload["issued"] + payload["ttl"]):
        return "EXPIRED", None
    return "VALID", payload


def verify_response(response, now, tolerance=300):
    header = dict(part.split("=", 1) for part in response["headers"]["Keymint-Signature"].split(","))
    request = response["request"]
    if header["nonce"] != request["headers"]["Keymint-Accept-Signature"]:
        return "NONCE_MISMATCH"
    message = f"keymint-response/v1\n{request['method']} {request['path']}\n{header['t']}\n{header['nonce']}\n".encode() + response["body"].encode("utf-8")
    if not ed25519_ok(header["kid"], b64url(header["sig"]), message):
        return "BAD_SIGNATURE"
    return "STALE" if int(header["t"]) < now - tolerance else "VALID"


def main():
    vectors = json.loads((HERE / "vectors.json").read_text())
    key = (HERE / "license-key.txt").read_text().strip()
    at, fp = vectors["verify_at"], vectors["fingerprint"]
    checks = {
        "license key": verify_key(key)[0] == "VALID",
        "license key signed by the retired key": verify_key(vectors["license_key_signed_by_retired_key"]["key"])[0] == "VALID",
        "plain file": verify_file((HERE / "license-file-plain.lic").read_text(), key, None, at) == ("VALID", vectors["license_files"]["plain"]["payload"]),
        "encrypted file": verify_file((HERE / "license-file-encrypted.lic").read_text(), key, None, at) == ("VALID", vectors["license_files"]["plain"]["payload"]),
        "device-bound file": verify_file((HERE / "license-file-device.lic").read_text(), key, fp, at) == ("VALID", vectors["license_files"]["device_bound"]["payload"]),
        "device-bound file on another device": verify_file((HERE / "license-file-device.lic").read_text(), key, "other", at)[0] == "WRONG_DEVICE",
        "file of another license": verify_file((HERE / "license-file-plain.lic").read_text(), vectors["license_key_of_another_license"]["key"], None, at)[0] == "WRONG_KEY",
        "expired file": verify_file((HERE / "license-file-plain.lic").read_text(), key, None, at + 14 * 86400)[0] == "EXPIRED",
        "signed response": verify_response(json.loads((HERE / "signed-response.json").read_text()), 1767225660) == "VALID",
        "activation request": json.loads(dearmor((HERE / "activation-request.txt").read_text(), "KEYMINT ACTIVATION REQUEST")) == json.loads(vectors["activation_request"]["json"]),
    }
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    passed = sum(checks.values())
    print(f"{passed} passed, {len(checks) - passed} failed")
    return 0 if passed == len(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
