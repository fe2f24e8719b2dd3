// Sign in with an access key. The key is checked with one signed ListSignalingChannels call and
// then kept in this browser only; the secret is used to sign requests and is never sent.
import { ApiError, controlPlane, saveCredentials } from '../aws.js';
import { errorSlot, h } from '../dom.js';

const DEFAULT_REGION = 'us-west-2'; // the server's default (signalite env exports it)

export function signInView({ onSignedIn }) {
  const errors = errorSlot();
  const field = (label, input, hint) => h('label', { class: 'field' }, h('span', {}, label), input, hint ? h('small', {}, hint) : null);
  const accessKeyId = h('input', { name: 'accessKeyId', autocomplete: 'username', required: true, spellcheck: 'false', placeholder: 'AKIA…' });
  const secret = h('input', { name: 'secretAccessKey', type: 'password', autocomplete: 'current-password', required: true });
  const region = h('input', { name: 'region', value: DEFAULT_REGION, required: true, pattern: '[a-z0-9\\-]+' });
  const token = h('input', { name: 'sessionToken', autocomplete: 'off', spellcheck: 'false' });
  const remember = h('input', { type: 'checkbox', name: 'remember', checked: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');

  const form = h('form', {
    class: 'card signin', onsubmit: async (event) => {
      event.preventDefault();
      errors.clear();
      const credentials = {
        accessKeyId: accessKeyId.value.trim(), secretAccessKey: secret.value, region: region.value.trim(),
        sessionToken: token.value.trim() || undefined,
      };
      submit.disabled = true;
      submit.textContent = 'Checking…';
      try {
        await controlPlane(credentials, 'ListSignalingChannels', { MaxResults: 1 });
        saveCredentials(credentials, remember.checked);
        onSignedIn();
      } catch (exc) {
        errors.show(exc instanceof ApiError ? exc : new ApiError('Error', exc.message, 0));
      } finally {
        submit.disabled = false;
        submit.textContent = 'Sign in';
      }
    },
  },
  h('h1', {}, 'Sign in'),
  h('p', { class: 'muted' }, 'Use an access key of this server (the root key ', h('code', {}, 'signalite serve'),
    ' printed, or ', h('code', {}, 'signalite env'), ' shows). Your browser signs every request with it; the secret never leaves this browser.'),
  errors,
  field('Access key ID', accessKeyId),
  field('Secret access key', secret),
  field('Region', region, 'Channels live in a region, as on AWS.'),
  h('details', {}, h('summary', {}, 'Temporary credentials'), field('Session token', token, 'Only for ASIA… keys from STS.')),
  h('label', { class: 'check' }, remember, ' Keep me signed in on this browser (otherwise: this tab only)'),
  submit);
  return { el: h('div', { class: 'center' }, form) };
}
