// Signed calls from the browser: the console signs every request itself with SigV4 (aws4fetch,
// WebCrypto), so the secret key never leaves the browser. The key is kept in localStorage (or,
// when the user asks, sessionStorage: this tab only) and nowhere else.
import { AwsV4Signer } from 'aws4fetch';

const STORAGE_KEY = 'signalite.console.credentials';
const SIGNING_NAME = 'kinesisvideo'; // every plane of Signalite, the admin API included

/** The kinesisvideo operations the console calls, with their botocore request URIs (checked
 * against botocore's model by tests/unit/test_console_js.py). */
export const OPERATIONS = {
  ListSignalingChannels: '/listSignalingChannels',
  CreateSignalingChannel: '/createSignalingChannel',
  DescribeSignalingChannel: '/describeSignalingChannel',
  UpdateSignalingChannel: '/updateSignalingChannel',
  DeleteSignalingChannel: '/deleteSignalingChannel',
  GetSignalingChannelEndpoint: '/getSignalingChannelEndpoint',
  ListTagsForResource: '/ListTagsForResource',
  TagResource: '/TagResource',
  UntagResource: '/UntagResource',
};
/** kinesis-video-signaling, on the channel's HTTPS endpoint. */
export const SIGNALING_OPERATIONS = { GetIceServerConfig: '/v1/get-ice-server-config' };
/** The admin API (signalite/operator/signalite-admin-*.json). */
export const ADMIN_OPERATIONS = {
  ListLiveChannels: '/_signalite/admin/channels',
  ListClients: '/_signalite/admin/clients',
  DisconnectClient: '/_signalite/admin/disconnect',
  SendGoAway: '/_signalite/admin/signaling',
};
export const TRACE_PATH = '/_signalite/admin/trace';

/** An AWS error answer (or a network failure) as the page shows it. */
export class ApiError extends Error {
  constructor(code, message, status) {
    super(`${code}: ${message}`);
    this.code = code;
    this.status = status;
  }
}

export function loadCredentials() {
  for (const store of [sessionStorage, localStorage]) {
    try {
      const saved = JSON.parse(store.getItem(STORAGE_KEY) || 'null');
      if (saved && saved.accessKeyId && saved.secretAccessKey && saved.region) return saved;
    } catch {
      store.removeItem(STORAGE_KEY);
    }
  }
  return null;
}

export function saveCredentials(credentials, remember) {
  forgetCredentials();
  (remember ? localStorage : sessionStorage).setItem(STORAGE_KEY, JSON.stringify(credentials));
}

export function forgetCredentials() {
  localStorage.removeItem(STORAGE_KEY);
  sessionStorage.removeItem(STORAGE_KEY);
}

function signerOptions(credentials) {
  return {
    accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey,
    sessionToken: credentials.sessionToken || undefined, region: credentials.region, service: SIGNING_NAME,
  };
}

/** The error an AWS JSON answer carries: `x-amzn-ErrorType` or `__type`, and `message`. */
async function errorOf(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    // not JSON: keep the status line
  }
  const header = response.headers.get('x-amzn-ErrorType') || '';
  const code = header.split(':')[0] || String(body.__type || body.code || '').split('#').pop() || `HTTP ${response.status}`;
  const message = body.message || body.Message || response.statusText || 'request failed';
  return new ApiError(code, message, response.status);
}

/** POST `body` as JSON to `endpoint + path`, signed; the decoded answer, or an ApiError. */
export async function call(credentials, endpoint, path, body = {}) {
  if (!globalThis.crypto || !crypto.subtle) {
    throw new ApiError('InsecureContext', 'the browser signs requests with WebCrypto, which needs https:// (or http://localhost)', 0);
  }
  const signer = new AwsV4Signer({
    ...signerOptions(credentials), method: 'POST', url: endpoint.replace(/\/$/, '') + path,
    headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  const signed = await signer.sign();
  let response;
  try {
    response = await fetch(signed.url, { method: 'POST', headers: signed.headers, body: signed.body });
  } catch (exc) {
    throw new ApiError('NetworkError', `cannot reach ${endpoint}: ${exc.message}`, 0);
  }
  if (!response.ok) throw await errorOf(response);
  const text = await response.text();
  return text ? JSON.parse(text) : {};
}

/** The control plane: this server, the origin the console was loaded from. */
export function controlPlane(credentials, operation, body) {
  return call(credentials, location.origin, OPERATIONS[operation], body);
}

export function admin(credentials, operation, body) {
  return call(credentials, location.origin, ADMIN_OPERATIONS[operation], body);
}

export function signaling(credentials, httpsEndpoint, operation, body) {
  return call(credentials, httpsEndpoint, SIGNALING_OPERATIONS[operation], body);
}

/** A presigned wss:// URL of the live trace of `channelArn` (signed like a KVS connect). */
export async function presignTrace(credentials, channelArn) {
  const url = new URL(TRACE_PATH, location.origin.replace(/^http/, 'ws'));
  url.searchParams.set('X-Amz-ChannelARN', channelArn);
  url.searchParams.set('X-Amz-Expires', '299');
  const signer = new AwsV4Signer({ ...signerOptions(credentials), method: 'GET', url: url.toString(), signQuery: true });
  return (await signer.sign()).url.toString();
}
