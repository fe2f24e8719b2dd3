// SendAlexaOfferToMaster through the AWS SDK for JavaScript v3.
// Usage: node dp-alexa.mjs <channel-arn> <https-endpoint> <sender-client-id> <base64-offer>
// Credentials, region and NODE_EXTRA_CA_CERTS come from the environment. Prints one JSON object:
// {"Answer": ...} or {"error": {name, status, message}}.
import { KinesisVideoSignalingClient, SendAlexaOfferToMasterCommand } from "@aws-sdk/client-kinesis-video-signaling";

const [ChannelARN, endpoint, SenderClientId, MessagePayload] = process.argv.slice(2);
const sig = new KinesisVideoSignalingClient({ region: process.env.AWS_REGION, endpoint, maxAttempts: 1 });
try {
  const out = await sig.send(new SendAlexaOfferToMasterCommand({ ChannelARN, SenderClientId, MessagePayload }));
  console.log(JSON.stringify({ Answer: out.Answer, requestId: out.$metadata.requestId }));
} catch (e) {
  console.log(JSON.stringify({ error: { name: e.name, status: e.$metadata?.httpStatusCode, message: e.message } }));
}
