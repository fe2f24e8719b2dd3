// Builds the console into the Python package: `node build.mjs [--out DIR]` (default
// ../signalite/console). Run through `make console`, which installs the pinned packages first
// (npm ci: package-lock.json). The output is committed, so serving needs no Node.
//
// Reproducible: esbuild (pinned) bundles src/ the same way every time, file names carry a hash of
// their content, nothing depends on the clock or the machine; tests/e2e/test_console.py rebuilds
// into a temporary directory and compares byte for byte.
//
//   DIR/index.html, DIR/landing.html   the console page and the landing page of GET / (from the
//                                      templates here, with the hashed asset names filled in)
//   DIR/static/app-HASH.js, style-HASH.css  the console (src/), aws4fetch bundled in
//   DIR/static/kvs-webrtc-HASH.min.js  the KVS WebRTC SDK's own browser build, unmodified
//   DIR/static/THIRD-PARTY-NOTICES.txt the licenses of what is bundled
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const outIndex = args.indexOf('--out');
const out = resolve(outIndex >= 0 ? args[outIndex + 1] : join(here, '..', 'signalite', 'console'));
const staticDir = join(out, 'static');

const hash = (bytes) => createHash('sha256').update(bytes).digest('hex').slice(0, 10);
const pkg = (name) => JSON.parse(readFileSync(join(here, 'node_modules', name, 'package.json'), 'utf8'));

// 1. The console itself.
const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: { app: 'src/app.js', style: 'src/app.css' },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome109', 'firefox115', 'safari16'],
  entryNames: '[name]', // hashed below, from the content alone (esbuild's [hash] also covers input paths)
  outdir: 'static',
  write: false,
  metafile: true,
  legalComments: 'none', // the notices file below carries them
  charset: 'utf8',
  logLevel: 'warning',
});

const files = {}; // name in static/ → bytes
const names = {}; // template placeholder → name
for (const file of result.outputFiles) {
  const plain = relative(join(here, 'static'), file.path); // app.js, style.css
  const dot = plain.lastIndexOf('.');
  const name = `${plain.slice(0, dot)}-${hash(file.contents)}${plain.slice(dot)}`;
  files[name] = Buffer.from(file.contents);
  names[plain] = name;
}

// 2. The KVS WebRTC SDK, as its package ships it for browsers (window.KVSWebRTC).
const kvs = readFileSync(join(here, 'node_modules/amazon-kinesis-video-streams-webrtc/dist/kvs-webrtc.min.js'));
names['kvs-webrtc.js'] = `kvs-webrtc-${hash(kvs)}.min.js`;
files[names['kvs-webrtc.js']] = kvs;

// 3. The licenses of every package whose code ends up in a file above.
const bundled = new Set(['amazon-kinesis-video-streams-webrtc']);
for (const input of Object.keys(result.metafile.inputs)) {
  const match = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (match) bundled.add(match[1]);
}
const notices = [...bundled].sort().map((name) => {
  const meta = pkg(name);
  const dir = join(here, 'node_modules', name);
  const licenseFile = readdirSync(dir).sort().find((f) => /^(licen[sc]e|copying)/i.test(f));
  let text = licenseFile ? readFileSync(join(dir, licenseFile), 'utf8').trim() : `License: ${meta.license}`;
  if (name === 'amazon-kinesis-video-streams-webrtc') {
    // Its browser build bundles packages of its own; the package lists their licenses beside it.
    text += '\n\n' + readFileSync(join(dir, 'dist/kvs-webrtc.LICENSE'), 'utf8').trim();
  }
  return `${name} ${meta.version} (${meta.license})\n${'-'.repeat(40)}\n${text}\n`;
});
files['THIRD-PARTY-NOTICES.txt'] = Buffer.from(
  'Third-party software bundled in the Signalite console\n\n' + notices.join('\n'), 'utf8');

// 4. The pages, from the templates.
const page = (template) => readFileSync(join(here, template), 'utf8')
  .replace(/\{\{([a-z.-]+)\}\}/g, (_, key) => {
    if (!(key in names)) throw new Error(`${template}: unknown placeholder {{${key}}}`);
    return `/console/static/${names[key]}`;
  });
const pages = { 'index.html': page('index.html'), 'landing.html': page('landing.html') };

// Write: the static folder holds exactly this build's files (no stale hashed names left behind).
rmSync(staticDir, { recursive: true, force: true });
mkdirSync(staticDir, { recursive: true });
for (const [name, bytes] of Object.entries(files).sort()) writeFileSync(join(staticDir, name), bytes);
for (const [name, text] of Object.entries(pages)) writeFileSync(join(out, name), text);
const size = Object.values(files).reduce((n, b) => n + b.length, 0);
console.log(`console: ${Object.keys(files).length} assets (${(size / 1024).toFixed(0)} KiB) in ${relative(process.cwd(), staticDir) || '.'}`);
