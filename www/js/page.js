// Shared by every part of the page: its state, DOM and formatting helpers, the phase the page
// is in (data-phase, which the e2e test waits on) and which buttons are enabled.

export const $ = sel => document.querySelector(sel);
export const PLANES = ['Axial', 'Coronal', 'Sagittal'];
// world axes shown horizontally / vertically / fixed in each plane (0 = x/R, 1 = y/A, 2 = z/S)
export const PLANE_AXES = [[0, 1, 2], [0, 2, 1], [1, 2, 0]];
// orientation letters: [left, right, top, bottom]
export const LETTERS = [['R', 'L', 'A', 'P'], ['R', 'L', 'S', 'I'], ['A', 'P', 'S', 'I']];

export const state = {
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
  weights: null, // {bytes: ArrayBuffer, entry, card}: the model the next run uses
  published: null, // the last published model loaded (learning from the scan starts from it)
  learned: null, // {bytes, entry, card, summary}: weights learned from the scan (js/learn.js)
  running: null,
  gpu: null, // Promise<boolean>: WebGPU passed the check
  diag: { adapter: null, gpu: '', lastRun: null }, // for the Diagnostics panel
};

export function setStatus(el, text, kind = '') {
  el.textContent = text;
  el.className = 'status' + (kind ? ' ' + kind : '');
}
export function setPhase(p) { document.body.dataset.phase = p; }
export function mb(n) { return (n / 1048576).toFixed(n < 10 * 1048576 ? 1 : 0) + ' MB'; }
export function fmt(v, d = 2) { return Number.isFinite(v) ? (+v.toFixed(d)).toString() : '–'; }
export function duration(s) {
  if (!Number.isFinite(s)) return '';
  s = Math.max(0, Math.round(s));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

export function updateButtons() {
  const has = !!state.orig;
  $('#run').disabled = !has || !state.weights || !!state.running;
  $('#learn-start').disabled = !has || !!state.running;
  $('#learn-save').hidden = !state.learned;
  const sel = $('#export-what');
  sel.querySelector('[value=result]').disabled = !state.result;
  sel.querySelector('[value=input]').disabled = !state.input;
  if (sel.selectedOptions[0]?.disabled) sel.value = state.result ? 'result' : 'original';
  if (state.result && !sel.dataset.touched) sel.value = 'result';
  $('#export-nifti').disabled = $('#export-dicom').disabled = !has;
}


// The smallest module with a SIMD instruction (i8x16.splat, i8x16.popcnt; as in
// wasm-feature-detect): the page's module is built with simd128 and cannot load without it.
export const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0,
  10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);
