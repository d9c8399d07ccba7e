// The viewer: axial, coronal and sagittal planes (radiological convention) of the original
// and the result, side by side or by swipe; cursor, slices, window/level, zoom.
import { $, LETTERS, PLANES, PLANE_AXES, fmt, state } from './page.js';

export let viewports = [];

export function buildViewer() {
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
export function toScreen(plane, w) { const [h, v] = PLANE_AXES[plane]; return [-w[h], -w[v]]; }

// where a volume's slice image lies in screen mm: {x0, y0, pw, ph, w, h}
export function planeRect(vol, plane) {
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

export function sliceOf(vol, plane) {
  const v = vol.handle.voxel(...state.cursor);
  const L = vol.layout[plane];
  return Math.round(v[L.axis_fixed]);
}

export function sliceImage(vol, plane, slice) {
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

export function viewTransform(vp) {
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

export let drawQueued = false;
export function requestDraw() {
  if (drawQueued) return;
  drawQueued = true;
  requestAnimationFrame(() => { drawQueued = false; viewports.forEach(drawViewport); updateReadouts(); });
}

export function drawViewport(vp) {
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

export function updateReadouts() {
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

export function setSlice(plane, slice) {
  const h = state.orig.handle;
  const v = h.voxel(...state.cursor);
  v[state.orig.layout[plane].axis_fixed] = Math.max(0, Math.min(state.orig.layout[plane].count - 1, slice));
  state.cursor = h.world(...v);
  requestDraw();
}

export function attachPointer(vp) {
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

export function setZoom(z) { state.zoom = Math.max(1, Math.min(16, z)); requestDraw(); }

export function applyPreset(p) {
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
