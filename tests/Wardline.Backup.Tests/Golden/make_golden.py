# Independent (Python 'cryptography' + the zstd command) implementation of docs/formats/backup.md, used once to
# produce the golden segment and manifest. Run from tests/Wardline.Backup.Tests/Golden: python3 make_golden.py
# keyring.json is the Crypto golden keyring (kek-golden-2 active, bytes 0x20..0x3f; index key 0x40..0x5f).
import hashlib, hmac, json, struct, subprocess, base64
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives import hashes

kek2 = bytes(range(0x20, 0x40)); idx = bytes(range(0x40, 0x60)); dek = bytes(range(0x80, 0xA0))

def uleb(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F; n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n: return bytes(out)

def s(text): b = text.encode(); return uleb(len(b)) + b

def value(v):
    if v is None: return b"\x00"
    if isinstance(v, bool) or isinstance(v, int): return b"\x01" + uleb(int(v))
    if isinstance(v, float): return b"\x02" + struct.pack("<d", v)
    if isinstance(v, str): return b"\x03" + s(v)
    if isinstance(v, bytes): return b"\x04" + uleb(len(v)) + v
    raise TypeError(v)

def block(table, mode, columns, rows, keycols=(), keys=()):
    out = b"B" + s(table) + s(mode) + uleb(len(columns)) + b"".join(s(c) for c in columns)
    out += uleb(len(keycols)) + b"".join(s(c) for c in keycols)
    for k in keys: out += b"K" + b"".join(value(v) for v in k)
    for r in rows: out += b"R" + b"".join(value(v) for v in r)
    return out + b"E"

payload = block("ledger_export_cursors", "replace", ["name", "acknowledged", "updated"],
                [["siem-golden", -1, 1735689600000], ["jsonl-golden", 41, None]])
payload += block("access_facts", "upsert", ["rid", "department", "labels", "restricted", "research_consent", "staff_user"],
                 [[7, "cardiology", "PSY HIV", 0, 1, None]], keycols=["rid"], keys=[[7], [8]])
payload += block("ledger_nodes", "insert", ["level", "idx", "hash"], [[4, 0, bytes(range(32))]])
compressed = subprocess.run(["zstd", "-3", "-q", "-c"], input=payload, capture_output=True, check=True).stdout

backup_id = "20250101-000000000-00000000"
name = f"segments/{backup_id}/table-golden.seg"
ctx = ("wardline.backup.segment/" + name).encode(); kid = b"kek-golden-2"; n1 = bytes(range(0xC0, 0xCC))
wrapped = b"WLK1" + bytes([len(kid)]) + kid + n1 + AESGCM(kek2).encrypt(n1, dek, b"WLK1" + kid + ctx)
header = json.dumps({"format": 1, "name": name, "backup": backup_id, "compression": "zstd", "cipher": "aes-256-gcm",
                     "wrappedKey": base64.b64encode(wrapped).decode(), "plainLength": len(payload)}, separators=(",", ":")).encode()
aad = b"WLBKSEG1" + struct.pack(">I", len(header)) + header
n2 = bytes(range(0xD0, 0xDC))
segment = aad + b"WLE1" + n2 + AESGCM(dek).encrypt(n2, compressed, b"WLE1" + aad)
open("segment.seg", "wb").write(segment)

def derived(purpose):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"", info=("wardline.derived.v1/" + purpose).encode()).derive(idx)

fingerprint = hmac.new(derived("backup.fingerprint"), payload, "sha256").hexdigest()
body = json.dumps({
    "format": 1, "id": backup_id, "created": "2025-01-01T00:00:00+00:00", "kind": "full", "chain": backup_id,
    "engine": "sqlite", "schema": 8, "ledgerFrom": 0, "ledgerSize": 7,
    "ledgerRoot": hashlib.sha256(b"golden root").hexdigest(),
    "keks": ["kek-golden-1", "kek-golden-2"],
    "objects": [{"name": name, "sha256": hashlib.sha256(segment).hexdigest(), "bytes": len(segment), "kind": "table",
                 "table": "golden", "rows": 3, "fingerprint": fingerprint}],
    "immutability": "golden: not locked"}, separators=(",", ":")).encode()
tag = hmac.new(derived("backup.manifest"), body, "sha256").hexdigest()
open("manifest.json", "wb").write(body + b"\nhmac-sha256 " + tag.encode() + b"\n")
print("segment", len(segment), "bytes; payload", len(payload), "bytes; fingerprint", fingerprint)
