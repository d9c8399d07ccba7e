// mrisr worker: runs the wasm module off the page's main thread, one request at a time.
//
// Messages in:  {id, op, ...args}; out: {id, ok: true, value} | {id, ok: false, error} and, while
// a super-resolution runs, {id, progress: [done, total]}. `{op: 'cancel'}` is handled at once.
// The page compiles the module once and sends it with the first message ('init').
import init, * as wasm from './pkg/mrisr_web.js';

let scan = null; // the last Scan (files of the last drop), kept for 'load'
let broken = null; // set once a wasm trap left the instance unusable
let queue = Promise.resolve();

const handlers = {
  async init({ module }) {
    await init({ module_or_path: module });
    return true;
  },

  // names: string[], buffers: ArrayBuffer[] -> the series list (JSON)
  async scan({ names, buffers }) {
    scan?.free();
    scan = null;
    scan = new wasm.Scan(names, buffers.map(b => new Uint8Array(b)));
    return JSON.parse(scan.report());
  },

  async load({ index, volume }) {
    if (!scan) throw new Error('no files have been opened');
    const h = scan.load(index, volume ?? 0);
    try { return transferParts(h.toParts()); } finally { h.free(); }
  },

  // kind: 'nifti' | 'dicom'
  // NIfTI: {bytes, sidecar (the BIDS .json text)}; `done`: {card, inputSpacing} for a result
  async export({ kind, parts, folder, suffix, done }) {
    const h = fromParts(parts);
    try {
      if (kind === 'nifti') {
        const bytes = h.nifti(true);
        const sidecar = h.sidecar(done ? JSON.stringify(done.card) : undefined, done ? new Float64Array(done.inputSpacing) : undefined);
        return { value: { bytes, sidecar }, transfer: [bytes.buffer] };
      }
      const bytes = h.dicomZip(folder, suffix, crypto.getRandomValues(new Uint8Array(16)));
      return { value: bytes, transfer: [bytes.buffer] };
    } finally { h.free(); }
  },

  // a test convolution on the backend: throws unless it computes correctly
  async probe({ backend }) {
    const t0 = performance.now();
    await wasm.sr_probe(backend);
    return { ms: Math.round(performance.now() - t0), adapter: backend === 'webgpu' ? await adapterInfo() : null };
  },

  async card({ weights }) {
    return JSON.parse(wasm.sr_model_card(new Uint8Array(weights)));
  },

  async 'sr-init'({ weights, backend }) {
    const ready = JSON.parse(await wasm.sr_init(new Uint8Array(weights), backend));
    if (backend === 'webgpu') ready.adapter = await adapterInfo();
    return ready;
  },

  // A CPU run split over a pool of workers (app.js, runOnCpuPool): the lead prepares the
  // network's input and finishes the output; every worker runs the network on one slab.
  // Returns the network's input views (two for a model learned from a scan).
  async 'sr-prepare'({ parts }) {
    const views = wasm.sr_prepare(fromParts(parts));
    const value = [];
    for (let i = 0; i < views; i++) {
      const v = wasm.sr_view(i);
      try { value.push(v.toParts()); } finally { v.free(); }
    }
    return { value, transfer: value.map(p => p.data.buffer) };
  },
  async 'sr-network'({ parts, planes }, id) {
    const h = fromParts(parts);
    const [k0, k1] = planes; // the slab's own planes along k (compute.js, splitSlabs)
    const out = wasm.sr_network(h, k0, k1, (done, total) => self.postMessage({ id, progress: [done, total] }));
    try { return transferParts(out.toParts()); } finally { out.free(); }
  },
  async 'sr-finish'({ outputs }) {
    const out = wasm.sr_finish(outputs.map(fromParts));
    try { return transferParts(out.toParts()); } finally { out.free(); }
  },

  // "Learn from this scan" (js/learn.js): learns from the volume, posting progress
  // [step, steps, loss] after every step; returns the weight file. It does not yield: the page
  // cancels by terminating this worker.
  async learn({ parts, options, start, backend }, id) {
    const bytes = await wasm.sr_learn(fromParts(parts), JSON.stringify(options ?? {}),
      start ? new Uint8Array(start) : undefined, backend ?? 'cpu',
      (step, steps, loss) => self.postMessage({ id, progress: [step, steps, loss] }));
    return { value: bytes.buffer, transfer: [bytes.buffer] };
  },

  // opts: {tile, overlap}; the buffer budget comes from the adapter's limits here.
  async 'sr-run'({ parts, opts, backend }, id) {
    // test hook (app.js, ?viewer-test only): fail as a wasm trap after a lost device does
    if (opts?.crashForTest) throw new WebAssembly.RuntimeError('unreachable (GPU device lost, simulated)');
    const maxBuffer = await bufferBudget(backend);
    const h = fromParts(parts);
    const o = new wasm.RunOptions(opts?.tile ?? 0, opts?.overlap ?? 0, maxBuffer);
    const out = await wasm.sr_run(h, o, (done, total) => self.postMessage({ id, progress: [done, total] }));
    try { return transferParts(out.toParts()); } finally { out.free(); }
  },
};

function fromParts(p) {
  return wasm.VolumeHandle.fromParts(p.dims, p.spacing, p.affine, p.data, p.meta);
}

function transferParts(parts) {
  return { value: parts, transfer: [parts.data.buffer] };
}

// Largest single buffer the run may allocate: the adapter's binding/buffer limits on WebGPU,
// a fixed budget on the CPU (wasm32 memory is 4 GiB at most).
async function bufferBudget(backend) {
  if (backend === 'webgpu' && self.navigator.gpu) {
    const a = await self.navigator.gpu.requestAdapter();
    if (a) return Math.min(a.limits.maxStorageBufferBindingSize, a.limits.maxBufferSize);
  }
  return 256 * 1024 * 1024;
}

async function adapterInfo() {
  const a = self.navigator.gpu && await self.navigator.gpu.requestAdapter();
  if (!a) return null;
  const i = a.info || {};
  return { vendor: i.vendor, architecture: i.architecture, description: i.description,
           fallback: !!(i.isFallbackAdapter ?? a.isFallbackAdapter),
           maxBuffer: Math.min(a.limits.maxStorageBufferBindingSize, a.limits.maxBufferSize) };
}

function errorText(e) {
  if (e instanceof WebAssembly.RuntimeError) {
    broken = `the computation crashed (${e.message})`;
    return broken;
  }
  return e?.message ?? String(e);
}

self.onmessage = ({ data }) => {
  if (data.op === 'cancel') {
    try { wasm.sr_cancel(); } catch { /* not initialised yet */ }
    return;
  }
  queue = queue.then(async () => {
    const { id, op } = data;
    try {
      if (broken) throw new Error(broken);
      const h = handlers[op];
      if (!h) throw new Error(`unknown request ${op}`);
      const r = await h(data, id);
      if (r && typeof r === 'object' && 'transfer' in r && 'value' in r) {
        self.postMessage({ id, ok: true, value: r.value }, r.transfer);
      } else {
        self.postMessage({ id, ok: true, value: r });
      }
    } catch (e) {
      self.postMessage({ id, ok: false, error: errorText(e), crashed: !!broken });
    }
  });
};
