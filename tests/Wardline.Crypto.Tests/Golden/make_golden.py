# Independent (Python 'cryptography') implementation of docs/formats/envelope.md, used once to produce the golden files.
# Run from tests/Wardline.Crypto.Tests/Golden: python3 make_golden.py (needs the "cryptography" package).
import base64, hashlib, hmac, json
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
b64 = lambda b: base64.b64encode(b).decode()
kek1 = bytes(range(0x00, 0x20)); kek2 = bytes(range(0x20, 0x40)); idx = bytes(range(0x40, 0x60))
dek = bytes(range(0x60, 0x80))
inner = {"activeKek": "kek-golden-2", "keks": [
    {"id": "kek-golden-1", "created": "2025-01-01T00:00:00Z", "key": b64(kek1), "retired": True},
    {"id": "kek-golden-2", "created": "2025-06-01T00:00:00Z", "key": b64(kek2), "retired": False}],
    "indexKey": b64(idx)}
json.dump({"format": "wardline-keyring", "version": 1, "protected": False, "keyring": inner}, open("keyring.json", "w"), indent=2); open("keyring.json","a").write("\n")
salt = bytes(range(0xA0, 0xB0)); nonce = bytes(range(0xB0, 0xBC))
pk = hashlib.pbkdf2_hmac("sha256", "correct horse battery staple".encode(), salt, 600000, 32)
ct = AESGCM(pk).encrypt(nonce, json.dumps(inner, separators=(",", ":")).encode(), b"wardline-keyring/1")
json.dump({"format": "wardline-keyring", "version": 1, "protected": True, "kdf": {"name": "pbkdf2-sha256", "iterations": 600000, "salt": b64(salt)},
           "nonce": b64(nonce), "ciphertext": b64(ct)}, open("keyring-protected.json", "w"), indent=2); open("keyring-protected.json","a").write("\n")
ctx = b"Patient/golden-1"; kid = b"kek-golden-1"; n1 = bytes(range(0xC0, 0xCC))
open("wrapped-key.bin", "wb").write(b"WLK1" + bytes([len(kid)]) + kid + n1 + AESGCM(kek1).encrypt(n1, dek, b"WLK1" + kid + ctx))
aad = b"Patient/golden-1/_history/1"; n2 = bytes(range(0xD0, 0xDC))
pt = b'{"resourceType":"Patient","id":"golden-1","name":[{"family":"M\xc3\xbcller","given":["Jos\xc3\xa9"]}]}'
open("envelope.bin", "wb").write(b"WLE1" + n2 + AESGCM(dek).encrypt(n2, pt, b"WLE1" + aad))
print("blind index name/jose muller:", hmac.new(idx, "name\x1fjose muller".encode(), "sha256").hexdigest()[:32])
