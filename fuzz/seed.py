#!/usr/bin/env python3
"""Builds the seed corpora of the fuzz targets from the protocol test vectors.

Reads core/tests/vectors.json if the repository has one, else
shared/protocol/vectors.json beside the repository (../shared/protocol from
its root), and writes:

* corpus/decode/: each vector's bytes behind the control byte the decode
  target reads (bit 0 dialect, bit 1 lenient, bit 2 receiving role, bits
  3-7 split pattern), once split by the content and once a byte per read,
  plus a lenient copy of every invalid vector and one stream per dialect
  made of all its valid vectors back to back;
* corpus/session/: every decode seed with a session-limit byte (2) after
  its control byte (the session target's layout);
* corpus/headers/: the header list of every v1 frame that has one, behind
  a capacity byte (64 -> 256 bytes, 255 -> 1020 bytes).

Vectors without bytes (hex null: the 1 MiB generated ones) are skipped.
Stdlib only; the corpus folders are not committed. Usage:
    python3 fuzz/seed.py [--vectors PATH] [--out DIR]
"""

import argparse
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Split patterns (bits 3-7 of the control byte, see sluice_fuzz::chunks).
SPLIT_BY_CONTENT = 3  # mode 3, param 0
SPLIT_BYTEWISE = 0  # mode 0, param 0: one byte per read


def find_vectors():
    for p in (
        os.path.join(ROOT, "core", "tests", "vectors.json"),
        os.path.join(ROOT, "..", "shared", "protocol", "vectors.json"),
    ):
        if os.path.exists(p):
            return os.path.normpath(p)
    return None


def control(vector, split, lenient=False):
    c = 1 if vector.get("dialect") == "v1" else 0
    if lenient:
        c |= 2
    # Frames a worker sends are received by the engine; everything else
    # (engine->worker, service traffic, "any") by a worker-role session.
    if vector.get("direction") == "worker->engine":
        c |= 4
    return c | (split << 3)


def value_len(buf, pos):
    """Length of the msgpack value at buf[pos:], or None if incomplete."""
    start = pos
    todo = 1
    while todo:
        if pos >= len(buf):
            return None
        m = buf[pos]
        pos += 1
        todo -= 1
        if m <= 0x7F or m >= 0xE0 or m in (0xC0, 0xC2, 0xC3):
            continue
        if 0x80 <= m <= 0x8F:
            todo += 2 * (m & 0x0F)
        elif 0x90 <= m <= 0x9F:
            todo += m & 0x0F
        elif 0xA0 <= m <= 0xBF:
            pos += m & 0x1F
        elif m in (0xC4, 0xC5, 0xC6, 0xD9, 0xDA, 0xDB):
            w = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}[m]
            if pos + w > len(buf):
                return None
            pos += w + int.from_bytes(buf[pos:pos + w], "big")
        elif m in (0xC7, 0xC8, 0xC9):
            w = {0xC7: 1, 0xC8: 2, 0xC9: 4}[m]
            if pos + w > len(buf):
                return None
            pos += w + 1 + int.from_bytes(buf[pos:pos + w], "big")
        elif m in (0xCA, 0xCB, 0xCC, 0xCD, 0xCE, 0xCF, 0xD0, 0xD1, 0xD2, 0xD3):
            pos += {0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8,
                    0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}[m]
        elif 0xD4 <= m <= 0xD8:
            pos += 1 + (1 << (m - 0xD4))
        elif m in (0xDC, 0xDD, 0xDE, 0xDF):
            w = 2 if m in (0xDC, 0xDE) else 4
            if pos + w > len(buf):
                return None
            n = int.from_bytes(buf[pos:pos + w], "big")
            pos += w
            todo += 2 * n if m in (0xDE, 0xDF) else n
        else:  # 0xc1
            return None
    return pos - start if pos <= len(buf) else None


def header_lists(data):
    """The header lists of the complete v1 frames of fixed-array arity 4+."""
    pos = 0
    while pos < len(data):
        n = value_len(data, pos)
        if n is None:
            return
        m = data[pos]
        if 0x94 <= m <= 0x9F:
            p = pos + 1
            for _ in range(3):
                p += value_len(data, p)
            k = value_len(data, p)
            yield data[p:p + k]
        pos += n


def write(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vectors", help="path of vectors.json (default: found as described above)")
    ap.add_argument("--out", default=os.path.join(HERE, "corpus"), help="corpus root (default: fuzz/corpus)")
    args = ap.parse_args()

    path = args.vectors or find_vectors()
    if not path:
        print("seed.py: no vectors.json found; corpora left as they are", file=sys.stderr)
        return 0
    with open(path) as f:
        vectors = json.load(f)

    decode = os.path.join(args.out, "decode")
    headers = os.path.join(args.out, "headers")
    counts = {"decode": 0, "headers": 0, "skipped": 0}
    streams = {"v0": bytearray(), "v1": bytearray()}
    for v in vectors:
        if v.get("hex") is None:
            counts["skipped"] += 1
            continue
        data = bytes.fromhex(v["hex"])
        name = v["name"]
        write(decode, name, bytes([control(v, SPLIT_BY_CONTENT)]) + data)
        write(decode, name + ".bytewise", bytes([control(v, SPLIT_BYTEWISE)]) + data)
        counts["decode"] += 2
        if not v.get("valid", True):
            write(decode, name + ".lenient", bytes([control(v, SPLIT_BY_CONTENT, lenient=True)]) + data)
            counts["decode"] += 1
        elif v.get("dialect") in streams and not v.get("decoded", {}).get("incomplete_tail_hex"):
            streams[v["dialect"]] += data
        if v.get("dialect") == "v1":
            for i, lst in enumerate(header_lists(data)):
                for cap in (64, 255):
                    write(headers, "%s.%d.%d" % (name, i, cap), bytes([cap]) + lst)
                    counts["headers"] += 1
    for dialect, data in streams.items():
        if data:
            ctl = (1 if dialect == "v1" else 0) | (2 << 3)  # mode 2, param 0: small random reads
            write(decode, "all_valid_" + dialect, bytes([ctl]) + bytes(data))
            counts["decode"] += 1

    session = os.path.join(args.out, "session")
    for name in sorted(os.listdir(decode)) if os.path.isdir(decode) else []:
        with open(os.path.join(decode, name), "rb") as f:
            seed = f.read()
        if seed:
            write(session, name, seed[:1] + bytes([2]) + seed[1:])
            counts["session"] = counts.get("session", 0) + 1

    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()[:12]
    print("seed.py: %s (sha256 %s): %d decode seeds, %d session seeds, %d headers seeds, %d vectors without bytes skipped"
          % (path, digest, counts["decode"], counts.get("session", 0), counts["headers"], counts["skipped"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
