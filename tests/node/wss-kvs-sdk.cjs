// One master and several viewers of the official KVS WebRTC SDK (amazon-kinesis-video-streams-webrtc)
// on Signalite's WSS endpoint, signalling only (no media).
// Usage: node wss-kvs-sdk.cjs <channel-arn> <wss-endpoint> <viewer-count> [<viewer-endpoint>,...]
// (viewers take the optional endpoints in turn: a cluster's nodes).
// Credentials, region and NODE_EXTRA_CA_CERTS come from the environment. Each viewer sends an offer
// and two ICE candidates naming itself; the master answers each viewer with an answer and a
// candidate naming that viewer. Prints one JSON object with everything each side received.
globalThis.WebSocket = require("ws");
const KVS = require("amazon-kinesis-video-streams-webrtc");

const [channelARN, channelEndpoint, countArg, viewerArg] = process.argv.slice(2);
const viewerEndpoints = (viewerArg || channelEndpoint).split(",");
const count = Number(countArg || 3);
const common = {
  channelARN, channelEndpoint, region: process.env.AWS_REGION, systemClockOffset: 0,
  credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY },
};
const result = { master: { offers: [], candidates: [], statuses: [] }, viewers: {}, errors: [] };
const timer = setTimeout(() => finish("timeout"), 20000);

function finish(reason) {
  clearTimeout(timer);
  result.reason = reason;
  console.log(JSON.stringify(result));
  for (const c of clients) { try { c.close(); } catch (e) { /* closing anyway */ } }
  setTimeout(() => process.exit(0), 100);
}

function done() {
  const viewers = Object.values(result.viewers);
  return viewers.length === count && viewers.every(v => v.answers.length === 1 && v.candidates.length === 1)
    && result.master.offers.length === count && result.master.candidates.length === 2 * count;
}

const clients = [];
const master = new KVS.SignalingClient({ ...common, role: KVS.Role.MASTER });
clients.push(master);
master.on("error", e => result.errors.push("master: " + (e && e.message)));
master.on("statusResponse", s => result.master.statuses.push(s));
master.on("sdpOffer", (offer, from) => {
  result.master.offers.push({ from, sdp: offer.sdp });
  master.sendSdpAnswer({ type: "answer", sdp: "answer-for-" + from }, from);
  master.sendIceCandidate({ candidate: "candidate-for-" + from, sdpMid: "0", sdpMLineIndex: 0 }, from, "corr-" + from);
});
master.on("iceCandidate", (cand, from) => {
  result.master.candidates.push({ from, candidate: cand.candidate });
  if (done()) finish("done");
});
master.on("open", () => {
  for (let i = 0; i < count; i++) {
    const clientId = "node-viewer-" + i;
    const rec = result.viewers[clientId] = { answers: [], candidates: [], statuses: [] };
    const viewer = new KVS.SignalingClient({ ...common, role: KVS.Role.VIEWER, clientId,
                                             channelEndpoint: viewerEndpoints[i % viewerEndpoints.length] });
    clients.push(viewer);
    viewer.on("error", e => result.errors.push(clientId + ": " + (e && e.message)));
    viewer.on("statusResponse", s => rec.statuses.push(s));
    viewer.on("sdpAnswer", (answer, from) => { rec.answers.push({ from: from || null, sdp: answer.sdp }); });
    viewer.on("iceCandidate", (cand, from) => {
      rec.candidates.push({ from: from || null, candidate: cand.candidate });
      if (done()) finish("done");
    });
    viewer.on("open", () => {
      viewer.sendSdpOffer({ type: "offer", sdp: "offer-from-" + clientId });
      viewer.sendIceCandidate({ candidate: "candidate-1-from-" + clientId, sdpMid: "0", sdpMLineIndex: 0 });
      viewer.sendIceCandidate({ candidate: "candidate-2-from-" + clientId, sdpMid: "0", sdpMLineIndex: 0 });
    });
    viewer.open();
  }
});
master.open();
