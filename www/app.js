// mrisr page: a thin shell around the wasm module (see web/src). Heavy work (parsing, export,
// super-resolution) runs in Web Workers; the viewer renders slices with the module on this thread.
// The parts follow the data path: js/open.js (files in) -> js/viewer.js -> js/models.js,
// js/learn.js (a model learned from the scan) and js/compute.js (super-resolution, on
// js/workers.js) -> js/export.js (files out); js/page.js holds the shared state,
// js/diagnostics.js the bug-report panel. This file wires them up.
import init from './pkg/mrisr_web.js';
import { $, SIMD_PROBE, setPhase, setStatus, state, updateButtons } from './js/page.js';
import { cancelSr, probeGpu, runSr, srInput } from './js/compute.js';
import { wireDiagnostics } from './js/diagnostics.js';
import { exportAs } from './js/export.js';
import { runLearn, saveLearned, updateLearnTask, updateLearnTime } from './js/learn.js';
import { loadModel } from './js/models.js';
import { filesFromDrop, openFiles, wrap } from './js/open.js';
import { applyPreset, buildViewer, requestDraw, setZoom } from './js/viewer.js';
import { WasmWorker } from './js/workers.js';

// Buttons, drop zone, menus and keys -> the parts that act on them.
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
  $('#learn-start').addEventListener('click', runLearn);
  $('#learn-save').addEventListener('click', saveLearned);
  $('#learn-factor').addEventListener('input', () => updateLearnTask());
  $('#learn-steps').addEventListener('input', updateLearnTime);
  $('#export-what').addEventListener('change', e => { e.target.dataset.touched = '1'; });
  $('#export-nifti').addEventListener('click', () => exportAs('nifti'));
  $('#export-dicom').addEventListener('click', () => exportAs('dicom'));
  new ResizeObserver(requestDraw).observe($('#grid'));
}

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
