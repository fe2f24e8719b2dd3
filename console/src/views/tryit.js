// "Try it": this tab becomes the master or a viewer of a channel with the camera, through the
// unmodified KVS WebRTC SDK for JavaScript (window.KVSWebRTC, its own browser build shipped with
// the console), ICE servers from GetIceServerConfig, as the SDK's own examples do it.
import { ApiError, controlPlane, signaling } from '../aws.js';
import { errorBox, errorSlot, fill, h } from '../dom.js';
import { listChannels } from './channels.js';

function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(4));
  return `console-viewer-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

async function endpoints(credentials, arn, role) {
  const { ResourceEndpointList = [] } = await controlPlane(credentials, 'GetSignalingChannelEndpoint', {
    ChannelARN: arn, SingleMasterChannelEndpointConfiguration: { Protocols: ['WSS', 'HTTPS'], Role: role },
  });
  const out = {};
  for (const e of ResourceEndpointList) out[e.Protocol] = e.ResourceEndpoint;
  if (!out.WSS || !out.HTTPS) throw new ApiError('Error', 'GetSignalingChannelEndpoint returned no WSS or HTTPS endpoint', 0);
  return out;
}

/** The page's list of steps: each one pending → ok / failed, with how long it took. */
function stepList() {
  const list = h('ol', { class: 'steps' });
  const t0 = performance.now();
  list.step = (key, label) => {
    let item = list.querySelector(`[data-step="${key}"]`);
    if (!item) {
      item = h('li', { dataset: { step: key }, class: 'pending' }, h('span', { class: 'label' }, label), h('span', { class: 'info muted' }), h('span', { class: 'at muted' }));
      list.append(item);
    }
    return {
      ok: (info) => {
        item.className = 'ok';
        fill(item.querySelector('.info'), info || '');
        fill(item.querySelector('.at'), `${Math.round(performance.now() - t0)} ms`);
      },
      fail: (info) => {
        item.className = 'failed';
        fill(item.querySelector('.info'), info || '');
      },
    };
  };
  return list;
}

/** One remote peer's tile: its video, and what getStats says about the connection. */
function remoteTile(label) {
  const video = h('video', { class: 'remote', autoplay: true, playsinline: true, muted: true });
  const stats = h('div', { class: 'stats mono small' }, 'waiting for media…');
  const state = h('span', { class: 'pill state' }, 'new');
  const el = h('figure', { class: 'tile', dataset: { peer: label } }, video, h('figcaption', {}, h('strong', {}, label), ' ', state, stats));
  return { el, video, stats, state };
}

async function describeStats(pc, video) {
  const report = await pc.getStats();
  let pair = null;
  let inbound = null;
  report.forEach((r) => {
    if (r.type === 'transport' && r.selectedCandidatePairId) pair = report.get(r.selectedCandidatePairId);
    if (r.type === 'inbound-rtp' && r.kind === 'video') inbound = r;
  });
  if (!pair) report.forEach((r) => { if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') pair = r; });
  const parts = [];
  if (video.videoWidth) parts.push(`${video.videoWidth}×${video.videoHeight}`);
  if (inbound) {
    parts.push(`${inbound.framesDecoded || 0} frames`);
    if (inbound.framesPerSecond) parts.push(`${Math.round(inbound.framesPerSecond)} fps`);
    const codec = inbound.codecId && report.get(inbound.codecId);
    if (codec) parts.push(codec.mimeType.replace(/^video\//, ''));
  }
  if (pair) {
    const local = report.get(pair.localCandidateId);
    const remote = report.get(pair.remoteCandidateId);
    if (local && remote) parts.push(`${local.candidateType}/${local.protocol} ${local.address || local.ip}:${local.port} ⇄ ${remote.address || remote.ip}:${remote.port}`);
  }
  return parts.join(' · ') || 'connecting…';
}

export function tryView({ credentials, params }, arn) {
  const role = params.get('role') === 'viewer' ? 'VIEWER' : 'MASTER';
  const errors = errorSlot();
  const steps = stepList();
  const localVideo = h('video', { class: 'local', autoplay: true, playsinline: true, muted: true });
  const remotes = h('div', { class: 'tiles' }, h('p', { class: 'muted' }, role === 'MASTER'
    ? 'Viewers appear here when they connect.' : 'The master’s video appears here.'));
  const clientId = h('input', { name: 'clientId', value: params.get('clientId') || randomId(), pattern: '[a-zA-Z0-9_.\\-]{1,256}', disabled: role === 'MASTER' });
  const audio = h('input', { type: 'checkbox', name: 'audio', checked: params.get('audio') !== '0' });
  const startButton = h('button', { class: 'primary', onclick: () => start() }, 'Start');
  const stopButton = h('button', { onclick: () => stop('stopped'), disabled: true }, 'Stop');
  const state = h('span', { class: 'pill state' }, 'idle');
  let session = null;

  const setState = (text, cls) => { state.textContent = text; state.className = `pill state ${cls || text}`; };
  const fail = (exc) => errors.show(exc instanceof Error ? exc : new Error(String(exc)));

  function stop(why) {
    if (!session) return;
    const s = session;
    session = null;
    clearInterval(s.timer);
    if (s.client) s.client.close();
    for (const peer of Object.values(s.peers)) peer.pc.close();
    if (s.stream) s.stream.getTracks().forEach((t) => t.stop());
    localVideo.srcObject = null;
    setState(why || 'stopped', why === 'stopped' ? 'paused' : 'closed');
    startButton.disabled = false;
    stopButton.disabled = true;
  }

  async function start() {
    if (session) return;
    if (!window.KVSWebRTC) return fail(new Error('the KVS WebRTC SDK did not load'));
    errors.clear();
    steps.replaceChildren();
    fill(remotes);
    startButton.disabled = true;
    stopButton.disabled = false;
    setState('starting', 'connecting');
    const s = (session = { peers: {}, client: null, stream: null, timer: null });
    const alive = () => session === s;
    try {
      let step = steps.step('endpoint', 'GetSignalingChannelEndpoint');
      const ep = await endpoints(credentials, arn, role);
      step.ok(ep.WSS);

      step = steps.step('ice', 'GetIceServerConfig');
      const viewerId = role === 'VIEWER' ? clientId.value.trim() : undefined;
      const { IceServerList = [] } = await signaling(credentials, ep.HTTPS, 'GetIceServerConfig',
        viewerId ? { ChannelARN: arn, ClientId: viewerId } : { ChannelARN: arn });
      const iceServers = IceServerList.map((s) => ({ urls: s.Uris, username: s.Username, credential: s.Password }));
      step.ok(IceServerList.flatMap((s) => s.Uris).join(' ') || 'no servers');

      step = steps.step('camera', audio.checked ? 'Camera and microphone' : 'Camera');
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        throw new Error('this page cannot use the camera: it needs https:// (or http://localhost)');
      }
      let note = '';
      try {
        s.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: audio.checked });
      } catch (exc) {
        if (!audio.checked) throw exc;
        s.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } }); // no microphone: video only
        note = ` (no microphone: ${exc.name})`;
      }
      if (!alive()) { s.stream.getTracks().forEach((t) => t.stop()); return; }
      localVideo.srcObject = s.stream;
      const track = s.stream.getVideoTracks()[0];
      const settings = track ? track.getSettings() : {};
      step.ok((track ? `${track.label || 'camera'} ${settings.width || ''}×${settings.height || ''}` : 'no video track') + note);

      step = steps.step('signaling', `Connect to the channel as ${role.toLowerCase()}`);
      const client = (s.client = new window.KVSWebRTC.SignalingClient({
        channelARN: arn, channelEndpoint: ep.WSS, role: window.KVSWebRTC.Role[role], region: credentials.region,
        clientId: viewerId,
        credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey, sessionToken: credentials.sessionToken },
        systemClockOffset: 0,
      }));
      const connectStep = step;
      client.on('error', (e) => fail(new Error(`signaling error: ${(e && e.message)
        || `the WebSocket to ${ep.WSS} failed (refused, unreachable, or its certificate is not trusted by this browser)`}`)));
      client.on('close', () => { if (alive()) { connectStep.fail('closed'); stop('signaling closed'); } });
      client.on('statusResponse', (r) => fail(new ApiError(r.errorType || 'StatusResponse', `${r.description || 'refused'} (status ${r.statusCode})`, Number(r.statusCode))));

      const peerFor = (remoteId) => {
        const key = remoteId || 'master';
        if (s.peers[key]) return s.peers[key];
        const pc = new RTCPeerConnection({ iceServers });
        const tile = remoteTile(role === 'MASTER' ? key : 'master');
        if (!Object.keys(s.peers).length) fill(remotes);
        remotes.append(tile.el);
        s.stream.getTracks().forEach((t) => pc.addTrack(t, s.stream));
        pc.ontrack = (event) => { tile.video.srcObject = event.streams[0] || new MediaStream([event.track]); };
        pc.onicecandidate = ({ candidate }) => {
          if (!candidate) return;
          if (role === 'MASTER') client.sendIceCandidate(candidate, remoteId);
          else client.sendIceCandidate(candidate);
        };
        pc.onconnectionstatechange = () => {
          tile.state.textContent = pc.connectionState;
          tile.state.className = `pill state ${pc.connectionState}`;
          if (pc.connectionState === 'connected') steps.step(`connected-${key}`, `WebRTC connected (${tile.el.dataset.peer})`).ok();
          if (pc.connectionState === 'failed') fail(new Error(`the WebRTC connection with ${tile.el.dataset.peer} failed (no ICE candidate pair worked)`));
        };
        tile.video.addEventListener('playing', () => steps.step(`playing-${key}`, `Remote video playing (${tile.el.dataset.peer})`).ok(`${tile.video.videoWidth}×${tile.video.videoHeight}`), { once: true });
        return (s.peers[key] = { pc, tile });
      };

      client.on('iceCandidate', (candidate, remoteId) => {
        const peer = s.peers[role === 'MASTER' ? remoteId || 'master' : 'master'];
        if (peer) peer.pc.addIceCandidate(candidate).catch(fail);
      });
      if (role === 'MASTER') {
        client.on('sdpOffer', async (offer, remoteId) => {
          try {
            const old = s.peers[remoteId];
            if (old) { old.pc.close(); old.tile.el.remove(); delete s.peers[remoteId]; } // the viewer started over
            steps.step(`offer-${remoteId}`, `SDP offer from ${remoteId}`).ok();
            const { pc } = peerFor(remoteId);
            await pc.setRemoteDescription(offer);
            await pc.setLocalDescription(await pc.createAnswer());
            client.sendSdpAnswer(pc.localDescription, remoteId);
            steps.step(`answer-${remoteId}`, `SDP answer to ${remoteId}`).ok();
          } catch (exc) {
            fail(exc);
          }
        });
        client.on('open', () => { connectStep.ok('open: waiting for viewers'); setState('live as master', 'on'); });
      } else {
        client.on('open', async () => {
          try {
            connectStep.ok('open');
            setState('live as viewer', 'on');
            const { pc } = peerFor(null);
            await pc.setLocalDescription(await pc.createOffer({ offerToReceiveAudio: true, offerToReceiveVideo: true }));
            client.sendSdpOffer(pc.localDescription);
            steps.step('offer', 'SDP offer sent').ok();
          } catch (exc) {
            fail(exc);
          }
        });
        client.on('sdpAnswer', async (answer) => {
          try {
            await s.peers.master.pc.setRemoteDescription(answer);
            steps.step('answer', 'SDP answer from the master').ok();
          } catch (exc) {
            fail(exc);
          }
        });
      }
      client.open();
      s.timer = setInterval(async () => {
        for (const peer of Object.values(s.peers)) {
          try {
            peer.tile.stats.textContent = await describeStats(peer.pc, peer.tile.video);
          } catch {
            // the connection was closed in between
          }
        }
      }, 1000);
    } catch (exc) {
      const pending = steps.querySelector('li.pending');
      if (pending) {
        pending.className = 'failed';
        pending.querySelector('.info').textContent = exc.code || exc.name || 'failed';
      }
      fail(exc);
      stop('failed');
    }
  }

  const channelName = arn.split('/')[1] || arn;
  const otherRole = role === 'MASTER' ? 'viewer' : 'master';
  const el = h('div', { class: 'try' },
    h('div', { class: 'crumbs' }, h('a', { href: `#/channel/${encodeURIComponent(arn)}` }, `← ${channelName}`)),
    h('div', { class: 'title-row' }, h('h1', {}, `${role === 'MASTER' ? 'Master' : 'Viewer'} on ${channelName}`), state,
      h('span', { class: 'spacer' }),
      h('a', { class: 'button small', href: `#/try/${encodeURIComponent(arn)}?role=${otherRole}&start=1`, target: '_blank', rel: 'opener' }, `Open a ${otherRole} ↗`)),
    errors,
    h('div', { class: 'card controls' },
      role === 'VIEWER' ? h('label', { class: 'field' }, h('span', {}, 'Client ID'), clientId) : null,
      h('label', { class: 'check' }, audio, ' microphone'),
      startButton, stopButton),
    h('div', { class: 'columns try-columns' },
      h('div', { class: 'side' },
        h('section', { class: 'card' }, h('h2', {}, 'Steps'), steps),
        h('section', { class: 'card' }, h('h2', {}, 'This browser'), h('figure', { class: 'tile' }, localVideo, h('figcaption', { class: 'muted' }, 'local camera')))),
      h('div', { class: 'wide' }, h('section', { class: 'card' }, h('h2', {}, role === 'MASTER' ? 'Viewers' : 'From the master'), remotes))));
  if (params.get('start') === '1') setTimeout(start, 0);
  return { el, dispose: () => stop('stopped') };
}

/** #/try without a channel: pick one (or make a demo channel). */
export function tryPickerView({ credentials, navigate }) {
  const errors = errorSlot();
  const list = h('div', { class: 'picker' }, h('p', { class: 'muted' }, 'Loading…'));
  const open = (arn, role) => h('a', { class: 'button small', href: `#/try/${encodeURIComponent(arn)}?role=${role}&start=1`, target: '_blank', rel: 'opener' }, `${role} ↗`);
  async function load() {
    try {
      const channels = await listChannels(credentials);
      fill(list, channels.length ? h('table', { class: 'list' }, h('tbody', {}, channels.map((c) => h('tr', {},
        h('td', {}, h('a', { href: `#/channel/${encodeURIComponent(c.ChannelARN)}` }, c.ChannelName)),
        h('td', { class: 'actions' }, open(c.ChannelARN, 'master'), open(c.ChannelARN, 'viewer'))))))
        : h('p', { class: 'muted' }, 'No channel yet.'));
    } catch (exc) {
      fill(list, errorBox(exc));
    }
  }
  const demo = h('button', {
    class: 'primary', onclick: async () => {
      try {
        const name = `demo-${Date.now().toString(36)}`;
        const { ChannelARN } = await controlPlane(credentials, 'CreateSignalingChannel', { ChannelName: name });
        navigate(`#/channel/${encodeURIComponent(ChannelARN)}`);
      } catch (exc) {
        errors.show(exc);
      }
    },
  }, 'Create a demo channel');
  load();
  return {
    el: h('section', {}, h('h1', {}, 'Try it'),
      h('p', {}, 'Open a channel as master in one tab and as viewer in another: your camera goes from one to the other ',
        'through WebRTC, signaled by this server with the unmodified KVS WebRTC SDK for JavaScript.'),
      errors, h('div', { class: 'card' }, demo, list)),
  };
}
