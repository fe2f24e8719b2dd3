"""``signalite trace CHANNEL [--json]``: follow one channel live, with SDP and ICE decoded.

The server sends each event of the channel (``signalite.operator.trace``); this module decodes
what a WebRTC developer needs to see when "the video never starts" — the SDP's media sections,
codecs, ICE ufrag, DTLS fingerprint and candidates, each trickled ICE candidate's foundation,
component, protocol, priority, address, port, type and related address — and the timing between
the steps of each master–viewer exchange (offer → answer → first candidate each way).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import ssl
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import urlencode

# --- decoding (pure) ---------------------------------------------------------------------------


def parse_candidate(line: str) -> dict[str, Any] | None:
    """An ICE candidate attribute (``candidate:…`` or ``a=candidate:…``), or None if it is not one."""
    text = line.strip()
    for prefix in ("a=", "candidate:"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    if text.startswith("candidate:"):
        text = text[len("candidate:"):]
    parts = text.split()
    if len(parts) < 8 or parts[6] != "typ":
        return None
    out: dict[str, Any] = {"foundation": parts[0], "component": _int(parts[1]), "protocol": parts[2].lower(),
                           "priority": _int(parts[3]), "address": parts[4], "port": _int(parts[5]), "type": parts[7]}
    rest = parts[8:]
    for key, value in zip(rest[::2], rest[1::2]):
        if key == "raddr":
            out["relatedAddress"] = value
        elif key == "rport":
            out["relatedPort"] = _int(value)
        elif key == "tcptype":
            out["tcpType"] = value
    return out


def _int(value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value


def parse_sdp(sdp: str) -> dict[str, Any]:
    """The parts of an SDP that matter for a connection that does not come up."""
    session: dict[str, Any] = {"media": [], "ufrag": None, "fingerprint": None, "candidates": []}
    media: dict[str, Any] | None = None
    for raw in sdp.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if line.startswith("m="):
            fields = line[2:].split()
            media = {"kind": fields[0] if fields else "?", "port": _int(fields[1]) if len(fields) > 1 else None,
                     "protocol": fields[2] if len(fields) > 2 else None, "codecs": [], "direction": None, "mid": None}
            session["media"].append(media)
        elif line.startswith("a=rtpmap:") and media is not None:
            _, _, codec = line.partition(" ")
            name = codec.split("/")[0]
            if name and name not in media["codecs"]:
                media["codecs"].append(name)
        elif line.startswith("a=ice-ufrag:"):
            ufrag = line.split(":", 1)[1]
            session["ufrag"] = session["ufrag"] or ufrag
            if media is not None:
                media["ufrag"] = ufrag
        elif line.startswith("a=fingerprint:"):
            session["fingerprint"] = session["fingerprint"] or line.split(":", 1)[1]
        elif line.startswith("a=candidate:"):
            candidate = parse_candidate(line)
            if candidate is not None:
                session["candidates"].append(candidate)
        elif line.startswith("a=mid:") and media is not None:
            media["mid"] = line.split(":", 1)[1]
        elif line in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive") and media is not None:
            media["direction"] = line[2:]
    return session


def decode_payload(message_type: str | None, payload: str | None) -> dict[str, Any]:
    """``sdp`` (parsed) for an offer or answer, ``candidate`` for an ICE candidate, or ``raw``."""
    if not payload:
        return {}
    try:
        value = json.loads(base64.b64decode(payload, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return {"raw": payload[:120]}
    if not isinstance(value, dict):
        return {"raw": str(value)[:120]}
    if message_type in ("SDP_OFFER", "SDP_ANSWER") and isinstance(value.get("sdp"), str):
        return {"sdp": parse_sdp(value["sdp"])}
    if message_type == "ICE_CANDIDATE" and isinstance(value.get("candidate"), str):
        candidate = parse_candidate(value["candidate"])
        return {"candidate": candidate} if candidate else {"endOfCandidates": value["candidate"] == ""}
    return {}


@dataclass
class Timeline:
    """Per viewer: when the offer, the answer and each side's first candidate went by."""

    steps: dict[str, dict[str, float]] = field(default_factory=dict)

    def step(self, event: dict[str, Any]) -> str | None:
        """Record ``event``; a note like ``answer +84 ms after the offer`` when it is a step."""
        if event.get("event") != "sent" or not isinstance(event.get("time"), (int, float)):
            return None
        kind, sender, recipient, at = event.get("messageType"), event.get("sender"), event.get("recipient"), event["time"]
        viewer = sender if sender is not None else recipient
        if viewer is None:
            return None
        steps = self.steps.setdefault(viewer, {})
        from_master = sender is None
        name = {("SDP_OFFER", False): "offer", ("SDP_OFFER", True): "offer",
                ("SDP_ANSWER", True): "answer", ("SDP_ANSWER", False): "answer",
                ("ICE_CANDIDATE", True): "first candidate master→viewer",
                ("ICE_CANDIDATE", False): "first candidate viewer→master"}.get((str(kind), from_master))
        if name is None or name in steps:
            return None
        steps[name] = at
        if name == "offer":
            return None
        offer = steps.get("offer")
        return f"{name} +{(at - offer) * 1000:.0f} ms after the offer" if offer is not None else None


def describe(event: dict[str, Any]) -> str:
    """One human line for an event."""
    at = event.get("time")
    stamp = datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S.%f")[:-3] if isinstance(at, (int, float)) else "--:--:--"
    kind = event.get("event", "?")

    def who(client_id: Any) -> str:
        return "master" if client_id is None else str(client_id)

    if kind in ("connect", "disconnect"):
        extra = f" from {event['remote']}" if event.get("remote") else ""
        extra += f" ({event['reason']})" if event.get("reason") else ""
        extra += f"  [{event['node']}]" if event.get("node") else ""
        return f"{stamp}  {kind:<10} {event.get('role', '?'):<7} {who(event.get('sender'))}{extra}"
    if kind == "following":
        return f"following {event.get('channel')} (Ctrl-C to stop)"
    line = f"{stamp}  {kind:<10} {event.get('messageType') or '?':<13} {who(event.get('sender'))} → {who(event.get('recipient'))}"
    decoded = event.get("decoded") or {}
    sdp = decoded.get("sdp")
    if sdp:
        media = " ".join(f"{m['kind']}({','.join(m['codecs'][:4])}{',' + m['direction'] if m.get('direction') else ''})"
                         for m in sdp["media"])
        fingerprint = (sdp["fingerprint"] or "")[:26]
        line += f"  {media}  ufrag={sdp['ufrag']}  fp={fingerprint}…  {len(sdp['candidates'])} candidates"
        for c in sdp["candidates"][:6]:
            line += f"\n{'':16}candidate {_candidate_text(c)}"
    candidate = decoded.get("candidate")
    if candidate:
        line += f"  {_candidate_text(candidate)}"
    if event.get("detail"):
        line += f"  ({event['detail']})"
    if event.get("node"):
        line += f"  [{event['node']}]"  # in a cluster, the node it happened on
    return line


def _candidate_text(c: dict[str, Any]) -> str:
    text = f"{c['type']} {c['protocol']} {c['address']}:{c['port']} prio {c['priority']} foundation {c['foundation']} comp {c['component']}"
    if c.get("relatedAddress"):
        text += f" via {c['relatedAddress']}:{c.get('relatedPort')}"
    return text


def enrich(event: dict[str, Any], timeline: Timeline) -> dict[str, Any]:
    """The event with its payload decoded (``decoded``) and its step timing (``step``)."""
    out = dict(event)
    decoded = decode_payload(event.get("messageType"), event.get("payload"))
    if decoded:
        out["decoded"] = decoded
    step = timeline.step(event)
    if step:
        out["step"] = step
    return out


# --- the command (thin I/O) ----------------------------------------------------------------------


def add_trace_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .admin import add_target_arguments

    cmd = sub.add_parser("trace", help="follow one channel live: connects, disconnects, messages, SDP and ICE decoded")
    cmd.add_argument("channel", metavar="CHANNEL", help="the channel's name or ARN")
    cmd.add_argument("--json", action="store_true", help="one JSON object per event")
    cmd.add_argument("--region", default=None, help="region of a channel given by name (default: the environment's)")
    cmd.add_argument("--count", type=int, default=None, help=argparse.SUPPRESS)  # stop after N events (tests)
    add_target_arguments(cmd)
    cmd.set_defaults(func=cmd_trace)


def cmd_trace(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_trace(args, sys.stdout))
    except KeyboardInterrupt:
        return 0


async def _trace(args: argparse.Namespace, out: TextIO) -> int:
    import aiohttp
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from .admin import AdminClient, CliError
    from .aws import arn as arns
    from .operator.trace import TRACE_PATH

    client = AdminClient.from_args(args)
    region = args.region or "us-west-2"
    arn = args.channel
    parsed = arns.parse(arn)
    if parsed is None:
        arn = _arn_for_name(client, arn, region)
        parsed = arns.parse(arn)
    region = parsed.region if parsed else region
    request = AWSRequest(method="GET", url=client.url + TRACE_PATH + "?" + urlencode({"X-Amz-ChannelARN": arn}))
    SigV4QueryAuth(Credentials(client.access_key_id, client.secret_access_key), "kinesisvideo", region,
                   expires=300).add_auth(request)
    url = str(request.url).replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    context = ssl.create_default_context(cafile=client.ca) if client.ca and url.startswith("wss://") else None
    timeline = Timeline()
    seen = 0
    try:
        async with aiohttp.ClientSession() as session, session.ws_connect(url, ssl=context or True,
                                                                          heartbeat=20) as ws:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                event = enrich(json.loads(msg.data), timeline)
                if args.json:
                    out.write(json.dumps(event) + "\n")
                else:
                    out.write(describe(event) + "\n")
                    if event.get("step"):
                        out.write(f"{'':16}{event['step']}\n")
                out.flush()
                seen += 1
                if args.count is not None and seen >= args.count:
                    break
    except aiohttp.WSServerHandshakeError as exc:
        raise CliError(f"signalite trace: {exc.status} {exc.message}") from None
    except aiohttp.ClientError as exc:
        raise CliError(f"signalite trace: cannot reach {client.url}: {exc}") from None
    return 0


def _arn_for_name(client: Any, name: str, region: str) -> str:
    import botocore.session

    from .admin import CliError

    kv: Any = botocore.session.get_session().create_client(
        "kinesisvideo", region_name=region, endpoint_url=client.url, verify=client.ca or True,
        aws_access_key_id=client.access_key_id, aws_secret_access_key=client.secret_access_key)
    try:
        return str(kv.describe_signaling_channel(ChannelName=name)["ChannelInfo"]["ChannelARN"])
    except kv.exceptions.ResourceNotFoundException:
        raise CliError(f"signalite trace: no channel named {name} in {region}") from None
