// Web Workers, each running the wasm module (www/worker.js): a promise per request, progress
// callbacks, and termination (Cancel). `ioCall` is the one worker for files and exports.
import { state } from './page.js';

export class WasmWorker {
  constructor(module) {
    this.w = new Worker(new URL('../worker.js', import.meta.url), { type: 'module' });
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

export async function ioCall(op, args, transfer) {
  if (!state.io) state.io = new WasmWorker(state.module);
  await state.io.ready;
  try {
    return await state.io.call(op, args, transfer);
  } catch (e) {
    if (e.crashed) { state.io.terminate('restarted'); state.io = null; }
    throw e;
  }
}
