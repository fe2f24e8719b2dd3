// Decoding of trace events for the console: the same results as signalite/tracing.py (the CLI),
// so the terminal and the browser show one story. tests/unit/test_console_js.py runs both on the
// same inputs and compares. Pure functions, no DOM.

function toInt(value) {
  return /^[+-]?\d+$/.test(value) ? parseInt(value, 10) : value;
}

/** An ICE candidate attribute (`candidate:…` or `a=candidate:…`), or null if it is not one. */
export function parseCandidate(line) {
  let text = String(line).trim();
  for (const prefix of ['a=', 'candidate:']) {
    if (text.startsWith(prefix)) text = text.slice(prefix.length);
  }
  if (text.startsWith('candidate:')) text = text.slice('candidate:'.length);
  const parts = text.split(/\s+/).filter(Boolean);
  if (parts.length < 8 || parts[6] !== 'typ') return null;
  const out = {
    foundation: parts[0], component: toInt(parts[1]), protocol: parts[2].toLowerCase(),
    priority: toInt(parts[3]), address: parts[4], port: toInt(parts[5]), type: parts[7],
  };
  const rest = parts.slice(8);
  for (let i = 0; i + 1 < rest.length; i += 2) {
    const [key, value] = [rest[i], rest[i + 1]];
    if (key === 'raddr') out.relatedAddress = value;
    else if (key === 'rport') out.relatedPort = toInt(value);
    else if (key === 'tcptype') out.tcpType = value;
  }
  return out;
}

const DIRECTIONS = new Set(['a=sendrecv', 'a=sendonly', 'a=recvonly', 'a=inactive']);

/** The parts of an SDP that matter for a connection that does not come up. */
export function parseSdp(sdp) {
  const session = { media: [], ufrag: null, fingerprint: null, candidates: [] };
  let media = null;
  const after = (line) => line.slice(line.indexOf(':') + 1);
  for (const raw of String(sdp).replace(/\r\n/g, '\n').split('\n')) {
    const line = raw.trim();
    if (line.startsWith('m=')) {
      const fields = line.slice(2).split(/\s+/).filter(Boolean);
      media = {
        kind: fields.length ? fields[0] : '?', port: fields.length > 1 ? toInt(fields[1]) : null,
        protocol: fields.length > 2 ? fields[2] : null, codecs: [], direction: null, mid: null,
      };
      session.media.push(media);
    } else if (line.startsWith('a=rtpmap:') && media !== null) {
      const space = line.indexOf(' ');
      const codec = space >= 0 ? line.slice(space + 1) : '';
      const name = codec.split('/')[0];
      if (name && !media.codecs.includes(name)) media.codecs.push(name);
    } else if (line.startsWith('a=ice-ufrag:')) {
      const ufrag = after(line);
      session.ufrag = session.ufrag || ufrag;
      if (media !== null) media.ufrag = ufrag;
    } else if (line.startsWith('a=fingerprint:')) {
      session.fingerprint = session.fingerprint || after(line);
    } else if (line.startsWith('a=candidate:')) {
      const candidate = parseCandidate(line);
      if (candidate !== null) session.candidates.push(candidate);
    } else if (line.startsWith('a=mid:') && media !== null) {
      media.mid = after(line);
    } else if (DIRECTIONS.has(line) && media !== null) {
      media.direction = line.slice(2);
    }
  }
  return session;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeBase64Json(payload) {
  if (!BASE64.test(payload) || payload.length % 4 !== 0) throw new Error('not base64');
  const binary = atob(payload);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
}

/** `sdp` (parsed) for an offer or answer, `candidate` for an ICE candidate, or `raw`. */
export function decodePayload(messageType, payload) {
  if (!payload) return {};
  let value;
  try {
    value = decodeBase64Json(payload);
  } catch {
    return { raw: payload.slice(0, 120) };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { raw: (typeof value === 'string' ? value : JSON.stringify(value)).slice(0, 120) };
  }
  if ((messageType === 'SDP_OFFER' || messageType === 'SDP_ANSWER') && typeof value.sdp === 'string') {
    return { sdp: parseSdp(value.sdp) };
  }
  if (messageType === 'ICE_CANDIDATE' && typeof value.candidate === 'string') {
    const candidate = parseCandidate(value.candidate);
    return candidate ? { candidate } : { endOfCandidates: value.candidate === '' };
  }
  return {};
}

const STEP_NAMES = {
  SDP_OFFER: ['offer', 'offer'],
  SDP_ANSWER: ['answer', 'answer'],
  ICE_CANDIDATE: ['first candidate viewer→master', 'first candidate master→viewer'],
};

/** Per viewer: when the offer, the answer and each side's first candidate went by. */
export class Timeline {
  constructor() {
    this.steps = {};
  }

  /** Record `event`; a note like `answer +84 ms after the offer` when it is a step, else null. */
  step(event) {
    if (event.event !== 'sent' || typeof event.time !== 'number') return null;
    const { messageType: kind, sender, recipient, time: at } = event;
    const viewer = sender !== null && sender !== undefined ? sender : recipient;
    if (viewer === null || viewer === undefined) return null;
    const steps = (this.steps[viewer] = this.steps[viewer] || {});
    const fromMaster = sender === null || sender === undefined;
    const names = STEP_NAMES[kind];
    const name = names ? names[fromMaster ? 1 : 0] : undefined;
    if (name === undefined || name in steps) return null;
    steps[name] = at;
    if (name === 'offer') return null;
    const offer = steps.offer;
    return offer !== undefined ? `${name} +${Math.round((at - offer) * 1000)} ms after the offer` : null;
  }
}

/** The event with its payload decoded (`decoded`) and its step timing (`step`). */
export function enrich(event, timeline) {
  const out = { ...event };
  const decoded = decodePayload(event.messageType, event.payload);
  if (Object.keys(decoded).length) out.decoded = decoded;
  const step = timeline.step(event);
  if (step) out.step = step;
  return out;
}

/** One line for a candidate, as the CLI prints it. */
export function candidateText(c) {
  let text = `${c.type} ${c.protocol} ${c.address}:${c.port} prio ${c.priority} foundation ${c.foundation} comp ${c.component}`;
  if (c.relatedAddress) text += ` via ${c.relatedAddress}:${c.relatedPort}`;
  return text;
}
