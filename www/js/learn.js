// "Learn from this scan": a network learns the scan's own in-plane detail (mrisr::adapt, in a
// worker, web/src/learn.rs), then becomes the current model and super-resolves the series at
// the chosen factor through the usual path (compute.js). The scan's task (which axis is thick,
// the default factor, the slice spacing it gives) comes from the module on this thread: it is
// geometry only. The learning does not yield, so Cancel terminates its worker; the scan stays
// here, so nothing is lost.
import { learn_task } from '../pkg/mrisr_web.js';
import { $, duration, fmt, setPhase, setStatus, state, updateButtons } from './page.js';
import { probeGpu, runSr, srInput } from './compute.js';
import { safeName } from './export.js';
import { addLearned } from './models.js';
import { WasmWorker, ioCall } from './workers.js';

// The factor field follows the series: the task's default factor when a series is picked
// (reset), and beside it the slices and spacing the factor gives for the whole series.
export function updateLearnTask(reset = false) {
  const field = $('#learn-factor'), hint = $('#learn-spacing'), status = $('#learn-status');
  hint.textContent = '';
  if (!state.orig) return null;
  if (reset) { field.value = ''; setStatus(status, ''); }
  try {
    const t = JSON.parse(learn_task(state.orig.handle, field.value === '' ? undefined : +field.value));
    if (field.value === '') field.value = String(t.default_factor);
    // Steps: the library's default until the user types another number.
    const steps = $('#learn-steps');
    if (steps.value === '') { steps.value = String(t.default_steps); updateLearnTime(); }
    hint.textContent = `${t.slices} → ${t.slices_out} slices of ${fmt(t.spacing_out_mm, 2)} mm (now ${fmt(t.spacing_mm, 2)} mm)`;
    hint.title = t.geometry;
    if (status.classList.contains('warn') && !state.running) setStatus(status, '');
    return t;
  } catch (e) {
    // A volume with no thick axis or a factor out of range: the module's words.
    if (!state.running) setStatus(status, e.message, 'warn');
    return null;
  }
}

// The time the steps field asks for, once a step has been timed on this computer.
export function updateLearnTime() {
  const per = state.diag.lastLearn?.perStep;
  const steps = +$('#learn-steps').value;
  $('#learn-time').textContent = per && steps > 0 ? `about ${duration(per * steps)} here` : '';
}

export async function runLearn() {
  if (!state.orig || state.running) return;
  const status = $('#learn-status');
  const steps = Math.round(+$('#learn-steps').value);
  const fv = $('#learn-factor').value.trim();
  const factor = fv === '' ? undefined : +fv;
  if (!(steps >= 1)) { setStatus(status, 'Steps: at least 1.', 'error'); setPhase('learn-error'); return; }
  // The whole series, or the region around the cursor (Region menu) for a quick try.
  const input = srInput();
  const own = input !== state.orig.handle;
  let task, parts;
  try {
    task = JSON.parse(learn_task(input, factor));
    parts = input.toParts();
  } catch (e) {
    setStatus(status, e.message, 'error');
    setPhase('learn-error');
    return;
  } finally {
    if (own) input.free();
  }
  const prog = $('#sr-progress');
  const fill = prog.querySelector('.bar > div'), text = prog.querySelector('.progress-text');
  fill.style.width = '0%';
  text.textContent = 'Learning: preparing the pairs…';
  prog.hidden = false;
  const w = new WasmWorker(state.module);
  state.running = { workers: [w], cancelled: false, learning: true };
  updateButtons();
  setPhase('learn-running');
  // On a hardware GPU when "Automatic" finds one (a software adapter is slower than the CPU).
  const backend = $('#backend').value === 'auto' && await probeGpu() ? 'webgpu' : 'cpu';
  setStatus(status, `Learning x${fmt(task.factor, 2)} (${task.slices} → ${task.slices_out} slices) from ${parts.dims.join(' × ')} voxels, ${steps} steps, on ${backend === 'webgpu' ? 'the GPU' : 'the CPU'}.`);
  const t0 = performance.now();
  let first = null; // [time, step] of the first step reported: the rest are timed from there
  let per = NaN;
  const onProgress = (step, total, loss) => {
    const now = performance.now();
    if (!first) first = [now, step];
    if (step > first[1]) per = (now - first[0]) / 1000 / (step - first[1]);
    fill.style.width = `${(100 * step / total).toFixed(1)}%`;
    text.textContent = `Learning: step ${step} of ${total}`
      + (Number.isFinite(loss) ? ` · loss ${loss.toFixed(4)}` : '')
      + (Number.isFinite(per) && step < total ? ` · about ${duration(per * (total - step))} left` : '');
    document.body.dataset.learnStep = String(step);
  };
  for (const k of ['learnStep', 'learnSeconds', 'learnPerStep']) delete document.body.dataset[k];
  let learned;
  try {
    await w.ready;
    const start = state.published ? state.published.bytes.slice(0) : null;
    const bytes = await w.call('learn', { parts, options: { factor: task.factor, steps }, start, backend },
      [parts.data.buffer, ...(start ? [start] : [])], onProgress);
    const seconds = (performance.now() - t0) / 1000;
    const setup = first ? (first[0] - t0) / 1000 : seconds;
    if (!Number.isFinite(per)) per = (seconds - setup) / steps;
    const { card, summary } = await ioCall('card', { weights: bytes.slice(0) });
    const f = card.adapted?.task?.factor ?? task.factor;
    learned = {
      bytes, card, summary,
      entry: {
        file: `${safeName(state.orig.info.description)}_learned_x${fmt(f, 2)}.safetensors`,
        title: `Learned from this scan (x${fmt(f, 2)})`,
        bytes: bytes.byteLength,
        learned: true,
      },
    };
    state.diag.lastLearn = { steps, seconds, setup, perStep: per, factor: f, input: parts.dims, startedFrom: card.started_from || null };
    document.body.dataset.learnSeconds = seconds.toFixed(3);
    document.body.dataset.learnPerStep = per.toFixed(4);
    setStatus(status, `Learned in ${duration(seconds)} (${steps} steps, ${fmt(per, 2)} s each after ${fmt(setup, 1)} s of setup; `
      + `${card.started_from ? `from ${card.started_from}` : 'from scratch'}); it is now the model and runs below.`, 'ok');
    setPhase('learn-done');
  } catch (e) {
    const cancelled = state.running?.cancelled;
    setStatus(status, cancelled ? 'Learning cancelled: the model is unchanged.' : `Learning failed: ${e.message}`, cancelled ? 'warn' : 'error');
    setPhase(cancelled ? 'learn-cancelled' : 'learn-error');
    return;
  } finally {
    w.terminate('done');
    state.running = null;
    prog.hidden = true;
    updateButtons();
    updateLearnTime();
  }
  addLearned(learned);
  await runSr();
}

export function saveLearned() {
  const l = state.learned;
  if (!l) return;
  const url = URL.createObjectURL(new Blob([l.bytes], { type: 'application/octet-stream' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = l.entry.file;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  setStatus($('#learn-status'), `Saved ${l.entry.file} (${Math.ceil(l.bytes.byteLength / 1024)} KB) to your downloads: `
    + 'a weight file like the published ones, with what it learned from in its card.', 'ok');
}
