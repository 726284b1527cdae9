#!/usr/bin/env python3
"""An events client written to the Cisco Meeting Server events guide (seed 003), steps 1-9
of its sections 4 and 5, against a recorder. The Rust test (tests/events_api.rs) starts it,
and makes calls happen when the client asks: the client prints `STEP <what>` and waits for
a line on stdin once the test did it. Every expectation that fails exits non-zero with the
message it got. Run with `python3 -u`.

Usage: cms_events_client.py BASE_URL AUTHORIZATION_HEADER_VALUE
"""
import asyncio
import json
import sys
import urllib.error
import urllib.request

import websockets

TIMEOUT = 5.0


def fail(what, got=None):
    print(f"FAIL {what}: {got!r}", flush=True)
    sys.exit(1)


def expect(cond, what, got=None):
    if not cond:
        fail(what, got)
    print(f"ok {what}", flush=True)


def auth_token(base, authorization):
    """Guide §4 steps 1-2: POST /api/v1/authTokens, token in X-Cisco-CMS-Auth-Token."""
    req = urllib.request.Request(base + "/api/v1/authTokens", data=b"", method="POST")
    req.add_header("Authorization", authorization)
    req.add_header("Accept", "*/*")
    with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
        expect(resp.status == 200, "authTokens answers 200", resp.status)
        token = resp.headers.get("X-Cisco-CMS-Auth-Token")
        expect(bool(token), "X-Cisco-CMS-Auth-Token returned", dict(resp.headers))
        return token


def refused_without_credentials(base):
    req = urllib.request.Request(base + "/api/v1/authTokens", data=b"", method="POST")
    try:
        urllib.request.urlopen(req, timeout=TIMEOUT)
    except urllib.error.HTTPError as e:
        return e.code
    return 200


async def step(what):
    print(f"STEP {what}", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if not line:
        fail("test driver gone", what)


class Events:
    def __init__(self, ws):
        self.ws = ws

    async def send_message(self, message_id, body):
        body = dict(body, messageId=message_id)
        await self.ws.send(json.dumps({"type": "message", "message": body}))

    async def recv(self, timeout=TIMEOUT):
        """The next frame; a server message is acknowledged (guide §5 step 4)."""
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        frame = json.loads(raw)
        if frame.get("type") == "message":
            message = frame["message"]
            await self.ws.send(json.dumps({
                "type": "messageAck",
                "messageAck": {"messageId": message["messageId"], "status": "success"},
            }))
        return frame

    async def expect_ack(self, message_id):
        frame = await self.recv()
        expect(frame.get("type") == "messageAck"
               and frame["messageAck"].get("messageId") == message_id
               and frame["messageAck"].get("status") == "success",
               f"messageAck for message {message_id}", frame)

    async def message(self, kind):
        frame = await self.recv()
        expect(frame.get("type") == "message" and frame["message"].get("type") == kind,
               f"a {kind}", frame)
        return frame["message"]

    async def states(self, wanted):
        m = await self.message("subscriptionUpdate")
        got = {s["index"]: s["state"] for s in m["subscriptions"]}
        expect(got == wanted, f"subscriptionUpdate {wanted}", m)

    async def silence(self, seconds):
        try:
            frame = await self.recv(timeout=seconds)
        except asyncio.TimeoutError:
            return None
        return frame


async def run(base, authorization):
    expect(refused_without_credentials(base) == 401, "authTokens without credentials is 401")
    token = auth_token(base, authorization)
    ws_url = base.replace("http", "ws", 1) + "/events/v1?authToken=" + token
    try:
        async with websockets.connect(base.replace("http", "ws", 1) + "/events/v1?authToken=nope"):
            fail("a wrong authToken is refused")
    except websockets.exceptions.InvalidStatus as e:
        expect(e.response.status_code == 401, "a wrong authToken is refused with 401", e)

    async with websockets.connect(ws_url) as ws:
        ev = Events(ws)
        # Guide §5 step 1: subscribe to the calls list.
        await ev.send_message(8, {"type": "subscribeRequest", "subscriptions": [
            {"index": 3, "type": "calls", "elements": ["name", "participants", "recording"]},
        ]})
        await ev.expect_ack(8)                     # step 2
        await ev.states({3: "pending"})            # step 3
        await ev.states({3: "active"})             # step 5
        await step("call")
        # Step 7: a conference (here: a recorded call) starting.
        m = await ev.message("callListUpdate")
        expect(m.get("subscriptionIndex") == 3, "subscriptionIndex 3", m)
        add = m["updates"][0]
        expect(add.get("updateType") == "add" and add.get("call"), "updateType add with call", m)
        expect(set(add) == {"call", "updateType", "name", "participants", "recording"},
               "only the requested elements", add)
        expect(add["recording"] == "active", "recording active", add)
        call = add["call"]
        # Step 9: add callInfo for that call, keep calls under index 3.
        await ev.send_message(9, {"type": "subscribeRequest", "subscriptions": [
            {"index": 2, "type": "callInfo", "call": call, "elements": ["recording", "participants"]},
            {"index": 3, "type": "calls", "elements": ["name", "participants", "recording"]},
        ]})
        await ev.expect_ack(9)
        await ev.states({2: "pending"})
        await ev.states({2: "active"})
        info = await ev.message("callInfoUpdate")
        expect(info.get("subscriptionIndex") == 2 and info["callInfo"].get("recording") == "active",
               "callInfo recording active", info)
        await step("pause")
        seen = {}
        for _ in range(2):
            m = await ev.message_any()
            seen[m["type"]] = m
        upd = seen.get("callListUpdate", {}).get("updates", [{}])[0]
        expect(upd.get("updateType") == "update" and upd.get("call") == call
               and upd.get("recording") == "inactive", "update: recording inactive", seen)
        expect("name" not in upd, "an update carries only what changed", upd)
        expect(seen.get("callInfoUpdate", {}).get("callInfo", {}).get("recording") == "inactive",
               "callInfo recording inactive", seen)
        await step("resume")
        seen = {}
        for _ in range(2):
            m = await ev.message_any()
            seen[m["type"]] = m
        upd = seen.get("callListUpdate", {}).get("updates", [{}])[0]
        expect(upd.get("updateType") == "update" and upd.get("recording") == "active",
               "update: recording active again", seen)
        await step("hangup")
        seen = {}
        for _ in range(2):
            m = await ev.message_any()
            seen[m["type"]] = m
        rem = seen.get("callListUpdate", {}).get("updates", [{}])[0]
        expect(rem == {"call": call, "updateType": "remove"}, "updateType remove", seen)
        subs = seen.get("subscriptionUpdate", {}).get("subscriptions")
        expect(subs == [{"index": 2, "state": "deactivated"}],
               "callInfo deactivated when the call ends", seen)
        # Guide §1.1: an empty request stops all subscriptions.
        await ev.send_message(10, {"type": "subscribeRequest", "subscriptions": []})
        await ev.expect_ack(10)
        await ev.states({3: "deactivated"})
        await step("another call")
        extra = await ev.silence(2.0)
        expect(extra is None, "nothing after stopping every subscription", extra)
    print("PASS", flush=True)


async def message_any(self):
    frame = await self.recv()
    expect(frame.get("type") == "message", "a message", frame)
    return frame["message"]


Events.message_any = message_any

if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    asyncio.run(run(sys.argv[1], sys.argv[2]))
