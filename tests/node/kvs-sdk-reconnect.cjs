// The official KVS WebRTC SDK for JavaScript (amazon-kinesis-video-streams-webrtc) as master and/or
// viewer of one channel, reconnecting after every close as the SDK's master sample does
// ("Reopen signaling connection": signalingClient.on('close', () => signalingClient.open())).
//
// Usage: node kvs-sdk-reconnect.cjs <channel-name> <master|viewer|master,viewer> [--viewer-id ID] [--create]
//        [--timeout SECONDS]
// Credentials, region, AWS_ENDPOINT_URL_KINESIS_VIDEO and NODE_EXTRA_CA_CERTS come from the environment.
//
// The channel is resolved by name with the AWS SDK v3 (DescribeSignalingChannel,
// GetSignalingChannelEndpoint), as the SDK's samples do when they start. After a close that
// followed an open, the same SignalingClient is simply re-opened (the sample's behaviour, no
// delay). Only when a re-open itself fails (the server is restarting, draining or the channel is
// gone) does the script back off (0.1 s doubling to 1 s; the sample has no backoff) and resolve the
// channel again — with --create it re-creates a missing channel (TTL 60), as the C SDK does on a
// 404 — building a new SignalingClient if the ARN changed.
//
// Prints one JSON object per line on stdout, as things happen:
//   {"event":"open","role":R,"opens":N}       {"event":"close","role":R,"closes":N,"code":C,"reason":S}
//   {"event":"frame","role":R,"messageType":"GO_AWAY"|"RECONNECT_ICE_SERVER"}   (seen on the socket)
//   {"event":"exchanged","tag":T}             the viewer got the master's answer to its offer T
//   {"event":"summary", ...}                  on "quit" or timeout: opens, closes, goAways, errors
// Commands on stdin, one per line: "exchange TAG" (the viewer sends an offer with sdp TAG; the master
// answers "answer-to:TAG"; the offer is re-sent if the viewer reconnects before the answer), "quit".
//
// SDK 2.9.0's SignalingClient has no GO_AWAY / RECONNECT_ICE_SERVER handling: its onMessage drops
// any frame with neither a messagePayload nor a statusResponse, so both frames are silently
// ignored and only the close that follows makes it emit 'close'. To see them anyway, the WebSocket
// class the SDK instantiates is wrapped to observe (not alter) every frame and close code.
const WS = require("ws");
const KVS = require("amazon-kinesis-video-streams-webrtc");
const {
  KinesisVideoClient, DescribeSignalingChannelCommand, CreateSignalingChannelCommand,
  GetSignalingChannelEndpointCommand,
} = require("@aws-sdk/client-kinesis-video");

const args = process.argv.slice(2);
const channelName = args[0];
const roles = (args[1] || "master,viewer").split(",");
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const viewerId = opt("--viewer-id", "node-viewer");
const createMissing = args.includes("--create");
const timeoutSeconds = Number(opt("--timeout", "120"));

const credentials = { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY };
const region = process.env.AWS_REGION;
const kv = new KinesisVideoClient({});
const state = {};
for (const r of roles) state[r] = { opens: 0, closes: 0, codes: [], goAways: 0, reconnectIce: 0, client: null, arn: null, failures: 0 };
const errors = [];
const emit = obj => process.stdout.write(JSON.stringify(obj) + "\n");

// Observe the SDK's sockets: which role a socket belongs to is in its URL (a viewer's carries X-Amz-ClientId).
class ObservedWebSocket extends WS {
  constructor(url, ...rest) {
    super(url, ...rest);
    const role = String(url).includes("X-Amz-ClientId=") ? "viewer" : "master";
    this.on("message", data => {
      let type;
      try { type = JSON.parse(String(data)).messageType; } catch (e) { return; }
      if (type === "GO_AWAY" || type === "RECONNECT_ICE_SERVER") {
        if (state[role]) state[role][type === "GO_AWAY" ? "goAways" : "reconnectIce"]++;
        emit({ event: "frame", role, messageType: type });
      }
    });
    this.on("close", (code, reason) => { if (state[role]) state[role].lastClose = { code, reason: String(reason) }; });
  }
}
globalThis.WebSocket = ObservedWebSocket;

async function resolve(role) {
  let info;
  try {
    info = await kv.send(new DescribeSignalingChannelCommand({ ChannelName: channelName }));
  } catch (e) {
    if (e.name !== "ResourceNotFoundException" || !createMissing) throw e;
    try {
      await kv.send(new CreateSignalingChannelCommand({ ChannelName: channelName, SingleMasterConfiguration: { MessageTtlSeconds: 60 } }));
    } catch (c) {
      if (c.name !== "ResourceInUseException") throw c; // the other role created it first
    }
    info = await kv.send(new DescribeSignalingChannelCommand({ ChannelName: channelName }));
  }
  const arn = info.ChannelInfo.ChannelARN;
  const ep = await kv.send(new GetSignalingChannelEndpointCommand({
    ChannelARN: arn, SingleMasterChannelEndpointConfiguration: { Protocols: ["WSS"], Role: role.toUpperCase() },
  }));
  return { arn, endpoint: ep.ResourceEndpointList.find(e => e.Protocol === "WSS").ResourceEndpoint };
}

// The exchange: offers the viewer still waits an answer for (re-sent after each viewer open).
const pendingTags = new Set();
const doneTags = new Set();

function sendPendingOffers() {
  const v = state.viewer;
  if (!v || !v.client || v.client.readyState !== 1) return;
  for (const tag of pendingTags) {
    try { v.client.sendSdpOffer({ type: "offer", sdp: tag }); } catch (e) { errors.push("viewer send: " + e.message); }
  }
}

function build(role, arn, endpoint) {
  const s = state[role];
  const config = { channelARN: arn, channelEndpoint: endpoint, role: role === "master" ? KVS.Role.MASTER : KVS.Role.VIEWER,
                   region, credentials, systemClockOffset: 0 };
  if (role === "viewer") config.clientId = viewerId;
  const client = new KVS.SignalingClient(config);
  s.client = client;
  s.arn = arn;
  let opened = false;
  client.on("open", () => {
    opened = true;
    s.failures = 0;
    s.opens++;
    emit({ event: "open", role, opens: s.opens, arn });
    if (role === "viewer") sendPendingOffers();
  });
  client.on("error", e => errors.push(role + ": " + (e && e.message)));
  client.on("close", () => {
    if (s.client !== client || stopping) return;
    if (opened) {
      s.closes++;
      const last = s.lastClose || {};
      s.codes.push(last.code === undefined ? null : last.code);
      emit({ event: "close", role, closes: s.closes, code: last.code === undefined ? null : last.code, reason: last.reason || "" });
      opened = false;
      client.open(); // what the SDK's master sample does on 'close'
      return;
    }
    s.failures++;
    const delay = Math.min(100 * 2 ** (s.failures - 1), 1000);
    setTimeout(() => reopen(role), delay);
  });
  if (role === "master") {
    client.on("sdpOffer", (offer, from) => {
      try { client.sendSdpAnswer({ type: "answer", sdp: "answer-to:" + offer.sdp }, from); }
      catch (e) { errors.push("master send: " + e.message); }
    });
  } else {
    client.on("sdpAnswer", answer => {
      const tag = String(answer.sdp).replace(/^answer-to:/, "");
      if (pendingTags.delete(tag)) { doneTags.add(tag); emit({ event: "exchanged", tag }); }
    });
  }
  return client;
}

async function reopen(role) {
  if (stopping) return;
  const s = state[role];
  try {
    const { arn, endpoint } = await resolve(role);
    if (arn !== s.arn) build(role, arn, endpoint).open();
    else s.client.open();
  } catch (e) {
    errors.push(role + " resolve: " + (e && (e.name + " " + e.message)));
    s.failures++;
    setTimeout(() => reopen(role), Math.min(100 * 2 ** (s.failures - 1), 1000));
  }
}

let stopping = false;
function finish(reason) {
  if (stopping) return;
  stopping = true;
  const summary = { event: "summary", reason, errors, exchanged: [...doneTags], pending: [...pendingTags] };
  for (const r of roles) {
    const s = state[r];
    summary[r] = { opens: s.opens, closes: s.closes, codes: s.codes, goAways: s.goAways, reconnectIce: s.reconnectIce, arn: s.arn };
  }
  emit(summary);
  for (const r of roles) { try { state[r].client && state[r].client.close(); } catch (e) { /* closing anyway */ } }
  setTimeout(() => process.exit(0), 100);
}
setTimeout(() => finish("timeout"), timeoutSeconds * 1000);

let input = "";
process.stdin.on("data", chunk => {
  input += chunk;
  let nl;
  while ((nl = input.indexOf("\n")) >= 0) {
    const line = input.slice(0, nl).trim();
    input = input.slice(nl + 1);
    const [cmd, arg] = line.split(/\s+/, 2);
    if (cmd === "exchange") { pendingTags.add(arg); sendPendingOffers(); }
    else if (cmd === "quit") finish("quit");
  }
});
process.stdin.on("end", () => finish("stdin closed"));

(async () => {
  for (const r of roles) {
    try {
      const { arn, endpoint } = await resolve(r);
      build(r, arn, endpoint).open();
    } catch (e) {
      errors.push(r + " start: " + (e && (e.name + " " + e.message)));
      finish("start failed");
    }
  }
})();
