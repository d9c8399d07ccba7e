// Files a person takes home: the original, the region or the result as NIfTI or as a
// DICOM series in a zip, written by a worker.
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
    const bytes = await ioCall('export', { kind, parts, folder: base, suffix: which === 'input' ? ' (region)' : '' }, [parts.data.buffer]);
    const name = base + (kind === 'nifti' ? '.nii.gz' : '_dicom.zip');
    const url = URL.createObjectURL(new Blob([bytes], { type: kind === 'nifti' ? 'application/gzip' : 'application/zip' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    setStatus(status, `Saved ${name} (${mb(bytes.length)}) to your downloads.`, 'ok');
  } catch (e) {
    setStatus(status, `Could not save: ${e.message}`, 'error');
  }
}
