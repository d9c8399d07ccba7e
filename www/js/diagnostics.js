// The Diagnostics panel: what users paste into bug reports (no content of the scan).
import { version } from '../pkg/mrisr_web.js';
import { $, SIMD_PROBE, mb, state } from './page.js';

// What users paste into bug reports: browser, GPU adapter and its limits, threads and SIMD,
// versions, and the last run's stages. Nothing about the scan's content or its patient.
export function diagnosticsText() {
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
  const l = state.diag.lastLearn;
  if (l) lines.push(`last learning: ${l.steps} steps on ${l.input.join(' × ')} voxels, x${l.factor.toFixed(2)}, ${l.seconds.toFixed(1)} s (setup ${l.setup.toFixed(1)} s, ${l.perStep.toFixed(3)} s a step), ${l.startedFrom ? `from ${l.startedFrom}` : 'from scratch'}`);
  if (performance.memory) lines.push(`page memory (JS heap): ${mb(performance.memory.usedJSHeapSize)} of ${mb(performance.memory.jsHeapSizeLimit)}`);
  return lines.join('\n');
}

export function wireDiagnostics() {
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
