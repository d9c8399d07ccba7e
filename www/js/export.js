// Files a person takes home: the original, the region or the result as NIfTI (with its BIDS
// sidecar .json) or as a DICOM series in a zip, written by a worker.
import { $, mb, setStatus, state } from './page.js';
import { ioCall } from './workers.js';

export function safeName(s) { return (s || 'volume').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 60) || 'volume'; }

export async function exportAs(kind) {
  const which = $('#export-what').value;
  const vol = which === 'result' ? state.result : which === 'input' ? state.input : state.orig;
  const status = $('#export-status');
  if (!vol) { setStatus(status, 'Nothing to save yet.', 'error'); return; }
  const base = safeName(state.orig.info.description) + { result: '_mrisr', input: '_region', original: '' }[which];
  setStatus(status, 'Preparing the file…');
  try {
    const parts = vol.handle.toParts();
    const done = which === 'result' ? vol.done : undefined;
    const out = await ioCall('export', { kind, parts, folder: base, suffix: which === 'input' ? ' (region)' : '', done }, [parts.data.buffer]);
    if (kind === 'nifti') {
      // The BIDS sidecar goes beside the NIfTI, as dcm2niix and the mrisr command write it.
      save(out.bytes, base + '.nii.gz', 'application/gzip');
      save(new TextEncoder().encode(out.sidecar), base + '.json', 'application/json');
      setStatus(status, `Saved ${base}.nii.gz (${mb(out.bytes.length)}) and its BIDS sidecar ${base}.json to your downloads.`, 'ok');
    } else {
      save(out, base + '_dicom.zip', 'application/zip');
      setStatus(status, `Saved ${base}_dicom.zip (${mb(out.length)}) to your downloads.`, 'ok');
    }
  } catch (e) {
    setStatus(status, `Could not save: ${e.message}`, 'error');
  }
}

// Hands `bytes` to the browser as a download named `name`.
function save(bytes, name, type) {
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}
