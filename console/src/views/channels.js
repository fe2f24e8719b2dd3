// The channels of this account and region: create (name, TTL, tags), delete, and who is live.
import { admin, controlPlane } from '../aws.js';
import { ago, confirmButton, errorSlot, fill, h } from '../dom.js';

/** Every channel (all pages of ListSignalingChannels). */
export async function listChannels(credentials) {
  const out = [];
  let token;
  do {
    const page = await controlPlane(credentials, 'ListSignalingChannels', token ? { NextToken: token, MaxResults: 100 } : { MaxResults: 100 });
    out.push(...(page.ChannelInfoList || []));
    token = page.NextToken;
  } while (token);
  return out.sort((a, b) => a.ChannelName.localeCompare(b.ChannelName));
}

/** Live master/viewer counts per channel ARN, summed over the nodes; null if the admin API refuses. */
export async function liveCounts(credentials) {
  try {
    const { Channels = [] } = await admin(credentials, 'ListLiveChannels', {});
    const counts = {};
    for (const c of Channels) {
      const sum = (counts[c.ChannelARN] = counts[c.ChannelARN] || { master: false, viewers: 0, retained: 0 });
      sum.master = sum.master || c.Master;
      sum.viewers += c.Viewers;
      sum.retained += c.Retained || 0; // not reported per channel (the bus keeps them cluster-wide)
    }
    return counts;
  } catch (exc) {
    return { error: exc };
  }
}

/** "k=v, k2=v2" → [{Key, Value}] (a key without "=" gets an empty value). */
export function parseTags(text) {
  return text.split(',').map((t) => t.trim()).filter(Boolean).map((t) => {
    const at = t.indexOf('=');
    return at < 0 ? { Key: t, Value: '' } : { Key: t.slice(0, at).trim(), Value: t.slice(at + 1).trim() };
  });
}

export function liveBadge(live) {
  if (!live) return h('span', { class: 'muted' }, 'idle');
  return h('span', { class: 'live' },
    live.master ? h('span', { class: 'pill master' }, 'master') : null,
    live.viewers ? h('span', { class: 'pill viewer' }, `${live.viewers} viewer${live.viewers === 1 ? '' : 's'}`) : null,
    live.retained ? h('span', { class: 'pill retained', title: 'messages kept for a recipient not connected' }, `${live.retained} retained`) : null,
    !live.master && !live.viewers && !live.retained ? h('span', { class: 'muted' }, 'idle') : null);
}

export function channelsView({ credentials }) {
  const errors = errorSlot();
  const body = h('tbody', {}, h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'Loading…')));
  const note = h('p', { class: 'muted small' });
  let timer = null;
  let disposed = false;

  async function refresh() {
    if (body.querySelector('.armed')) return; // a delete waits for its confirmation: keep the rows
    try {
      const [channels, live] = await Promise.all([listChannels(credentials), liveCounts(credentials)]);
      if (disposed) return;
      errors.clear();
      fill(note, live.error ? `Live counts need the admin API (${live.error.code}).` : 'Live counts refresh every 5 s.');
      if (!channels.length) {
        fill(body, h('tr', {}, h('td', { colspan: 6, class: 'muted' }, `No signaling channels in ${credentials.region} yet: create one above.`)));
        return;
      }
      fill(body, channels.map((c) => h('tr', { dataset: { arn: c.ChannelARN } },
        h('td', {}, h('a', { href: `#/channel/${encodeURIComponent(c.ChannelARN)}`, class: 'channel-link' }, c.ChannelName),
          h('div', { class: 'arn' }, c.ChannelARN)),
        h('td', {}, h('span', { class: `status ${String(c.ChannelStatus).toLowerCase()}` }, c.ChannelStatus)),
        h('td', { class: 'num' }, `${(c.SingleMasterConfiguration || {}).MessageTtlSeconds ?? '?'} s`),
        h('td', {}, live.error ? h('span', { class: 'muted' }, '—') : liveBadge(live[c.ChannelARN])),
        h('td', { class: 'muted', title: new Date(c.CreationTime * 1000).toISOString() }, ago(c.CreationTime)),
        h('td', { class: 'actions' },
          h('a', { class: 'button small', href: `#/try/${encodeURIComponent(c.ChannelARN)}?role=master&start=1`, target: '_blank', rel: 'opener' }, 'Master'),
          h('a', { class: 'button small', href: `#/try/${encodeURIComponent(c.ChannelARN)}?role=viewer&start=1`, target: '_blank', rel: 'opener' }, 'Viewer'),
          confirmButton('Delete', 'Really delete?', async () => {
            try {
              await controlPlane(credentials, 'DeleteSignalingChannel', { ChannelARN: c.ChannelARN, CurrentVersion: c.Version });
              await refresh();
            } catch (exc) {
              errors.show(exc);
            }
          }, { class: 'small danger' })))));
    } catch (exc) {
      if (!disposed) errors.show(exc);
    }
  }

  const name = h('input', { name: 'channelName', required: true, pattern: '[a-zA-Z0-9_.\\-]{1,256}', placeholder: 'my-channel', spellcheck: 'false' });
  const ttl = h('input', { name: 'ttl', type: 'number', min: 5, max: 120, value: 60, required: true });
  const tags = h('input', { name: 'tags', placeholder: 'team=video, env=dev', spellcheck: 'false' });
  const create = h('form', {
    class: 'card inline-form', onsubmit: async (event) => {
      event.preventDefault();
      const request = {
        ChannelName: name.value.trim(), ChannelType: 'SINGLE_MASTER',
        SingleMasterConfiguration: { MessageTtlSeconds: Number(ttl.value) },
      };
      const tagList = parseTags(tags.value);
      if (tagList.length) request.Tags = tagList;
      try {
        const { ChannelARN } = await controlPlane(credentials, 'CreateSignalingChannel', request);
        name.value = '';
        tags.value = '';
        errors.clear();
        await refresh();
        const row = body.querySelector(`tr[data-arn="${CSS.escape(ChannelARN)}"]`);
        if (row) row.classList.add('fresh');
      } catch (exc) {
        errors.show(exc);
      }
    },
  },
  h('h2', {}, 'New channel'),
  h('label', { class: 'field' }, h('span', {}, 'Name'), name),
  h('label', { class: 'field narrow' }, h('span', {}, 'Message TTL (s)'), ttl),
  h('label', { class: 'field wide' }, h('span', {}, 'Tags'), tags),
  h('button', { type: 'submit', class: 'primary' }, 'Create'));

  const el = h('section', { class: 'channels' },
    h('div', { class: 'title-row' }, h('h1', {}, 'Signaling channels'), h('span', { class: 'pill region' }, credentials.region),
      h('button', { class: 'small', onclick: refresh }, 'Refresh')),
    create, errors,
    h('table', { class: 'list' },
      h('thead', {}, h('tr', {}, ['Channel', 'Status', 'TTL', 'Live', 'Created', ''].map((t) => h('th', {}, t)))), body),
    note);
  refresh();
  timer = setInterval(refresh, 5000);
  return { el, dispose: () => { disposed = true; clearInterval(timer); } };
}
