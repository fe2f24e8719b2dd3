// Drives every kinesisvideo channel, tag and media-storage operation with the AWS SDK for
// JavaScript v3, configured only by the environment (AWS_ENDPOINT_URL_KINESIS_VIDEO, AWS_REGION,
// keys, NODE_EXTRA_CA_CERTS). Prints one JSON object of observations for the Python test.
// Usage: node cp-control-plane.mjs <unique-name>
import {
  KinesisVideoClient,
  CreateSignalingChannelCommand, DescribeSignalingChannelCommand, ListSignalingChannelsCommand,
  UpdateSignalingChannelCommand, DeleteSignalingChannelCommand, GetSignalingChannelEndpointCommand,
  TagResourceCommand, UntagResourceCommand, ListTagsForResourceCommand,
  CreateStreamCommand, DescribeMediaStorageConfigurationCommand, UpdateMediaStorageConfigurationCommand,
  DescribeMappedResourceConfigurationCommand,
  ResourceNotFoundException, VersionMismatchException, InvalidArgumentException,
  paginateListSignalingChannels,
} from "@aws-sdk/client-kinesis-video";

const name = process.argv[2];
const kv = new KinesisVideoClient({});
const out = {};

async function failure(promise) {
  try {
    await promise;
    return null;
  } catch (e) {
    return {
      name: e.name,
      message: e.message,
      status: e.$metadata?.httpStatusCode,
      requestId: e.$metadata?.requestId,
      fault: e.$fault,
      isResourceNotFound: e instanceof ResourceNotFoundException,
      isVersionMismatch: e instanceof VersionMismatchException,
      isInvalidArgument: e instanceof InvalidArgumentException,
    };
  }
}

const created = await kv.send(new CreateSignalingChannelCommand({
  ChannelName: name, SingleMasterConfiguration: { MessageTtlSeconds: 45 }, Tags: [{ Key: "a", Value: "1" }],
}));
const arn = created.ChannelARN;
out.arn = arn;
out.createStatus = created.$metadata.httpStatusCode;
out.createRequestId = created.$metadata.requestId;

const described = await kv.send(new DescribeSignalingChannelCommand({ ChannelARN: arn }));
const info = described.ChannelInfo;
out.info = { ...info, CreationTime: undefined };
out.creationTimeIsDate = info.CreationTime instanceof Date && !Number.isNaN(info.CreationTime.getTime());
out.creationTimeMs = info.CreationTime.getTime();
out.describeByName = (await kv.send(new DescribeSignalingChannelCommand({ ChannelName: name }))).ChannelInfo.ChannelARN;

out.missing = await failure(kv.send(new DescribeSignalingChannelCommand({ ChannelName: name + "-missing" })));
out.invalid = await failure(kv.send(new CreateSignalingChannelCommand({ ChannelName: "bad name" })));

for (let i = 0; i < 3; i++) {
  await kv.send(new CreateSignalingChannelCommand({ ChannelName: `${name}-p${i}` }));
}
const condition = { ComparisonOperator: "BEGINS_WITH", ComparisonValue: `${name}-p` };
const page1 = await kv.send(new ListSignalingChannelsCommand({ MaxResults: 2, ChannelNameCondition: condition }));
out.page1 = page1.ChannelInfoList.map((c) => c.ChannelName);
out.page1HasToken = typeof page1.NextToken === "string";
const page2 = await kv.send(new ListSignalingChannelsCommand({ MaxResults: 2, ChannelNameCondition: condition, NextToken: page1.NextToken }));
out.page2 = page2.ChannelInfoList.map((c) => c.ChannelName);
out.page2HasToken = page2.NextToken !== undefined;
out.paginated = [];
for await (const page of paginateListSignalingChannels({ client: kv, pageSize: 1 }, { ChannelNameCondition: condition })) {
  out.paginated.push(...page.ChannelInfoList.map((c) => c.ChannelName));
}

await kv.send(new UpdateSignalingChannelCommand({
  ChannelARN: arn, CurrentVersion: info.Version, SingleMasterConfiguration: { MessageTtlSeconds: 100 },
}));
const after = (await kv.send(new DescribeSignalingChannelCommand({ ChannelARN: arn }))).ChannelInfo;
out.ttlAfterUpdate = after.SingleMasterConfiguration.MessageTtlSeconds;
out.versionChanged = after.Version !== info.Version;
out.staleUpdate = await failure(kv.send(new UpdateSignalingChannelCommand({
  ChannelARN: arn, CurrentVersion: info.Version, SingleMasterConfiguration: { MessageTtlSeconds: 10 },
})));

const eps = await kv.send(new GetSignalingChannelEndpointCommand({
  ChannelARN: arn, SingleMasterChannelEndpointConfiguration: { Protocols: ["WSS", "HTTPS"], Role: "VIEWER" },
}));
out.endpoints = Object.fromEntries(eps.ResourceEndpointList.map((e) => [e.Protocol, e.ResourceEndpoint]));
out.webrtcWithoutStorage = await failure(kv.send(new GetSignalingChannelEndpointCommand({
  ChannelARN: arn, SingleMasterChannelEndpointConfiguration: { Protocols: ["WEBRTC"], Role: "MASTER" },
})));

await kv.send(new TagResourceCommand({ ResourceARN: arn, Tags: [{ Key: "a", Value: "2" }, { Key: "b", Value: "3" }] }));
await kv.send(new UntagResourceCommand({ ResourceARN: arn, TagKeyList: ["b", "zz"] }));
out.tags = (await kv.send(new ListTagsForResourceCommand({ ResourceARN: arn }))).Tags;
out.tooManyTags = await failure(kv.send(new TagResourceCommand({
  ResourceARN: arn, Tags: Array.from({ length: 50 }, (_, i) => ({ Key: `k${i}`, Value: "v" })),
})));

out.storageBefore = (await kv.send(new DescribeMediaStorageConfigurationCommand({ ChannelName: name }))).MediaStorageConfiguration;
const stream = (await kv.send(new CreateStreamCommand({ StreamName: name, DataRetentionInHours: 1 }))).StreamARN;
await kv.send(new UpdateMediaStorageConfigurationCommand({
  ChannelARN: arn, MediaStorageConfiguration: { Status: "ENABLED", StreamARN: stream },
}));
out.stream = stream;
out.storageAfter = (await kv.send(new DescribeMediaStorageConfigurationCommand({ ChannelARN: arn }))).MediaStorageConfiguration;
out.mapped = (await kv.send(new DescribeMappedResourceConfigurationCommand({ StreamARN: stream }))).MappedResourceConfigurationList;
const webrtc = await kv.send(new GetSignalingChannelEndpointCommand({
  ChannelARN: arn, SingleMasterChannelEndpointConfiguration: { Protocols: ["WEBRTC"], Role: "MASTER" },
}));
out.webrtcEndpoint = webrtc.ResourceEndpointList[0];
await kv.send(new UpdateMediaStorageConfigurationCommand({ ChannelARN: arn, MediaStorageConfiguration: { Status: "DISABLED" } }));
out.storageDisabled = (await kv.send(new DescribeMediaStorageConfigurationCommand({ ChannelARN: arn }))).MediaStorageConfiguration;

out.staleDelete = await failure(kv.send(new DeleteSignalingChannelCommand({ ChannelARN: arn, CurrentVersion: info.Version })));
await kv.send(new DeleteSignalingChannelCommand({ ChannelARN: arn, CurrentVersion: after.Version }));
out.afterDelete = await failure(kv.send(new DescribeSignalingChannelCommand({ ChannelARN: arn })));

console.log(JSON.stringify(out));
