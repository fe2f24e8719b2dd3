// A tiny element builder. Text always goes in as text nodes (never as HTML), so names, tags and
// payloads that come from the server or from peers cannot inject markup into the page.

/**
 * h('button', { class: 'primary', onclick: fn, disabled: true }, 'Save')
 * Attributes: `class`, `text`, `on<event>` (a function), `dataset` (an object), `value`/`checked`
 * (set as properties), anything else with setAttribute (skipped when null, undefined or false).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'value' || key === 'checked' || key === 'muted' || key === 'srcObject') el[key] = value;
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace the children of `el` with `children`. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** HH:MM:SS.mmm (UTC, as the CLI) of epoch seconds. */
export function clock(seconds) {
  if (typeof seconds !== 'number') return '--:--:--';
  return new Date(seconds * 1000).toISOString().slice(11, 23);
}

/** A short "12 s ago" / "3 min ago" of epoch seconds. */
export function ago(seconds) {
  if (typeof seconds !== 'number') return '';
  const s = Math.max(0, Date.now() / 1000 - seconds);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

/** An error line the page shows (with a dismiss button), for errors that belong to a section. */
export function errorBox(error) {
  const box = h('div', { class: 'error', role: 'alert' },
    h('strong', {}, error && error.code ? error.code : 'Error'), ' ',
    error && error.code ? String(error.message).replace(`${error.code}: `, '') : String(error && error.message || error),
    h('button', { class: 'link dismiss', title: 'dismiss', onclick: () => box.remove() }, '×'));
  return box;
}

/** A slot that shows one error at a time (or none). */
export function errorSlot() {
  const slot = h('div', { class: 'error-slot' });
  slot.show = (error) => fill(slot, error ? errorBox(error) : null);
  slot.clear = () => slot.replaceChildren();
  return slot;
}

/** A button that asks once more before doing something destructive. */
export function confirmButton(label, confirmLabel, action, attrs = {}) {
  let armed = false;
  let timer = null;
  const button = h('button', {
    ...attrs,
    onclick: async () => {
      if (!armed) {
        armed = true;
        button.textContent = confirmLabel;
        button.classList.add('armed');
        timer = setTimeout(() => { armed = false; button.textContent = label; button.classList.remove('armed'); }, 4000);
        return;
      }
      clearTimeout(timer);
      armed = false;
      button.classList.remove('armed'); // confirmed: lists that wait for it may refresh again
      button.disabled = true;
      try {
        await action();
      } finally {
        button.disabled = false;
        button.textContent = label;
      }
    },
  }, label);
  return button;
}
