// The live message trace of one channel as a timeline: a presigned WebSocket to
// /_signalite/admin/trace (one JSON event per frame), decoded here (decode.js, the same decoding
// as `signalite trace`), with the offer → answer → first-candidate timing of each viewer.
import { admin, presignTrace } from '../aws.js';
import { candidateText, enrich, Timeline } from '../decode.js';
import { clock, errorSlot, fill, h } from '../dom.js';

const MAX_EVENTS = 500; // the page keeps the newest ones

const who = (id) => (id === null || id === undefined ? 'master' : id);

/** The payload as text (pretty JSON when it is JSON), for the "raw" disclosure. */
export function payloadText(payload) {
  try {
    const text = new TextDecoder().decode(Uint8Array.from(atob(payload), (c) => c.charCodeAt(0)));
    try {
      const value = JSON.parse(text);
      if (value && typeof value.sdp === 'string') return value.sdp.replace(/\r\n/g, '\n');
      return JSON.stringify(value, null, 2);
    } catch {
      return text;
    }
  } catch {
    return payload;
  }
}

function sdpBlock(sdp) {
  return h('div', { class: 'sdp' },
    h('table', { class: 'media' },
      h('thead', {}, h('tr', {}, ['media', 'mid', 'direction', 'codecs', 'transport'].map((t) => h('th', {}, t)))),
      h('tbody', {}, sdp.media.map((m) => h('tr', {},
        h('td', { class: 'kind' }, m.kind), h('td', {}, m.mid ?? ''), h('td', {}, m.direction || ''),
        h('td', { class: 'codecs' }, m.codecs.length ? m.codecs.join(', ') : '—'),
        h('td', { class: 'muted' }, `${m.protocol || ''} :${m.port ?? ''}`))))),
    h('dl', { class: 'facts' },
      h('dt', {}, 'ICE ufrag'), h('dd', { class: 'mono' }, sdp.ufrag || '—'),
      h('dt', {}, 'DTLS fingerprint'), h('dd', { class: 'mono fingerprint', title: sdp.fingerprint || '' }, sdp.fingerprint || '—'),
      h('dt', {}, 'candidates in SDP'), h('dd', {}, String(sdp.candidates.length))),
    sdp.candidates.length ? h('ul', { class: 'candidates' }, sdp.candidates.map((c) => h('li', { class: 'mono' }, candidateText(c)))) : null);
}

function candidateBlock(c) {
  return h('div', { class: 'candidate' },
    h('span', { class: `pill cand ${c.type}` }, c.type), ' ',
    h('span', { class: 'mono' }, `${c.protocol} ${c.address}:${c.port}`),
    h('span', { class: 'muted' }, ` prio ${c.priority} · foundation ${c.foundation} · component ${c.component}`,
      c.relatedAddress ? ` · via ${c.relatedAddress}:${c.relatedPort}` : '', c.tcpType ? ` · tcptype ${c.tcpType}` : ''));
}

/** One timeline entry. `full` shows the decoded payload (on "sent"; the other outcomes of the same
 * message show a summary line). */
export function eventItem(event, previousTime, full) {
  const kind = event.event || '?';
  const delta = typeof event.time === 'number' && typeof previousTime === 'number'
    ? `+${Math.round((event.time - previousTime) * 1000)} ms` : '';
  const decoded = event.decoded || {};
  let headline;
  if (kind === 'connect' || kind === 'disconnect') {
    headline = [h('strong', {}, event.role === 'master' || event.sender === null ? 'master' : `viewer ${event.sender}`),
      event.remote ? h('span', { class: 'muted' }, ` from ${event.remote}`) : null];
  } else {
    headline = [h('span', { class: 'type' }, event.messageType || '?'), ' ',
      h('strong', {}, who(event.sender)), h('span', { class: 'arrow' }, ' → '), h('strong', {}, who(event.recipient))];
  }
  let summary = null;
  if (decoded.sdp) {
    summary = decoded.sdp.media.map((m) => `${m.kind}(${m.codecs.slice(0, 4).join(',')})`).join(' ')
      + ` · ufrag ${decoded.sdp.ufrag} · ${decoded.sdp.candidates.length} candidates`;
  } else if (decoded.candidate) {
    summary = candidateText(decoded.candidate);
  } else if (decoded.endOfCandidates) {
    summary = 'end of candidates';
  }
  return h('li', { class: `event ev-${kind}`, dataset: { event: kind, type: event.messageType || '' } },
    h('div', { class: 'when' }, h('span', { class: 'mono' }, clock(event.time)), h('span', { class: 'delta' }, delta)),
    h('div', { class: 'what' },
      h('div', { class: 'headline' }, h('span', { class: `badge ${kind}` }, kind), ' ', headline,
        event.node ? h('span', { class: 'node muted', title: 'node' }, event.node) : null),
      event.step ? h('div', { class: 'step' }, event.step) : null,
      event.reason || event.detail ? h('div', { class: 'detail' }, event.reason || event.detail) : null,
      full && decoded.sdp ? sdpBlock(decoded.sdp) : null,
      full && decoded.candidate ? candidateBlock(decoded.candidate) : null,
      (!full || (!decoded.sdp && !decoded.candidate)) && summary ? h('div', { class: 'summary muted mono' }, summary) : null,
      full && decoded.raw ? h('div', { class: 'summary muted mono' }, decoded.raw) : null,
      full && event.payload ? h('details', { class: 'raw' }, h('summary', {}, 'payload'), h('pre', {}, payloadText(event.payload))) : null));
}

function timingTable(timeline) {
  const viewers = Object.keys(timeline.steps);
  if (!viewers.length) return h('p', { class: 'muted small' }, 'Step timing appears with the first SDP offer.');
  const since = (steps, name) => {
    if (steps[name] === undefined) return h('td', { class: 'muted' }, '…');
    if (name === 'offer' || steps.offer === undefined) return h('td', { class: 'mono' }, clock(steps[name]));
    return h('td', { class: 'num' }, `+${Math.round((steps[name] - steps.offer) * 1000)} ms`);
  };
  return h('table', { class: 'timing' },
    h('thead', {}, h('tr', {}, ['viewer', 'offer', 'answer', '1st cand. master→viewer', '1st cand. viewer→master'].map((t) => h('th', {}, t)))),
    h('tbody', {}, viewers.map((v) => {
      const s = timeline.steps[v];
      return h('tr', {}, h('td', {}, v), since(s, 'offer'), since(s, 'answer'),
        since(s, 'first candidate master→viewer'), since(s, 'first candidate viewer→master'));
    })));
}

export function traceSection(credentials, channelArn) {
  const errors = errorSlot();
  const status = h('span', { class: 'pill state' }, 'connecting');
  const list = h('ol', { class: 'timeline' });
  const timing = h('div', { class: 'timing-box' });
  const empty = h('p', { class: 'muted small empty' }, 'Waiting for events: connect a master and a viewer (the buttons above open them in new tabs).');
  let timeline = new Timeline();
  let ws = null;
  let previousTime = null;
  let stopped = false;
  let count = 0;

  const setStatus = (text, cls) => { status.textContent = text; status.className = `pill state ${cls || text}`; };

  async function explain() {
    // A refused WebSocket handshake carries no status to the page: ask the admin API the same
    // question, whose answer does (ResourceNotFoundException, AccessDeniedException, …).
    try {
      await admin(credentials, 'ListClients', { ChannelARN: channelArn });
      errors.show(new Error('the trace connection was closed'));
    } catch (exc) {
      errors.show(exc);
    }
  }

  async function start() {
    stopped = false;
    errors.clear();
    setStatus('connecting');
    let opened = false;
    try {
      ws = new WebSocket(await presignTrace(credentials, channelArn));
    } catch (exc) {
      setStatus('closed');
      errors.show(exc);
      return;
    }
    ws.onopen = () => { opened = true; setStatus('following', 'on'); };
    ws.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      if (event.event === 'following') return;
      event = enrich(event, timeline);
      empty.remove();
      list.append(eventItem(event, previousTime, event.event === 'sent' || event.event === 'buffered'));
      if (typeof event.time === 'number') previousTime = event.time;
      count += 1;
      while (list.childElementCount > MAX_EVENTS) list.firstElementChild.remove();
      fill(timing, timingTable(timeline));
    };
    ws.onclose = () => {
      ws = null;
      setStatus(stopped ? 'paused' : 'closed');
      toggle.textContent = 'Resume';
      if (!opened && !stopped) explain();
    };
    toggle.textContent = 'Pause';
  }

  function stop() {
    stopped = true;
    if (ws) ws.close();
  }

  const toggle = h('button', { class: 'small', onclick: () => (ws ? stop() : start()) }, 'Pause');
  const clear = h('button', {
    class: 'small', onclick: () => {
      list.replaceChildren();
      timeline = new Timeline();
      previousTime = null;
      count = 0;
      fill(timing, timingTable(timeline));
    },
  }, 'Clear');
  fill(timing, timingTable(timeline));
  const el = h('section', { class: 'card trace' },
    h('div', { class: 'title-row' }, h('h2', {}, 'Live trace'), status, h('span', { class: 'spacer' }), toggle, clear),
    errors, timing, empty, list);
  start();
  return { el, dispose: stop, count: () => count };
}
