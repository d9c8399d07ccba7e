// Super-resolution: which engine (WebGPU after a test convolution, else the CPU), the run in
// workers (one on WebGPU; a pool on the CPU), progress, Cancel and the GPU->CPU fallback.
import { VolumeHandle } from '../pkg/mrisr_web.js';
import { $, duration, fmt, setPhase, setStatus, state, updateButtons } from './page.js';
import { wrap } from './open.js';
import { buildViewer } from './viewer.js';
import { WasmWorker } from './workers.js';

export async function chooseBackend() {
  const want = $('#backend').value;
  if (want !== 'auto') return want;
  return (await probeGpu()) ? 'webgpu' : 'cpu';
}

export function srInput() {
  const region = $('#region').value;
  if (region === 'all') return state.orig.handle;
  const n = +region;
  const v = state.orig.handle.voxel(...state.cursor);
  const d = state.orig.info.dims;
  const start = v.map((x, a) => Math.max(0, Math.min(d[a] - Math.min(n, d[a]), Math.round(x - n / 2))));
  return state.orig.handle.crop(start, [n, n, n]);
}

export async function runSr() {
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
    // What the sidecar of a saved result says mrisr did.
    state.result.done = { card: state.weights.card, inputSpacing: (state.input || state.orig).info.spacing };
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
// network's input (upsampling, normalisation); the pool runs the network on slabs that overlap
// by the receptive radius, so the stitched output equals a single run; the lead maps it
// back to the scan's frame.
export async function runOnCpuPool(parts, started, onProgress) {
  const [ni, nj, nk] = parts.dims;
  const cores = Math.max(1, Math.min(navigator.hardwareConcurrency || 1, 8));
  const lead = new WasmWorker(state.module);
  const workers = [lead];
  state.running = { workers, cancelled: false };
  const init = w => w.ready.then(() => w.call('sr-init', { weights: state.weights.bytes.slice(0), backend: 'cpu' }));
  try {
    const ready = await init(lead);
    // Slabs across axis j or k (splitSlabs), no thinner than twice the halo.
    const n = Math.max(1, Math.min(cores, Math.floor(Math.max(nj, nk) / (2 * ready.halo)) || 1));
    for (let i = 1; i < n; i++) workers.push(new WasmWorker(state.module));
    document.body.dataset.cpuWorkers = String(n);
    const others = Promise.all(workers.slice(1).map(init));
    started();
    const t = [performance.now()];
    const views = await lead.call('sr-prepare', { parts }, [parts.data.buffer]);
    await others;
    t.push(performance.now());
    // Every view (one, or two for a model learned from a scan) through the whole pool in turn.
    const outputs = [];
    for (const [v, prepared] of views.entries()) {
      const slabs = splitSlabs(prepared, n, ready.halo);
      prepared.data = null; // the slabs hold it now
      // Each slab's share of the view is its planes; a worker's own (done, total) says how far
      // it is, so the bar never runs backwards when a worker reports for the first time.
      const frac = new Array(n).fill(0), rows = slabs.map(s => s.rows), all = rows.reduce((x, y) => x + y);
      const outs = await Promise.all(slabs.map((s, i) => workers[i].call('sr-network', { parts: s.parts, planes: s.planes }, [s.parts.data.buffer], (d, t) => {
        frac[i] = t ? d / t : 0;
        const f = frac.reduce((x, y, j) => x + y * rows[j], 0) / all;
        onProgress(Math.round(1e6 * (v + f)), 1e6 * views.length);
      })));
      const data = stitchSlabs(prepared.dims, slabs, outs.map(o => o.data));
      outputs.push({ ...prepared, data });
    }
    t.push(performance.now());
    const out = await lead.call('sr-finish', { outputs }, outputs.map(o => o.data.buffer));
    t.push(performance.now());
    // Seconds per stage of the last CPU run (benchmarks read them; a diagnostics panel could).
    document.body.dataset.srStages = JSON.stringify({ prepare: (t[1] - t[0]) / 1000, network: (t[2] - t[1]) / 1000, finish: (t[3] - t[2]) / 1000 });
    return { out, ready };
  } finally {
    for (const w of workers) w.terminate('done');
  }
}

// How a volume [ni, nj, nk] (i fastest) is cut across `axis` (1 = j, 2 = k): runs of `inner`
// values, `count` of them along the axis, `outer` times over.
function layout([ni, nj, nk], axis) {
  return axis === 2 ? { inner: ni * nj, count: nk, outer: 1 } : { inner: ni, count: nj, outer: nk };
}

// `n` slabs across axis j or k, each with `halo` planes of context either side. Context along k
// costs about half as much (the engine computes it only as far as the wanted planes need), so k
// is taken unless j is more than twice as long.
export function splitSlabs(p, n, halo) {
  const [ni, nj, nk] = p.dims;
  const axis = 2 * nk >= nj ? 2 : 1;
  const { inner, count, outer } = layout(p.dims, axis);
  const slabs = [];
  for (let i = 0; i < n; i++) {
    const core = [Math.floor(count * i / n), Math.floor(count * (i + 1) / n)];
    const start = Math.max(0, core[0] - halo), end = Math.min(count, core[1] + halo), rows = end - start;
    const data = new Float32Array(inner * rows * outer);
    for (let o = 0; o < outer; o++) data.set(p.data.subarray(inner * (start + count * o), inner * (end + count * o)), inner * rows * o);
    const dims = axis === 2 ? [ni, nj, rows] : [ni, rows, nk];
    // Along k the engine computes the context planes only as far as the wanted ones need.
    const planes = axis === 2 ? [core[0] - start, core[1] - start] : [0, nk];
    slabs.push({ axis, core, start, rows, planes, parts: { ...p, dims, data } });
  }
  return slabs;
}

// The slabs' outputs back into one volume of `dims`: each slab gives its core planes.
export function stitchSlabs(dims, slabs, outs) {
  const data = new Float32Array(dims[0] * dims[1] * dims[2]);
  slabs.forEach((s, i) => {
    const { inner, count, outer } = layout(dims, s.axis);
    for (let o = 0; o < outer; o++) {
      const src = outs[i].subarray(inner * (s.core[0] - s.start + s.rows * o), inner * (s.core[1] - s.start + s.rows * o));
      data.set(src, inner * (s.core[0] + count * o));
    }
  });
  return data;
}

export function cancelSr() {
  const r = state.running;
  if (!r) return;
  r.cancelled = true;
  for (const w of r.workers) w.w.postMessage({ op: 'cancel' });
  // The CPU path seldom yields to the workers' message loops: stop the workers if they do not.
  setTimeout(() => { if (state.running === r) for (const w of r.workers) w.terminate('cancelled'); }, 300);
}

// Checks once, in a worker, that WebGPU computes correctly here (a test convolution); the
// result decides what "Automatic" uses and is shown in the footer.
export function probeGpu() {
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
