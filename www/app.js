// mrisr page: a thin shell around the wasm module (see web/src). Heavy work (parsing, export,
// super-resolution) runs in Web Workers; the viewer renders slices with the module on this thread.
import init, { VolumeHandle, version } from './pkg/mrisr_web.js';

const $ = sel => document.querySelector(sel);
const PLANES = ['Axial', 'Coronal', 'Sagittal'];
// world axes shown horizontally / vertically / fixed in each plane (0 = x/R, 1 = y/A, 2 = z/S)
const PLANE_AXES = [[0, 1, 2], [0, 2, 1], [1, 2, 0]];
// orientation letters: [left, right, top, bottom]
const LETTERS = [['R', 'L', 'A', 'P'], ['R', 'L', 'S', 'I'], ['A', 'P', 'S', 'I']];

const state = {
  module: null,
  io: null,
  orig: null, // {handle, info, layout, label}
  input: null, // the region given to the network, when it is not the whole volume
  result: null,
  cursor: [0, 0, 0], // RAS+ mm
  wl: { c: 0, w: 1 },
  preset: 'auto',
  zoom: 1,
  compare: 'side',
  swipe: 0.5,
  weights: null, // {bytes: ArrayBuffer, entry}
  running: null,
  gpu: null, // Promise<boolean>: WebGPU passed the check
  diag: { adapter: null, gpu: '', lastRun: null }, // for the Diagnostics panel
};

function setStatus(el, text, kind = '') {
  el.textContent = text;
  el.className = 'status' + (kind ? ' ' + kind : '');
}
function setPhase(p) { document.body.dataset.phase = p; }
function mb(n) { return (n / 1048576).toFixed(n < 10 * 1048576 ? 1 : 0) + ' MB'; }
function fmt(v, d = 2) { return Number.isFinite(v) ? (+v.toFixed(d)).toString() : '–'; }
function duration(s) {
  if (!Number.isFinite(s)) return '';
  s = Math.max(0, Math.round(s));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

// ---------------------------------------------------------------- workers
class WasmWorker {
  constructor(module) {
    this.w = new Worker(new URL('worker.js', import.meta.url), { type: 'module' });
    this.next = 1;
    this.pending = new Map();
    this.w.onmessage = ({ data }) => {
      const p = this.pending.get(data.id);
      if (!p) return;
      if (data.progress) { p.onProgress?.(...data.progress); return; }
      this.pending.delete(data.id);
      if (data.ok) p.resolve(data.value);
      else p.reject(Object.assign(new Error(data.error), { crashed: data.crashed }));
    };
    this.w.onerror = e => this.fail(new Error(e.message || 'the worker failed to start'));
    this.ready = this.call('init', { module });
  }
  call(op, args = {}, transfer = [], onProgress = null) {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      this.w.postMessage({ id, op, ...args }, transfer);
    });
  }
  fail(err) {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
  terminate(reason = 'cancelled') {
    this.w.terminate();
    this.fail(Object.assign(new Error(reason), { cancelled: true }));
  }
}

async function ioCall(op, args, transfer) {
  if (!state.io) state.io = new WasmWorker(state.module);
  await state.io.ready;
  try {
    return await state.io.call(op, args, transfer);
  } catch (e) {
    if (e.crashed) { state.io.terminate('restarted'); state.io = null; }
    throw e;
  }
}

// ---------------------------------------------------------------- opening files
async function filesFromDrop(dt) {
  // Entries must be taken synchronously, before the first await empties the DataTransfer.
  const entries = [...dt.items].filter(i => i.kind === 'file').map(i => i.webkitGetAsEntry?.()).filter(Boolean);
  if (!entries.length) return [...dt.files].map(f => ({ name: f.name, file: f }));
  const out = [];
  const fileOf = e => new Promise((res, rej) => e.file(res, rej));
  const readAll = async dir => {
    const r = dir.createReader(), all = [];
    for (;;) {
      const batch = await new Promise((res, rej) => r.readEntries(res, rej));
      if (!batch.length) return all;
      all.push(...batch);
    }
  };
  const walk = async (e, prefix) => {
    if (e.isFile) out.push({ name: prefix + e.name, file: await fileOf(e) });
    else if (e.isDirectory) for (const c of await readAll(e)) await walk(c, prefix + e.name + '/');
  };
  for (const e of entries) await walk(e, '');
  return out;
}

async function openFiles(list) {
  const status = $('#open-status');
  if (!list.length) { setStatus(status, 'No files found there.', 'error'); return; }
  const total = list.reduce((s, f) => s + f.file.size, 0);
  setStatus(status, `Reading ${list.length} files (${mb(total)})…`);
  setPhase('reading');
  try {
    const buffers = await Promise.all(list.map(f => f.file.arrayBuffer()));
    setStatus(status, `Looking for series in ${list.length} files…`);
    const report = await ioCall('scan', { names: list.map(f => f.name), buffers }, buffers);
    showSeries(report);
    const n = report.series.length;
    setStatus(status, n ? `${list.length} files read: ${n} series found. Nothing was uploaded.`
      : `No images found in ${list.length} files.`, n ? 'ok' : 'error');
    setPhase(n ? 'scanned' : 'empty');
  } catch (e) {
    setStatus(status, `Could not read the files: ${e.message}`, 'error');
    setPhase('error');
  }
}

function showSeries(report) {
  const ul = $('#series-list');
  ul.replaceChildren();
  for (const s of report.series) {
    const li = document.createElement('li');
    li.dataset.index = s.index;
    const t = document.createElement('div');
    t.className = 'title';
    t.textContent = (s.number != null ? `#${s.number} ` : '') + s.description + (s.echo != null ? ` (echo ${s.echo})` : '');
    const m = document.createElement('div');
    m.className = 'meta';
    m.textContent = [s.modality || (s.kind === 'nifti' ? 'NIfTI' : ''), `${s.dims.join(' × ')} voxels`,
      `${s.spacing.map(v => fmt(v, 2)).join(' × ')} mm`,
      s.volumes > 1 ? `${s.volumes} volumes (first shown)` : '',
      s.kind === 'dicom' ? `${s.files} files` : ''].filter(Boolean).join(' · ');
    li.append(t, m);
    for (const w of [...s.warnings, ...(s.problem ? [s.problem] : [])]) {
      const d = document.createElement('div');
      d.className = 'warn';
      d.textContent = w;
      li.append(d);
    }
    if (s.problem) li.classList.add('bad');
    else li.addEventListener('click', () => pickSeries(s, li));
    ul.append(li);
  }
  const sk = $('#skipped');
  sk.hidden = !report.skipped.length;
  if (report.skipped.length) {
    sk.querySelector('summary').textContent = `${report.skipped.length} file(s) not used`;
    sk.querySelector('ul').replaceChildren(...report.skipped.slice(0, 200).map(([n, r]) => {
      const li = document.createElement('li');
      li.textContent = `${n}: ${r}`;
      return li;
    }));
  }
  $('#series-empty').hidden = report.series.length > 0;
}

async function pickSeries(s, li) {
  if (li.classList.contains('selected') && state.orig) return;
  document.querySelectorAll('#series-list li').forEach(x => x.classList.remove('selected'));
  li.classList.add('selected');
  const status = $('#open-status');
  setStatus(status, `Loading “${s.description}”…`);
  setPhase('loading');
  try {
    const parts = await ioCall('load', { index: s.index, volume: 0 });
    const handle = VolumeHandle.fromParts(parts.dims, parts.spacing, parts.affine, parts.data, parts.meta);
    for (const v of [state.orig, state.input, state.result]) v?.handle.free();
    state.orig = wrap(handle, 'Original');
    state.input = state.result = null;
    const d = state.orig.info.dims;
    state.cursor = handle.world((d[0] - 1) / 2, (d[1] - 1) / 2, (d[2] - 1) / 2);
    state.zoom = 1;
    applyPreset('auto');
    buildViewer();
    updateButtons();
    setStatus(status, `Showing “${s.description}”: ${d.join(' × ')} voxels.`, 'ok');
    setPhase('loaded');
  } catch (e) {
    setStatus(status, `Could not load this series: ${e.message}`, 'error');
    setPhase('error');
  }
}

function wrap(handle, label) {
  return { handle, label, info: JSON.parse(handle.info()), layout: JSON.parse(handle.layout()), cache: [] };
}

// ---------------------------------------------------------------- viewer
let viewports = [];

function buildViewer() {
  const grid = $('#grid');
  grid.querySelectorAll('.vp').forEach(n => n.remove());
  $('#empty').hidden = !!state.orig;
  viewports = [];
  if (!state.orig) return;
  $('#compare-group').hidden = !state.result;
  $('#swipe').hidden = !(state.result && state.compare === 'swipe');
  grid.className = 'grid cols-3';
  let rows = [['orig']];
  if (state.result) {
    rows = { side: [['orig'], ['result']], swipe: [['orig', 'result']], result: [['result']], original: [['orig']] }[state.compare];
  }
  for (const vols of rows) {
    for (let plane = 0; plane < 3; plane++) {
      const el = document.createElement('div');
      el.className = 'vp';
      const canvas = document.createElement('canvas');
      canvas.dataset.plane = plane;
      const bar = document.createElement('div');
      bar.className = 'vp-bar';
      const name = document.createElement('span');
      name.className = 'name';
      const label = vols.length === 2 ? 'original | result' : state[vols[0]].label.toLowerCase();
      name.textContent = `${PLANES[plane]}${state.result ? ' · ' + label : ''}`;
      const slider = document.createElement('input');
      slider.type = 'range';
      slider.min = 0;
      slider.max = state.orig.layout[plane].count - 1;
      slider.setAttribute('aria-label', `${PLANES[plane]} slice`);
      const pos = document.createElement('span');
      pos.className = 'pos';
      bar.append(name, slider, pos);
      const stage = document.createElement('div');
      stage.className = 'stage';
      stage.append(canvas);
      el.append(stage, bar);
      grid.append(el);
      const vp = { plane, vols, canvas, slider, pos };
      slider.addEventListener('input', () => setSlice(plane, +slider.value));
      attachPointer(vp);
      viewports.push(vp);
    }
  }
  requestDraw();
}

// the 2D "screen mm" frame of a plane: x grows to the patient's left (or posterior), y downwards
function toScreen(plane, w) { const [h, v] = PLANE_AXES[plane]; return [-w[h], -w[v]]; }

// where a volume's slice image lies in screen mm: {x0, y0, pw, ph, w, h}
function planeRect(vol, plane) {
  const L = vol.layout[plane];
  const vox = (x, y) => {
    const ijk = [0, 0, 0];
    ijk[L.axis_h] = L.flip_h ? L.width - 1 - x : x;
    ijk[L.axis_v] = L.flip_v ? L.height - 1 - y : y;
    return ijk;
  };
  const p00 = toScreen(plane, vol.handle.world(...vox(0, 0)));
  const p10 = toScreen(plane, vol.handle.world(...vox(Math.max(L.width - 1, 1), 0)));
  const p01 = toScreen(plane, vol.handle.world(...vox(0, Math.max(L.height - 1, 1))));
  const pw = L.width > 1 ? (p10[0] - p00[0]) / (L.width - 1) : L.px_w_mm;
  const ph = L.height > 1 ? (p01[1] - p00[1]) / (L.height - 1) : L.px_h_mm;
  return { x0: p00[0] - pw / 2, y0: p00[1] - ph / 2, pw, ph, w: L.width, h: L.height };
}

function sliceOf(vol, plane) {
  const v = vol.handle.voxel(...state.cursor);
  const L = vol.layout[plane];
  return Math.round(v[L.axis_fixed]);
}

function sliceImage(vol, plane, slice) {
  const key = `${slice}|${state.wl.c}|${state.wl.w}`;
  const c = vol.cache[plane];
  if (c && c.key === key) return c.canvas;
  const L = vol.layout[plane];
  const px = vol.handle.render(plane, slice, state.wl.c, state.wl.w);
  const canvas = c?.canvas ?? document.createElement('canvas');
  canvas.width = L.width;
  canvas.height = L.height;
  canvas.getContext('2d').putImageData(new ImageData(px, L.width, L.height), 0, 0);
  vol.cache[plane] = { key, canvas };
  return canvas;
}

function viewTransform(vp) {
  const { canvas, plane } = vp;
  const W = canvas.width, H = canvas.height;
  const r = planeRect(state.orig, plane);
  const fw = Math.abs(r.w * r.pw), fh = Math.abs(r.h * r.ph);
  const scale = Math.min(W / fw, H / fh) * 0.96 * state.zoom;
  let [cx, cy] = [r.x0 + r.w * r.pw / 2, r.y0 + r.h * r.ph / 2];
  if (state.zoom > 1) [cx, cy] = toScreen(plane, state.cursor);
  return {
    scale,
    toPx: (sx, sy) => [W / 2 + (sx - cx) * scale, H / 2 + (sy - cy) * scale],
    toMm: (px, py) => [cx + (px - W / 2) / scale, cy + (py - H / 2) / scale],
  };
}

let drawQueued = false;
function requestDraw() {
  if (drawQueued) return;
  drawQueued = true;
  requestAnimationFrame(() => { drawQueued = false; viewports.forEach(drawViewport); updateReadouts(); });
}

function drawViewport(vp) {
  const { canvas, plane } = vp;
  const dpr = window.devicePixelRatio || 1;
  const W = Math.max(1, Math.round(canvas.clientWidth * dpr)), H = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== W || canvas.height !== H) { canvas.width = W; canvas.height = H; }
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, W, H);
  const T = viewTransform(vp);
  ctx.imageSmoothingEnabled = false; // show voxels as they are: resolution is what is judged here
  const swipeX = W * state.swipe;
  vp.vols.forEach((key, n) => {
    const vol = state[key];
    if (!vol) return;
    const s = sliceOf(vol, plane);
    if (s < 0 || s >= vol.layout[plane].count) return; // the cursor is outside this (cropped) volume
    const img = sliceImage(vol, plane, s);
    const r = planeRect(vol, plane);
    const [x0, y0] = T.toPx(r.x0, r.y0);
    const [x1, y1] = T.toPx(r.x0 + r.w * r.pw, r.y0 + r.h * r.ph);
    ctx.save();
    if (vp.vols.length === 2) {
      ctx.beginPath();
      if (n === 0) ctx.rect(0, 0, swipeX, H); else ctx.rect(swipeX, 0, W - swipeX, H);
      ctx.clip();
    }
    ctx.drawImage(img, Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
    ctx.restore();
  });
  if (vp.vols.length === 2) {
    ctx.strokeStyle = 'rgba(255,255,255,.8)';
    ctx.lineWidth = 2 * dpr;
    ctx.beginPath(); ctx.moveTo(swipeX, 0); ctx.lineTo(swipeX, H); ctx.stroke();
  }
  // linked cursor
  const [px, py] = T.toPx(...toScreen(plane, state.cursor));
  const gap = 8 * dpr;
  ctx.strokeStyle = 'rgba(74,163,255,.85)';
  ctx.lineWidth = 1 * dpr;
  ctx.beginPath();
  ctx.moveTo(0, py); ctx.lineTo(px - gap, py); ctx.moveTo(px + gap, py); ctx.lineTo(W, py);
  ctx.moveTo(px, 0); ctx.lineTo(px, py - gap); ctx.moveTo(px, py + gap); ctx.lineTo(px, H);
  ctx.stroke();
  // orientation letters and labels
  ctx.fillStyle = '#e0b040';
  ctx.font = `${13 * dpr}px system-ui, sans-serif`;
  const [l, r, t, b] = LETTERS[plane];
  ctx.textBaseline = 'middle';
  ctx.textAlign = 'left'; ctx.fillText(l, 6 * dpr, H / 2);
  ctx.textAlign = 'right'; ctx.fillText(r, W - 6 * dpr, H / 2);
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top'; ctx.fillText(t, W / 2, 6 * dpr);
  ctx.textBaseline = 'bottom'; ctx.fillText(b, W / 2, H - 6 * dpr);
  ctx.fillStyle = 'rgba(230,233,238,.85)';
  ctx.font = `${12 * dpr}px system-ui, sans-serif`;
  ctx.textAlign = 'left';
  ctx.textBaseline = 'top';
  const lines = vp.vols.map(key => {
    const vol = state[key];
    const v = vol.handle.voxel(...state.cursor).map(Math.round);
    return `${vol.label}: ${fmt(vol.handle.value(...v), 1)}`;
  });
  lines.forEach((s, n) => ctx.fillText(s, 8 * dpr, (8 + 16 * n) * dpr));
}

function updateReadouts() {
  if (!state.orig) return;
  for (const vp of viewports) {
    const L = state.orig.layout[vp.plane];
    const s = sliceOf(state.orig, vp.plane);
    vp.slider.value = s;
    const mm = state.cursor[PLANE_AXES[vp.plane][2]];
    vp.pos.textContent = `${s + 1} / ${L.count} · ${fmt(mm, 1)} mm`;
  }
  $('#wl-readout').textContent = `C ${fmt(state.wl.c, 0)} · W ${fmt(state.wl.w, 0)}`;
  $('#zoom-readout').textContent = `${Math.round(state.zoom * 100)} %`;
}

function setSlice(plane, slice) {
  const h = state.orig.handle;
  const v = h.voxel(...state.cursor);
  v[state.orig.layout[plane].axis_fixed] = Math.max(0, Math.min(state.orig.layout[plane].count - 1, slice));
  state.cursor = h.world(...v);
  requestDraw();
}

function attachPointer(vp) {
  const c = vp.canvas;
  let start = null;
  c.addEventListener('pointerdown', e => {
    c.setPointerCapture(e.pointerId);
    start = { x: e.clientX, y: e.clientY, wl: { ...state.wl }, drag: false };
  });
  c.addEventListener('pointermove', e => {
    if (!start) return;
    const dx = e.clientX - start.x, dy = e.clientY - start.y;
    if (!start.drag && Math.hypot(dx, dy) < 4) return;
    start.drag = true;
    const range = Math.max(1e-6, state.orig.info.p_hi - state.orig.info.p_lo);
    state.wl = { w: Math.max(range * 0.005, start.wl.w + dx * range / 250), c: start.wl.c + dy * range / 250 };
    state.preset = 'custom';
    $('#wl-preset').value = 'custom';
    requestDraw();
  });
  c.addEventListener('pointerup', e => {
    if (start && !start.drag) {
      const rect = c.getBoundingClientRect();
      const dpr = c.width / rect.width;
      const [sx, sy] = viewTransform(vp).toMm((e.clientX - rect.left) * dpr, (e.clientY - rect.top) * dpr);
      const [h, v] = PLANE_AXES[vp.plane];
      const w = [...state.cursor];
      w[h] = -sx; w[v] = -sy;
      state.cursor = w;
      requestDraw();
    }
    start = null;
  });
  c.addEventListener('wheel', e => {
    e.preventDefault();
    if (e.ctrlKey || e.metaKey) {
      setZoom(state.zoom * (e.deltaY < 0 ? 1.15 : 1 / 1.15));
    } else {
      setSlice(vp.plane, sliceOf(state.orig, vp.plane) + (e.deltaY > 0 ? 1 : -1));
    }
  }, { passive: false });
}

function setZoom(z) { state.zoom = Math.max(1, Math.min(16, z)); requestDraw(); }

function applyPreset(p) {
  const i = state.orig?.info;
  state.preset = p;
  $('#wl-preset').value = p;
  if (!i) return;
  const win = (lo, hi) => ({ c: (lo + hi) / 2, w: Math.max(1e-6, hi - lo) });
  const span = i.p_hi - i.p_lo;
  if (p === 'auto') state.wl = win(i.p_lo, i.p_hi);
  else if (p === 'full') state.wl = win(i.min, i.max);
  else if (p === 'soft') state.wl = win(i.p_lo, i.p_lo + span * 1.3);
  else if (p === 'contrast') state.wl = win(i.p_lo + span * 0.1, i.p_lo + span * 0.6);
  requestDraw();
}

// ---------------------------------------------------------------- model weights
const WEIGHT_CACHE = 'mrisr-weights-v1';

async function loadModel() {
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
  sel.onchange = () => loadEntry(models[+sel.value]);
  await loadEntry(entry);
}

async function loadEntry(entry) {
  const info = $('#model-info');
  const token = state.modelToken = (state.modelToken || 0) + 1; // the last pick wins
  state.weights = null;
  updateButtons();
  info.innerHTML = '<p class="muted">Loading the model…</p>';
  try {
    const bytes = await fetchWeights(entry);
    const card = await ioCall('card', { weights: bytes.slice(0) });
    if (token !== state.modelToken) return;
    state.weights = { bytes, entry, card };
    showCard(card, entry);
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

async function fetchWeights(entry) {
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

function showCard(card, entry) {
  const info = $('#model-info');
  info.replaceChildren();
  const h = document.createElement('h3');
  h.textContent = card?.name || entry.title || entry.file;
  info.append(h);
  const dl = document.createElement('dl');
  for (const [k, v] of cardSummary(card || {}, entry)) {
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

// What a person asks of a model, from its card: what it undoes, what it learned from, how much
// it measured over cubic, its size. The full card stays one click away.
function cardSummary(card, entry) {
  const rows = [];
  const AXES = ['i', 'j', 'k'];
  const undoes = d => {
    if (!d) return '';
    const along = f => f.map((x, a) => x > 1 ? `${x}× along ${AXES[a]}` : '').filter(Boolean).join(', ');
    const max = f => Math.max(...f);
    switch (d.kind) {
      case 'thick_slices': return `slices ${max(d.factor)}× thicker (${d.profile || 'box'} profile)`;
      case 'k_space_truncation': return `a ${max(d.factor)}× smaller matrix (k-space cut ${along(d.factor)})`;
      case 'gaussian_blur': return `a blur of ${d.fwhm_mm} mm (FWHM) along ${AXES[d.axis]}`;
      case 'chain': return (d.steps || []).map(undoes).join(', then ');
      default: return d.kind;
    }
  };
  rows.push(['Undoes', undoes(card.degradation)]);
  const n = card.net;
  if (n) {
    const c = n.channels, params = 27 * (c + n.blocks * 2 * c * c + c * c + c) + c * (2 * n.blocks + 2) + 1;
    rows.push(['Network', `${n.blocks} blocks × ${c} channels, ${Math.round(params / 1000)}k parameters`]);
  }
  const loss = card.loss?.kind === 'perceptual' ? `MSE + ${card.loss.weight} × VGG16 perceptual` : 'MSE';
  if (card.train_data?.length) rows.push(['Trained on', `${card.train_data.join(', ')} (${card.steps} steps, ${loss})`]);
  const m = card.metrics;
  if (m) {
    const gain = m.psnr_db - m.baseline_psnr_db;
    rows.push(['Measured', `${gain >= 0 ? '+' : ''}${gain.toFixed(2)} dB PSNR over cubic (SSIM ${m.ssim.toFixed(3)} vs ${m.baseline_ssim.toFixed(3)}) on ${m.on}`]);
  }
  if (entry?.bytes) rows.push(['Size', entry.bytes < 1048576 ? `${Math.ceil(entry.bytes / 1024)} KB` : mb(entry.bytes)]);
  return rows;
}

// ---------------------------------------------------------------- super-resolution
async function chooseBackend() {
  const want = $('#backend').value;
  if (want !== 'auto') return want;
  return (await probeGpu()) ? 'webgpu' : 'cpu';
}

function srInput() {
  const region = $('#region').value;
  if (region === 'all') return state.orig.handle;
  const n = +region;
  const v = state.orig.handle.voxel(...state.cursor);
  const d = state.orig.info.dims;
  const start = v.map((x, a) => Math.max(0, Math.min(d[a] - Math.min(n, d[a]), Math.round(x - n / 2))));
  return state.orig.handle.crop(start, [n, n, n]);
}

async function runSr() {
  if (!state.orig || !state.weights || state.running) return;
  const status = $('#sr-status');
  const input = srInput();
  const inputParts = () => input.toParts();
  let backend = await chooseBackend();
  delete document.body.dataset.fallback; // set again below if this run falls back
  setPhase('sr-running');
  const prog = $('#sr-progress');
  prog.hidden = false;
  $('#run').disabled = true;
  setStatus(status, '');
  const attempt = async be => {
    const fill = prog.querySelector('.bar > div'), text = prog.querySelector('.progress-text');
    fill.style.width = '0%';
    text.textContent = `Starting on ${be === 'webgpu' ? 'the GPU' : 'the CPU'}…`;
    let t0 = performance.now();
    const onProgress = (done, total) => {
      fill.style.width = `${(100 * done / total).toFixed(1)}%`;
      const el = (performance.now() - t0) / 1000;
      const left = done ? el / done * (total - done) : NaN;
      text.textContent = `${Math.floor(100 * done / total)}% done` + (done && done < total ? ` · about ${duration(left)} left` : '');
    };
    if (be === 'cpu') {
      const r = await runOnCpuPool(inputParts(), () => { t0 = performance.now(); }, onProgress);
      return { ...r, seconds: (performance.now() - t0) / 1000 };
    }
    const w = new WasmWorker(state.module);
    state.running = { workers: [w], cancelled: false };
    try {
      await w.ready;
      const ready = await w.call('sr-init', { weights: state.weights.bytes.slice(0), backend: be });
      const parts = inputParts();
      t0 = performance.now();
      const opts = {};
      if (state.failGpu) { state.failGpu = false; opts.crashForTest = true; }
      const out = await w.call('sr-run', { parts, backend: be, opts }, [parts.data.buffer], onProgress);
      return { out, ready, seconds: (performance.now() - t0) / 1000 };
    } finally {
      w.terminate('done');
    }
  };
  try {
    let r;
    try {
      r = await attempt(backend);
    } catch (e) {
      if (state.running?.cancelled || backend !== 'webgpu') throw e;
      setStatus(status, `The GPU run failed (${e.message}); continuing on the CPU.`, 'warn');
      document.body.dataset.fallback = e.message;
      backend = 'cpu';
      r = await attempt(backend);
    }
    const handle = VolumeHandle.fromParts(r.out.dims, r.out.spacing, r.out.affine, r.out.data, r.out.meta);
    state.result?.handle.free();
    if (state.input && state.input.handle !== state.orig.handle) state.input.handle.free();
    state.result = wrap(handle, 'Result');
    state.input = input === state.orig.handle ? null : wrap(input, 'Input region');
    const d = state.result.info.dims;
    setStatus(status, `Done in ${duration(r.seconds)} on ${backend === 'webgpu' ? 'the GPU' : 'the CPU'}: ${d.join(' × ')} voxels of ${state.result.info.spacing.map(v => fmt(v, 2)).join(' × ')} mm.`, 'ok');
    document.body.dataset.backend = backend;
    document.body.dataset.srSeconds = r.seconds.toFixed(3);
    state.diag.lastRun = {
      backend, seconds: r.seconds, output: d,
      workers: backend === 'cpu' ? +document.body.dataset.cpuWorkers : 1,
      stages: backend === 'cpu' && document.body.dataset.srStages ? JSON.parse(document.body.dataset.srStages) : null,
      fallback: document.body.dataset.fallback || null,
    };
    buildViewer();
    setPhase('sr-done');
  } catch (e) {
    if (input !== state.orig.handle) input.free();
    const cancelled = state.running?.cancelled;
    setStatus(status, cancelled ? 'Cancelled.' : `Super-resolution failed: ${e.message}`, cancelled ? 'warn' : 'error');
    setPhase(cancelled ? 'sr-cancelled' : 'sr-error');
  } finally {
    state.running = null;
    prog.hidden = true;
    updateButtons();
  }
}

// The CPU path: a pool of workers, one wasm instance each (wasm threads would need the
// cross-origin isolation that GitHub Pages cannot give a page). The lead worker prepares the
// network's input (upsampling, normalisation); the pool runs the network on slabs of rows that
// overlap by the receptive radius, so the stitched output equals a single run; the lead maps it
// back to the scan's frame.
async function runOnCpuPool(parts, started, onProgress) {
  const [ni, nj, nk] = parts.dims;
  const cores = Math.max(1, Math.min(navigator.hardwareConcurrency || 1, 8));
  const lead = new WasmWorker(state.module);
  const workers = [lead];
  state.running = { workers, cancelled: false };
  const init = w => w.ready.then(() => w.call('sr-init', { weights: state.weights.bytes.slice(0), backend: 'cpu' }));
  try {
    const ready = await init(lead);
    // Slabs no thinner than twice the halo, so overlap stays a small part of the work.
    const n = Math.max(1, Math.min(cores, Math.floor(nj / (2 * ready.halo)) || 1));
    for (let i = 1; i < n; i++) workers.push(new WasmWorker(state.module));
    document.body.dataset.cpuWorkers = String(n);
    const others = Promise.all(workers.slice(1).map(init));
    started();
    const t = [performance.now()];
    const prepared = await lead.call('sr-prepare', { parts }, [parts.data.buffer]);
    await others;
    t.push(performance.now());
    const [pi, pj, pk] = prepared.dims;
    const slabs = splitRows(prepared, n, ready.halo);
    const done = new Array(n).fill(0), totals = new Array(n).fill(1);
    const outs = await Promise.all(slabs.map((s, i) => workers[i].call('sr-network', { parts: s.parts }, [s.parts.data.buffer], (d, t) => {
      done[i] = d; totals[i] = t;
      onProgress(done.reduce((a, b) => a + b), totals.reduce((a, b) => a + b));
    })));
    const data = new Float32Array(pi * pj * pk);
    slabs.forEach((s, i) => {
      for (let k = 0; k < pk; k++) {
        const src = outs[i].data.subarray(pi * ((s.core[0] - s.start) + s.rows * k), pi * ((s.core[1] - s.start) + s.rows * k));
        data.set(src, pi * (s.core[0] + pj * k));
      }
    });
    t.push(performance.now());
    const stitched = { ...prepared, data };
    const out = await lead.call('sr-finish', { parts: stitched }, [data.buffer]);
    t.push(performance.now());
    // Seconds per stage of the last CPU run (benchmarks read them; a diagnostics panel could).
    document.body.dataset.srStages = JSON.stringify({ prepare: (t[1] - t[0]) / 1000, network: (t[2] - t[1]) / 1000, finish: (t[3] - t[2]) / 1000 });
    return { out, ready };
  } finally {
    for (const w of workers) w.terminate('done');
  }
}

// `n` slabs of rows (axis j) of a volume's parts, each with `halo` rows of context either side.
function splitRows(p, n, halo) {
  const [ni, nj, nk] = p.dims;
  const slabs = [];
  for (let i = 0; i < n; i++) {
    const core = [Math.floor(nj * i / n), Math.floor(nj * (i + 1) / n)];
    const start = Math.max(0, core[0] - halo), end = Math.min(nj, core[1] + halo), rows = end - start;
    const data = new Float32Array(ni * rows * nk);
    for (let k = 0; k < nk; k++) data.set(p.data.subarray(ni * (start + nj * k), ni * (end + nj * k)), ni * rows * k);
    slabs.push({ core, start, rows, parts: { ...p, dims: [ni, rows, nk], data } });
  }
  return slabs;
}

function cancelSr() {
  const r = state.running;
  if (!r) return;
  r.cancelled = true;
  for (const w of r.workers) w.w.postMessage({ op: 'cancel' });
  // The CPU path seldom yields to the workers' message loops: stop the workers if they do not.
  setTimeout(() => { if (state.running === r) for (const w of r.workers) w.terminate('cancelled'); }, 300);
}

// ---------------------------------------------------------------- export
function safeName(s) { return (s || 'volume').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 60) || 'volume'; }

async function exportAs(kind) {
  const which = $('#export-what').value;
  const vol = which === 'result' ? state.result : which === 'input' ? state.input : state.orig;
  const status = $('#export-status');
  if (!vol) { setStatus(status, 'Nothing to save yet.', 'error'); return; }
  const base = safeName(state.orig.info.description) + { result: '_mrisr', input: '_region', original: '' }[which];
  setStatus(status, 'Preparing the file…');
  try {
    const parts = vol.handle.toParts();
    const bytes = await ioCall('export', { kind, parts, folder: base, suffix: which === 'input' ? ' (region)' : '' }, [parts.data.buffer]);
    const name = base + (kind === 'nifti' ? '.nii.gz' : '_dicom.zip');
    const url = URL.createObjectURL(new Blob([bytes], { type: kind === 'nifti' ? 'application/gzip' : 'application/zip' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    setStatus(status, `Saved ${name} (${mb(bytes.length)}) to your downloads.`, 'ok');
  } catch (e) {
    setStatus(status, `Could not save: ${e.message}`, 'error');
  }
}

function updateButtons() {
  const has = !!state.orig;
  $('#run').disabled = !has || !state.weights || !!state.running;
  const sel = $('#export-what');
  sel.querySelector('[value=result]').disabled = !state.result;
  sel.querySelector('[value=input]').disabled = !state.input;
  if (sel.selectedOptions[0]?.disabled) sel.value = state.result ? 'result' : 'original';
  if (state.result && !sel.dataset.touched) sel.value = 'result';
  $('#export-nifti').disabled = $('#export-dicom').disabled = !has;
}

// ---------------------------------------------------------------- diagnostics
// What users paste into bug reports: browser, GPU adapter and its limits, threads and SIMD,
// versions, and the last run's stages. Nothing about the scan's content or its patient.
function diagnosticsText() {
  const a = state.diag.adapter;
  const run = state.diag.lastRun;
  const s = x => (x == null ? '–' : String(x));
  const lines = [
    `mrisr page ${state.module ? version() : '(module not started)'} · ${location.origin}${location.pathname}`,
    `browser: ${navigator.userAgent}`,
    `cores: ${s(navigator.hardwareConcurrency)} · memory: ${s(navigator.deviceMemory)} GB (as the browser reports) · WebAssembly SIMD: ${WebAssembly.validate(SIMD_PROBE) ? 'yes' : 'no'} · cross-origin isolated: ${self.crossOriginIsolated ? 'yes' : 'no'}`,
    `WebGPU: ${navigator.gpu ? (a ? `${[a.vendor, a.architecture, a.description].filter(Boolean).join(' ') || 'adapter'}${a.fallback ? ' (software fallback)' : ''}, largest buffer ${a.maxBuffer ? mb(a.maxBuffer) : '–'}` : state.diag.gpu || 'not checked yet') : 'not offered by this browser'}`,
    `model: ${state.weights ? `${state.weights.entry.file} (${state.weights.card?.name || '?'}, sha256 ${(state.weights.entry.sha256 || '').slice(0, 12)}…, trained with mrisr ${state.weights.card?.mrisr_version || '?'})` : 'not loaded'}`,
  ];
  if (run) {
    lines.push(`last run: ${run.backend}${run.backend === 'cpu' ? ` (${run.workers} workers)` : ''}, ${run.seconds.toFixed(2)} s, output ${run.output.join(' × ')} voxels${run.fallback ? `, after a GPU failure: ${run.fallback}` : ''}`);
    if (run.stages) lines.push(`  stages: prepare ${run.stages.prepare.toFixed(2)} s · network ${run.stages.network.toFixed(2)} s · finish ${run.stages.finish.toFixed(2)} s`);
  } else {
    lines.push('last run: none yet');
  }
  if (performance.memory) lines.push(`page memory (JS heap): ${mb(performance.memory.usedJSHeapSize)} of ${mb(performance.memory.jsHeapSizeLimit)}`);
  return lines.join('\n');
}

function wireDiagnostics() {
  const dlg = $('#diag');
  $('#diag-open').addEventListener('click', () => {
    $('#diag-text').textContent = diagnosticsText();
    $('#diag-status').textContent = '';
    dlg.showModal();
  });
  $('#diag-close').addEventListener('click', () => dlg.close());
  $('#diag-copy').addEventListener('click', async () => {
    const text = $('#diag-text').textContent;
    try {
      await navigator.clipboard.writeText(text);
      $('#diag-status').textContent = 'Copied.';
    } catch {
      // Without clipboard permission: select the text so Ctrl+C copies it.
      getSelection().selectAllChildren($('#diag-text'));
      $('#diag-status').textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
    }
  });
}

// ---------------------------------------------------------------- start
// Checks once, in a worker, that WebGPU computes correctly here (a test convolution); the
// result decides what "Automatic" uses and is shown in the footer.
function probeGpu() {
  if (state.gpu) return state.gpu;
  state.gpu = (async () => {
    const line = $('#engine');
    if (!navigator.gpu) { line.textContent = 'WebGPU: not available in this browser, the CPU will be used'; return false; }
    line.textContent = 'WebGPU: checking…';
    const w = new WasmWorker(state.module);
    try {
      await w.ready;
      const r = await w.call('probe', { backend: 'webgpu' });
      const a = r.adapter || {};
      state.diag.adapter = a;
      // A software adapter (SwiftShader, WARP) emulates the GPU on the CPU, several times
      // slower than the CPU path (BENCHMARKS.md): "Automatic" then takes the CPU.
      line.textContent = `WebGPU: ${[a.vendor, a.architecture].filter(Boolean).join(' ') || 'ready'}`
        + (a.fallback ? ' (software fallback: Automatic uses the CPU, which is faster)' : '')
        + ` · check passed in ${r.ms} ms`;
      document.body.dataset.gpu = 'ok';
      state.diag.gpu = line.textContent;
      return !a.fallback;
    } catch (e) {
      line.textContent = `WebGPU: not usable here (${e.message}); the CPU will be used`;
      state.diag.gpu = line.textContent;
      document.body.dataset.gpu = 'no';
      return false;
    } finally {
      w.terminate('done');
    }
  })();
  return state.gpu;
}

function wireUi() {
  const drop = $('#drop');
  for (const ev of ['dragenter', 'dragover']) drop.addEventListener(ev, e => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', e => {
    e.preventDefault();
    drop.classList.remove('over');
    filesFromDrop(e.dataTransfer).then(openFiles);
  });
  // a drop anywhere else must not make the browser open (navigate to) the file
  window.addEventListener('dragover', e => e.preventDefault());
  window.addEventListener('drop', e => { if (!drop.contains(e.target)) { e.preventDefault(); filesFromDrop(e.dataTransfer).then(openFiles); } });
  for (const id of ['#pick-folder', '#pick-files']) {
    $(id).addEventListener('change', e => {
      const files = [...e.target.files].map(f => ({ name: f.webkitRelativePath || f.name, file: f }));
      e.target.value = '';
      openFiles(files);
    });
  }
  $('#wl-preset').addEventListener('change', e => applyPreset(e.target.value));
  $('#zoom-in').addEventListener('click', () => setZoom(state.zoom * 1.25));
  $('#zoom-out').addEventListener('click', () => setZoom(state.zoom / 1.25));
  $('#zoom-fit').addEventListener('click', () => setZoom(1));
  $('#compare').addEventListener('change', e => { state.compare = e.target.value; buildViewer(); });
  $('#swipe').addEventListener('input', e => { state.swipe = e.target.value / 1000; requestDraw(); });
  $('#run').addEventListener('click', runSr);
  $('#cancel').addEventListener('click', cancelSr);
  $('#export-what').addEventListener('change', e => { e.target.dataset.touched = '1'; });
  $('#export-nifti').addEventListener('click', () => exportAs('nifti'));
  $('#export-dicom').addEventListener('click', () => exportAs('dicom'));
  new ResizeObserver(requestDraw).observe($('#grid'));
}

// The smallest module with a SIMD instruction (i8x16.splat, i8x16.popcnt; as in
// wasm-feature-detect): the page's module is built with simd128 and cannot load without it.
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0,
  10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

async function main() {
  setPhase('starting');
  wireUi();
  wireDiagnostics();
  if (!WebAssembly.validate(SIMD_PROBE)) {
    setStatus($('#open-status'), 'This browser does not run WebAssembly SIMD, which the page needs '
      + '(Chrome or Edge 91+, Firefox 89+, Safari 16.4+). Please update it.', 'error');
    setPhase('error');
    return;
  }
  try {
    const url = new URL('pkg/mrisr_web_bg.wasm', import.meta.url);
    let module;
    try {
      module = await WebAssembly.compileStreaming(fetch(url));
    } catch {
      module = await WebAssembly.compile(await (await fetch(url)).arrayBuffer());
    }
    state.module = module;
    await init({ module_or_path: module });
    state.io = new WasmWorker(module);
    await state.io.ready;
  } catch (e) {
    setStatus($('#open-status'), `This browser could not start the page's WebAssembly module: ${e.message}`, 'error');
    setPhase('error');
    return;
  }
  setPhase('ready');
  updateButtons();
  // Test hook (only with ?viewer-test): show a crop of the original as a stand-in "result", so
  // the comparison layouts can be checked without a network. Not reachable from the UI.
  if (new URLSearchParams(location.search).has('viewer-test')) {
    window.viewerTest = (mode, n = 64) => {
      $('#region').value = String(n);
      const crop = srInput();
      state.result?.handle.free();
      state.result = wrap(crop, 'Stand-in');
      state.compare = mode;
      $('#compare').value = mode;
      buildViewer();
      updateButtons();
      return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
    };
    // The next WebGPU run crashes in its worker as a lost device does, to check the CPU fallback.
    window.failNextGpuRun = () => { state.failGpu = true; };
  }
  loadModel();
  probeGpu();
}

main();
