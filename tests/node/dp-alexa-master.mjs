// A master of the official KVS WebRTC SDK (amazon-kinesis-video-streams-webrtc) for the
// SendAlexaOfferToMaster tests: it answers every SDP offer with {"type":"answer","sdp":"answer-for-<sender>"}.
// Usage: node dp-alexa-master.mjs <channel-arn> <wss-endpoint> <offers-to-answer>
// Credentials, region and NODE_EXTRA_CA_CERTS come from the environment. Prints the line "open"
// once connected, then one JSON line {offers:[{from, sdp}], errors:[]} when done (or after 30 s).
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
globalThis.WebSocket = require("ws");
const KVS = require("amazon-kinesis-video-streams-webrtc");

const [channelARN, channelEndpoint, countArg] = process.argv.slice(2);
const count = Number(countArg || 1);
const result = { offers: [], errors: [] };
const master = new KVS.SignalingClient({
  channelARN, channelEndpoint, role: KVS.Role.MASTER, region: process.env.AWS_REGION, systemClockOffset: 0,
  credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY },
});
const timer = setTimeout(() => finish("timeout"), 30000);

function finish(reason) {
  clearTimeout(timer);
  result.reason = reason;
  console.log(JSON.stringify(result));
  try { master.close(); } catch (e) { /* closing anyway */ }
  setTimeout(() => process.exit(0), 100);
}

master.on("error", (e) => result.errors.push(String(e && e.message)));
master.on("open", () => console.log("open"));
master.on("sdpOffer", (offer, from) => {
  result.offers.push({ from, type: offer.type, sdp: offer.sdp });
  master.sendSdpAnswer({ type: "answer", sdp: "answer-for-" + from }, from);
  if (result.offers.length >= count) setTimeout(() => finish("done"), 200);
});
master.open();
