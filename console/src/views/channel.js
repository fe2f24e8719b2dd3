// One channel: its settings (TTL), tags, live peers (ListClients, with disconnect and GO_AWAY)
// and the live message trace.
import { admin, controlPlane } from '../aws.js';
import { ago, confirmButton, errorSlot, fill, h } from '../dom.js';
import { traceSection } from './trace.js';

function tryLinks(arn) {
  const href = (role) => `#/try/${encodeURIComponent(arn)}?role=${role}&start=1`;
  return h('div', { class: 'try-links' },
    h('a', { class: 'button primary', href: href('master'), target: '_blank', rel: 'opener', dataset: { role: 'master' } }, 'Open as master ↗'),
    h('a', { class: 'button primary', href: href('viewer'), target: '_blank', rel: 'opener', dataset: { role: 'viewer' } }, 'Open as viewer ↗'),
    h('span', { class: 'muted small' }, 'Each opens a tab that streams your camera through this channel.'));
}

function settingsCard(credentials, arn, onChanged) {
  const errors = errorSlot();
  const info = h('dl', { class: 'facts' });
  const ttl = h('input', { type: 'number', min: 5, max: 120, required: true, name: 'ttl' });
  const saved = h('span', { class: 'ok small' });
  let channel = null;

  async function load() {
    try {
      ({ ChannelInfo: channel } = await controlPlane(credentials, 'DescribeSignalingChannel', { ChannelARN: arn }));
      fill(info,
        h('dt', {}, 'Status'), h('dd', {}, h('span', { class: `status ${String(channel.ChannelStatus).toLowerCase()}` }, channel.ChannelStatus)),
        h('dt', {}, 'Type'), h('dd', {}, channel.ChannelType),
        h('dt', {}, 'Created'), h('dd', { title: new Date(channel.CreationTime * 1000).toISOString() }, ago(channel.CreationTime)),
        h('dt', {}, 'Version'), h('dd', { class: 'mono' }, channel.Version));
      ttl.value = (channel.SingleMasterConfiguration || {}).MessageTtlSeconds;
      onChanged(channel);
    } catch (exc) {
      errors.show(exc);
    }
  }

  const form = h('form', {
    class: 'inline-form', onsubmit: async (event) => {
      event.preventDefault();
      saved.textContent = '';
      try {
        await controlPlane(credentials, 'UpdateSignalingChannel', {
          ChannelARN: arn, CurrentVersion: channel.Version,
          SingleMasterConfiguration: { MessageTtlSeconds: Number(ttl.value) },
        });
        errors.clear();
        saved.textContent = 'saved';
        await load();
      } catch (exc) {
        errors.show(exc);
      }
    },
  }, h('label', { class: 'field narrow' }, h('span', {}, 'Message TTL (s)'), ttl), h('button', { type: 'submit' }, 'Update TTL'), saved);
  load();
  return h('section', { class: 'card' }, h('h2', {}, 'Settings'), errors, info, form);
}

function tagsCard(credentials, arn) {
  const errors = errorSlot();
  const body = h('tbody');
  const key = h('input', { name: 'tagKey', required: true, placeholder: 'key', spellcheck: 'false' });
  const value = h('input', { name: 'tagValue', placeholder: 'value', spellcheck: 'false' });

  async function load() {
    try {
      const tags = {};
      let token;
      do {
        const page = await controlPlane(credentials, 'ListTagsForResource', token ? { ResourceARN: arn, NextToken: token } : { ResourceARN: arn });
        Object.assign(tags, page.Tags || {});
        token = page.NextToken;
      } while (token);
      const keys = Object.keys(tags).sort();
      fill(body, keys.length ? keys.map((k) => h('tr', {}, h('td', { class: 'mono' }, k), h('td', { class: 'mono' }, tags[k]),
        h('td', { class: 'actions' }, h('button', {
          class: 'small link', title: `remove ${k}`, onclick: async () => {
            try {
              await controlPlane(credentials, 'UntagResource', { ResourceARN: arn, TagKeyList: [k] });
              await load();
            } catch (exc) {
              errors.show(exc);
            }
          },
        }, 'remove')))) : h('tr', {}, h('td', { colspan: 3, class: 'muted' }, 'No tags.')));
    } catch (exc) {
      errors.show(exc);
    }
  }

  const form = h('form', {
    class: 'inline-form', onsubmit: async (event) => {
      event.preventDefault();
      try {
        await controlPlane(credentials, 'TagResource', { ResourceARN: arn, Tags: [{ Key: key.value.trim(), Value: value.value }] });
        key.value = '';
        value.value = '';
        errors.clear();
        await load();
      } catch (exc) {
        errors.show(exc);
      }
    },
  }, key, value, h('button', { type: 'submit' }, 'Add tag'));
  load();
  return h('section', { class: 'card' }, h('h2', {}, 'Tags'), errors, h('table', { class: 'list compact tags' }, body), form);
}

function peersCard(credentials, arn) {
  const errors = errorSlot();
  const list = h('ul', { class: 'peer-list' }, h('li', { class: 'muted' }, 'Loading…'));
  let timer = null;

  const disconnect = (c) => confirmButton('Disconnect', 'Sure?', async () => {
    try {
      await admin(credentials, 'DisconnectClient', c.ClientId ? { ChannelARN: arn, ClientId: c.ClientId } : { ChannelARN: arn });
      await load();
    } catch (exc) {
      errors.show(exc);
    }
  }, { class: 'small danger' });

  async function load() {
    if (list.querySelector('.armed')) return; // a disconnect waits for its confirmation
    try {
      const { Clients = [] } = await admin(credentials, 'ListClients', { ChannelARN: arn });
      errors.clear();
      fill(list, Clients.length ? Clients.map((c) => h('li', { class: 'peer', dataset: { role: c.Role, clientId: c.ClientId || '' } },
        h('span', { class: `pill ${c.Role}` }, c.Role),
        h('div', { class: 'peer-body' },
          h('div', { class: 'mono id' }, c.ClientId || '(the master)', c.Virtual ? h('span', { class: 'muted' }, ' · virtual') : null),
          h('div', { class: 'muted' }, [c.RemoteAddress, `node ${c.Node}`].filter(Boolean).join(' · ')),
          // Another node's connection: presence knows only its role, client id and node.
          c.ConnectedSince == null ? null : h('div', { class: 'muted', title: 'messages from this client to the server · from the server to this client' },
            `connected ${ago(c.ConnectedSince)} · ${c.MessagesIn} in · ${c.MessagesOut} out`)),
        disconnect(c))) : h('li', { class: 'muted' }, 'Nobody is connected.'));
    } catch (exc) {
      errors.show(exc);
    }
  }

  const goAway = confirmButton('Send GO_AWAY', 'Send to all?', async () => {
    try {
      await admin(credentials, 'SendGoAway', { ChannelARN: arn, Type: 'GO_AWAY' });
      await load();
    } catch (exc) {
      errors.show(exc);
    }
  }, { class: 'small', title: 'every client of the channel gets GO_AWAY and is closed after the grace period' });
  load();
  timer = setInterval(load, 2000);
  const el = h('section', { class: 'card peers' },
    h('div', { class: 'title-row' }, h('h2', {}, 'Live peers'), h('span', { class: 'spacer' }), goAway),
    errors, list);
  return { el, dispose: () => clearInterval(timer) };
}

export function channelView({ credentials, navigate }, arn) {
  const title = h('h1', {}, arn.split('/')[1] || arn);
  const errors = errorSlot();
  const peers = peersCard(credentials, arn);
  const trace = traceSection(credentials, arn);
  const remove = confirmButton('Delete channel', 'Really delete?', async () => {
    try {
      await controlPlane(credentials, 'DeleteSignalingChannel', { ChannelARN: arn });
      navigate('#/');
    } catch (exc) {
      errors.show(exc);
    }
  }, { class: 'small danger' });
  const el = h('div', { class: 'channel' },
    h('div', { class: 'crumbs' }, h('a', { href: '#/' }, '← Channels')),
    h('div', { class: 'title-row' }, title, h('span', { class: 'spacer' }), remove),
    h('div', { class: 'arn mono' }, arn),
    errors, tryLinks(arn),
    h('div', { class: 'columns' },
      h('div', { class: 'side' }, settingsCard(credentials, arn, (c) => { title.textContent = c.ChannelName; }), tagsCard(credentials, arn), peers.el),
      h('div', { class: 'wide' }, trace.el)));
  return { el, dispose: () => { peers.dispose(); trace.dispose(); } };
}
