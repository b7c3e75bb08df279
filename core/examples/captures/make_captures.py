#!/usr/bin/env python3
"""Builds the demo captures from frames of the protocol vectors (core/tests/vectors.json).

v1_engine_to_worker.bin: what a 0.12 engine sends a worker: a heartbeat reply and an
invoke with the runtime's trace headers, a request chunk, close, terminate, then a late
write on the closed channel (dropped) and the first bytes of an unfinished frame.
v0_engine_to_worker.bin: the same life in the 0.11 dialect.
"""
import json, os

here = os.path.dirname(os.path.abspath(__file__))
vec = {v["name"]: v for v in json.load(open(os.path.join(here, "../../tests/vectors.json")))}
h = lambda name: bytes.fromhex(vec[name]["hex"])

v1 = (h("v1_heartbeat_reply_runtime_headers")
      + h("v1_invoke_runtime_headers")
      + h("v1_write_engine_to_worker")[9:]          # drop its own invoke (9 bytes)
      + h("v1_close_engine_to_worker")[9:]
      + h("v1_terminate_engine")
      + bytes.fromhex("93020091a46c617465")        # write("late") on the closed channel 2
      + bytes.fromhex("930300"))                   # an unfinished frame
v0 = (h("v0_heartbeat_reply")
      + h("v0_choke_engine_to_worker")
      + h("v0_terminate_engine_normal"))
open(os.path.join(here, "v1_engine_to_worker.bin"), "wb").write(v1)
open(os.path.join(here, "v0_engine_to_worker.bin"), "wb").write(v0)
