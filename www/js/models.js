// The published models (weights/index.json): the menu, download with progress into the
// Cache API, and the model card in words. Weights learned from the scan (js/learn.js) join
// the menu as one more entry.
import { $, mb, state, updateButtons } from './page.js';
import { ioCall } from './workers.js';

export const WEIGHT_CACHE = 'mrisr-weights-v1';

export async function loadModel() {
  const info = $('#model-info');
  let index;
  try {
    const r = await fetch('weights/index.json', { cache: 'no-cache' });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    index = await r.json();
  } catch {
    info.innerHTML = '<p class="muted">No model is published with this page yet, so super-resolution is unavailable. Viewing and saving work.</p>';
    return;
  }
  const models = index.models || [];
  const entry = models.find(m => m.default) || models[0];
  if (!entry) { info.textContent = 'weights/index.json lists no model.'; return; }
  // Several published models (e.g. MSE and perceptual): a menu, the default selected.
  const sel = $('#model');
  sel.replaceChildren(...models.map((m, i) => new Option(m.title || m.file, String(i), m === entry, m === entry)));
  $('#model-row').hidden = models.length < 2;
  sel.onchange = () => (sel.value === 'learned' ? useLearned() : loadEntry(models[+sel.value]));
  await loadEntry(entry);
}

export async function loadEntry(entry) {
  const info = $('#model-info');
  const token = state.modelToken = (state.modelToken || 0) + 1; // the last pick wins
  state.weights = null;
  updateButtons();
  info.innerHTML = '<p class="muted">Loading the model…</p>';
  try {
    const bytes = await fetchWeights(entry);
    const { card, summary } = await ioCall('card', { weights: bytes.slice(0) });
    if (token !== state.modelToken) return;
    state.weights = state.published = { bytes, entry, card };
    showCard(card, summary, entry);
  } catch (e) {
    if (token !== state.modelToken) return;
    info.innerHTML = '';
    const p = document.createElement('p');
    p.className = 'status error';
    p.textContent = `The model could not be loaded: ${e.message}`;
    info.append(p);
  }
  updateButtons();
}

// Weights learned from the scan ({bytes, entry, card, summary}) become the current model and
// an entry of the menu ("Learned from …"), so the published ones stay one pick away.
export function addLearned(learned) {
  state.learned = learned;
  const sel = $('#model');
  let opt = sel.querySelector('option[value=learned]');
  if (!opt) { opt = new Option('', 'learned'); sel.append(opt); }
  opt.textContent = learned.entry.title;
  sel.value = 'learned';
  $('#model-row').hidden = sel.options.length < 2;
  useLearned();
}

export function useLearned() {
  const l = state.learned;
  if (!l) return;
  state.modelToken = (state.modelToken || 0) + 1; // a published model still loading loses
  state.weights = { bytes: l.bytes, entry: l.entry, card: l.card };
  showCard(l.card, l.summary, l.entry);
  updateButtons();
}

export async function fetchWeights(entry) {
  const url = new URL('weights/' + entry.file, document.baseURI).href;
  const key = url + (entry.sha256 ? `#${entry.sha256}` : entry.bytes ? `#${entry.bytes}` : '');
  const cache = self.caches ? await caches.open(WEIGHT_CACHE).catch(() => null) : null;
  const hit = cache && await cache.match(key);
  if (hit) return hit.arrayBuffer();
  const bar = $('#weights-progress');
  bar.hidden = false;
  const fill = bar.querySelector('.bar > div'), text = bar.querySelector('span');
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${entry.file}: HTTP ${r.status}`);
  const total = +r.headers.get('content-length') || entry.bytes || 0;
  const reader = r.body.getReader();
  const chunks = [];
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    got += value.length;
    fill.style.width = total ? `${(100 * got / total).toFixed(1)}%` : '50%';
    text.textContent = `Downloading the model from this site: ${mb(got)}${total ? ' of ' + mb(total) : ''}`;
  }
  const bytes = new Uint8Array(got);
  let o = 0;
  for (const c of chunks) { bytes.set(c, o); o += c.length; }
  bar.hidden = true;
  if (cache) await cache.put(key, new Response(bytes.slice(0))).catch(() => {});
  return bytes.buffer;
}

// What a person asks of a model (the card's summary from the module: what it undoes, its
// network, what it learned from, how it measured against cubic) and its size; the full card
// stays one click away.
export function showCard(card, summary, entry) {
  const info = $('#model-info');
  info.replaceChildren();
  const h = document.createElement('h3');
  h.textContent = card?.name || entry.title || entry.file;
  info.append(h);
  const dl = document.createElement('dl');
  const rows = [...summary];
  if (entry?.bytes) rows.push(['Size', entry.bytes < 1048576 ? `${Math.ceil(entry.bytes / 1024)} KB` : mb(entry.bytes)]);
  for (const [k, v] of rows) {
    const dt = document.createElement('dt'), dd = document.createElement('dd');
    dt.textContent = k;
    dd.textContent = v;
    dl.append(dt, dd);
  }
  info.append(dl);
  const more = document.createElement('details');
  const sum = document.createElement('summary');
  sum.textContent = 'Full model card';
  const pre = document.createElement('pre');
  pre.textContent = JSON.stringify(card, null, 2);
  more.append(sum, pre);
  info.append(more);
}
