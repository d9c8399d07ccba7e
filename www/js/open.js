// Opening files: a dropped or picked folder, files or a NIfTI -> the worker's scan -> the
// series list -> the chosen volume, kept on this thread as a VolumeHandle.
import { VolumeHandle } from '../pkg/mrisr_web.js';
import { $, fmt, mb, setPhase, setStatus, state, updateButtons } from './page.js';
import { updateLearnTask } from './learn.js';
import { applyPreset, buildViewer } from './viewer.js';
import { ioCall } from './workers.js';

export async function filesFromDrop(dt) {
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

export async function openFiles(list) {
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

export function showSeries(report) {
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

export async function pickSeries(s, li) {
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
    updateLearnTask(true);
    setStatus(status, `Showing “${s.description}”: ${d.join(' × ')} voxels.`, 'ok');
    setPhase('loaded');
  } catch (e) {
    setStatus(status, `Could not load this series: ${e.message}`, 'error');
    setPhase('error');
  }
}

export function wrap(handle, label) {
  return { handle, label, info: JSON.parse(handle.info()), layout: JSON.parse(handle.layout()), cache: [] };
}
