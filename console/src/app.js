// The Signalite web console: a single page with hash routes.
//   #/                 channels (create, delete, TTL, tags, live counts)
//   #/channel/ARN      one channel: settings, tags, live peers, the live message trace
//   #/try/ARN?role=…   the browser as master or viewer with the camera (the KVS JS SDK)
//   #/try              pick a channel to try
// Without stored credentials every route shows the sign-in form first.
import { forgetCredentials, loadCredentials } from './aws.js';
import { errorBox, fill, h } from './dom.js';
import { channelView } from './views/channel.js';
import { channelsView } from './views/channels.js';
import { signInView } from './views/signin.js';
import { tryPickerView, tryView } from './views/tryit.js';

const root = document.getElementById('app');
let current = null; // the view on screen: { el, dispose? }
let shownKey = null; // the access key id the screen was rendered for

function parseRoute() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = hash.split('?');
  const params = new URLSearchParams(query);
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { name: parts[0] || 'channels', arg: parts.slice(1).join('/'), params };
}

export function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function header(credentials) {
  const route = parseRoute().name;
  const link = (href, label, name) => h('a', { href, class: route === name ? 'active' : null }, label);
  return h('header', { class: 'topbar' },
    h('a', { class: 'brand', href: '#/' }, h('span', { class: 'logo', 'aria-hidden': 'true' }), 'Signalite', h('span', { class: 'muted' }, ' console')),
    credentials ? h('nav', {}, link('#/', 'Channels', 'channels'), link('#/try', 'Try it', 'try')) : null,
    credentials ? h('div', { class: 'who' },
      h('span', { class: 'key', title: 'access key id' }, credentials.accessKeyId),
      h('span', { class: 'region', title: 'region' }, credentials.region),
      h('button', { class: 'link', onclick: () => { forgetCredentials(); navigate('#/'); } }, 'Sign out')) : null);
}

function render() {
  if (current && current.dispose) current.dispose();
  current = null;
  const credentials = loadCredentials();
  shownKey = credentials ? credentials.accessKeyId : null;
  const route = parseRoute();
  const ctx = { credentials, navigate, params: route.params };
  let view;
  try {
    if (!credentials) view = signInView({ ...ctx, onSignedIn: () => render() });
    else if (route.name === 'channel' && route.arg) view = channelView(ctx, route.arg);
    else if (route.name === 'try' && route.arg) view = tryView(ctx, route.arg);
    else if (route.name === 'try') view = tryPickerView(ctx);
    else view = channelsView(ctx);
  } catch (exc) {
    view = { el: errorBox(exc) };
  }
  current = view;
  fill(root, header(credentials), h('main', {}, view.el));
}

window.addEventListener('hashchange', render);
window.addEventListener('storage', () => {
  // Signed in or out in another tab: follow it (but a running "try it" keeps going otherwise).
  const credentials = loadCredentials();
  if ((credentials ? credentials.accessKeyId : null) !== shownKey) render();
});
// Anything a view did not catch still reaches the page, not only the browser's console.
const showUncaught = (error) => {
  const main = root.querySelector('main');
  if (main) main.prepend(errorBox(error || 'unexpected error'));
};
window.addEventListener('unhandledrejection', (e) => showUncaught(e.reason));
window.addEventListener('error', (e) => showUncaught(e.error || e.message));
render();
