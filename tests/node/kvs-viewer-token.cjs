// The official KVS WebRTC SDK (amazon-kinesis-video-streams-webrtc) as a VIEWER with temporary
// credentials (access key, secret and session token, as a backend hands them to a browser).
// Usage: node kvs-viewer-token.cjs <channel-arn> <wss-endpoint> <client-id>
// Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN.
// Prints one JSON line: {"opened": bool, "closed": bool, "error": string|null}.
globalThis.WebSocket = require("ws");
const KVS = require("amazon-kinesis-video-streams-webrtc");

const [channelARN, channelEndpoint, clientId] = process.argv.slice(2);
const result = { opened: false, closed: false, error: null };
const done = () => { console.log(JSON.stringify(result)); process.exit(0); };
const viewer = new KVS.SignalingClient({
  channelARN, channelEndpoint, clientId, role: KVS.Role.VIEWER, region: process.env.AWS_REGION, systemClockOffset: 0,
  credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
                 sessionToken: process.env.AWS_SESSION_TOKEN },
});
viewer.on("open", () => { result.opened = true; viewer.close(); });
viewer.on("close", () => { result.closed = true; done(); });
viewer.on("error", (e) => { result.error = String((e && (e.message || e.type)) || e); });
setTimeout(done, 20000);
viewer.open();
