// GetIceServerConfig through the AWS SDK for JavaScript v3, against the HTTPS endpoint that
// GetSignalingChannelEndpoint returns. Usage: node dp-ice.mjs <channel-name> [client-id]
// Reads AWS_ENDPOINT_URL_KINESIS_VIDEO, AWS_REGION, credentials and NODE_EXTRA_CA_CERTS from the
// environment (tests.support.server.Server.client_env). Prints one JSON object on stdout.
import {
  KinesisVideoClient, CreateSignalingChannelCommand, GetSignalingChannelEndpointCommand,
} from "@aws-sdk/client-kinesis-video";
import { KinesisVideoSignalingClient, GetIceServerConfigCommand } from "@aws-sdk/client-kinesis-video-signaling";

const [name, clientId] = process.argv.slice(2);
const region = process.env.AWS_REGION;
const kv = new KinesisVideoClient({ region });
const { ChannelARN } = await kv.send(new CreateSignalingChannelCommand({ ChannelName: name }));
const { ResourceEndpointList } = await kv.send(new GetSignalingChannelEndpointCommand({
  ChannelARN, SingleMasterChannelEndpointConfiguration: { Protocols: ["WSS", "HTTPS"], Role: "VIEWER" },
}));
const https = ResourceEndpointList.find((e) => e.Protocol === "HTTPS").ResourceEndpoint;
const sig = new KinesisVideoSignalingClient({ region, endpoint: https, maxAttempts: 1 });
const out = { ChannelARN, https };
const ice = await sig.send(new GetIceServerConfigCommand({ ChannelARN, ClientId: clientId, Service: "TURN" }));
out.IceServerList = ice.IceServerList;
out.requestId = ice.$metadata.requestId;
const errors = {};
for (const [label, input] of [
  ["missing", { ChannelARN: ChannelARN.replace(`/${name}/`, `/${name}-missing/`) }],
  ["badClientId", { ChannelARN, ClientId: "bad id!" }],
]) {
  try {
    await sig.send(new GetIceServerConfigCommand(input));
    errors[label] = null;
  } catch (e) {
    errors[label] = { name: e.name, status: e.$metadata?.httpStatusCode, message: e.message };
  }
}
out.errors = errors;
console.log(JSON.stringify(out));
