#!/usr/bin/env node
// End-to-end test of the mrisr page in headless Chromium (WebGPU through SwiftShader).
//
//   node tests/e2e/e2e.mjs [--dicom=DIR] [--www=DIR] [--out=DIR]
//
// Opens www/ from a local server on 127.0.0.1, gives the page the knee DICOM folder through the
// folder picker, picks the series, checks the viewer draws, saves NIfTI and a DICOM zip and
// parses both, runs super-resolution on a small region on WebGPU and on the CPU, and checks
// that the page never requested anything but its own files. Screenshots go to --out.
//
// Super-resolution needs weights: www/weights/index.json, or a folder given as
// MRISR_E2E_WEIGHTS (served as weights/). The results are compared with each other and, when
// given, with the native CLI: MRISR_E2E_REFERENCE (a NIfTI of the native result for the
// exported input region) or MRISR_UPSCALE_CMD (a command template with {input} {output}
// {weights}; run on the region the page exported). Without weights that part is reported as
// PENDING, not passed.
//
// Last line: "N passed, M failed"; the exit code is non-zero if anything failed.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { execSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { launch } from './browser.mjs';
import { serve } from './server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const arg = (k, d) => (process.argv.find(a => a.startsWith(`--${k}=`)) || '').split('=').slice(1).join('=') || d;
const dicomDir = path.resolve(arg('dicom', path.join(repo, '../shared/data/dicom/pykneer_subject01_DESS_echo1')));
const www = path.resolve(arg('www', path.join(repo, 'www')));
const out = path.resolve(arg('out', path.join(here, 'out')));
const TIMEOUT = +(process.env.MRISR_E2E_TIMEOUT_MS || 180000);
fs.mkdirSync(out, { recursive: true });


let passed = 0, failed = 0;
const pending = [];
function check(name, ok, detail = '') {
  if (ok) passed++; else failed++;
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? ': ' + detail : ''}`);
  return ok;
}
async function step(name, fn) {
  try {
    const detail = await fn();
    return check(name, true, detail || '');
  } catch (e) {
    return check(name, false, e.message.split('\n')[0]);
  }
}
function assert(c, msg) { if (!c) throw new Error(msg); }

// ---- file parsers (independent of the page's own code)
function parseNifti(buf) {
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = zlib.gunzipSync(buf);
  assert(buf.readInt32LE(0) === 348, 'sizeof_hdr is not 348');
  const magic = buf.toString('latin1', 344, 348);
  assert(magic === 'n+1\0', `magic ${JSON.stringify(magic)}`);
  const ndim = buf.readInt16LE(40);
  const dims = [1, 2, 3].map(i => buf.readInt16LE(40 + 2 * i));
  const datatype = buf.readInt16LE(70);
  const types = { 16: [4, 'readFloatLE'], 4: [2, 'readInt16LE'], 512: [2, 'readUInt16LE'] };
  assert(types[datatype], `datatype ${datatype} (expected float32, int16 or uint16)`);
  const [size, read] = types[datatype];
  const voxOffset = buf.readFloatLE(108);
  const slope = buf.readFloatLE(112) || 1, inter = buf.readFloatLE(116);
  const n = dims[0] * dims[1] * dims[2];
  assert(buf.length >= voxOffset + size * n, `file has ${buf.length} bytes, header promises ${voxOffset + size * n}`);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = buf[read](voxOffset + size * i) * slope + inter;
  const srow = [0, 1, 2].map(r => [0, 1, 2, 3].map(c => buf.readFloatLE(280 + 16 * r + 4 * c)));
  const pixdim = [1, 2, 3].map(i => buf.readFloatLE(76 + 4 * i));
  return { ndim, dims, pixdim, data, datatype, srow };
}

// A minimal NIfTI-1 file (float32, sform = the voxel size), for volumes made up here.
function writeNifti(dims, pixdim, data) {
  const h = Buffer.alloc(352);
  h.writeInt32LE(348, 0);
  [3, ...dims, 1, 1, 1, 1].forEach((d, i) => h.writeInt16LE(d, 40 + 2 * i));
  h.writeInt16LE(16, 70); // float32
  h.writeInt16LE(32, 72);
  [1, ...pixdim, 1, 1, 1, 1].forEach((v, i) => h.writeFloatLE(v, 76 + 4 * i));
  h.writeFloatLE(352, 108);
  h.writeFloatLE(1, 112);
  h.writeInt16LE(1, 254); // sform_code: scanner
  h.writeUInt8(2, 123); // xyzt_units: mm
  for (let r = 0; r < 3; r++) h.writeFloatLE(pixdim[r], 280 + 16 * r + 4 * r);
  h.write('isotropic test volume', 148, 'latin1');
  h.write('n+1\0', 344, 'latin1');
  return Buffer.concat([h, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

function parseZip(buf) {
  const e = buf.length - 22;
  assert(buf.readUInt32LE(e) === 0x06054b50, 'no end-of-central-directory record');
  const count = buf.readUInt16LE(e + 10);
  let p = buf.readUInt32LE(e + 16);
  const entries = [];
  for (let n = 0; n < count; n++) {
    assert(buf.readUInt32LE(p) === 0x02014b50, `central directory entry ${n} is broken`);
    const method = buf.readUInt16LE(p + 10), size = buf.readUInt32LE(p + 20);
    const nl = buf.readUInt16LE(p + 28), xl = buf.readUInt16LE(p + 30), cl = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nl);
    assert(buf.readUInt32LE(local) === 0x04034b50, `${name}: no local header`);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    entries.push({ name, method, data: buf.subarray(start, start + size) });
    p += 46 + nl + xl + cl;
  }
  return entries;
}

function compare(a, b) {
  assert(a.dims.join() === b.dims.join(), `dims ${a.dims} vs ${b.dims}`);
  let maxAbs = 0, lo = Infinity, hi = -Infinity;
  for (let i = 0; i < a.data.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(a.data[i] - b.data[i]));
    lo = Math.min(lo, b.data[i]); hi = Math.max(hi, b.data[i]);
  }
  return { maxAbs, range: hi - lo, rel: maxAbs / Math.max(1e-12, hi - lo) };
}

// ---- browser
const weightsDir = process.env.MRISR_E2E_WEIGHTS || null;
const hasWeights = fs.existsSync(path.join(weightsDir || path.join(www, 'weights'), 'index.json'));
const srv = await serve(www, { weightsDir });
const origin = `http://127.0.0.1:${srv.port}`;
const { ctx, page, phase, close } = await launch({ timeout: TIMEOUT });
const requests = [];
ctx.on('request', r => requests.push(r.url()));
const errors = [], cspViolations = [];
page.on('pageerror', e => { errors.push(e.message); console.log(`[pageerror] ${e.message}`); });
page.on('console', m => {
  const t = m.text();
  if (/Content Security Policy/i.test(t)) cspViolations.push(t);
  if (m.type() === 'error' || process.env.MRISR_E2E_VERBOSE) console.log(`[console.${m.type()}] ${t}`);
});
const currentPhase = () => page.evaluate(() => document.body.dataset.phase);

// A NIfTI export downloads two files, the image and its BIDS sidecar: both are awaited (the
// sidecar parsed), so a late sidecar is never taken for the next step's download.
async function download(buttonSel, what, file) {
  await page.selectOption('#export-what', what);
  const n = buttonSel === '#export-nifti' ? 2 : 1;
  const got = [];
  const all = new Promise(resolve => {
    const on = d => { got.push(d); if (got.length === n) { page.off('download', on); resolve(); } };
    page.on('download', on);
  });
  await page.click(buttonSel);
  await Promise.race([all, new Promise((_, no) => setTimeout(() => no(new Error(`${got.length} of ${n} downloads`)), 60000))]);
  // The browser may report the two in either order.
  const d = got.find(x => !x.suggestedFilename().endsWith('.json')) || got[0];
  const json = got.find(x => x !== d);
  const p = path.join(out, file || d.suggestedFilename());
  await d.saveAs(p);
  const res = { path: p, name: d.suggestedFilename(), bytes: fs.readFileSync(p) };
  if (json) {
    const stem = p.replace(/\.nii(\.gz)?$/, '');
    assert(json.suggestedFilename() === d.suggestedFilename().replace(/\.nii\.gz$/, '.json'), `sidecar named ${json.suggestedFilename()} beside ${d.suggestedFilename()}`);
    await json.saveAs(`${stem}.json`);
    res.sidecar = JSON.parse(fs.readFileSync(`${stem}.json`, 'utf8'));
  }
  return res;
}

let knee = null, listedDims = null;
try {
  await step('page starts (wasm compiled and the worker ready)', async () => {
    await page.goto(`${origin}/index.html?viewer-test`);
    await phase(['ready', 'error']);
    assert(await currentPhase() === 'ready', await page.textContent('#open-status'));
    await page.screenshot({ path: path.join(out, 'start.png') });
  });

  await step('WebGPU computes a test convolution in a worker', async () => {
    await page.waitForFunction(() => document.body.dataset.gpu, null, { timeout: 60000 });
    const line = await page.textContent('#engine');
    assert(await page.evaluate(() => document.body.dataset.gpu) === 'ok', line);
    return line;
  });

  await step('strict Content-Security-Policy', async () => {
    const csp = await page.getAttribute('meta[http-equiv="Content-Security-Policy"]', 'content');
    for (const d of ["default-src 'self'", "connect-src 'self'", "script-src 'self' 'wasm-unsafe-eval'", "object-src 'none'", "form-action 'none'"]) {
      assert(csp.includes(d), `missing ${d}`);
    }
  });

  const files = fs.readdirSync(dicomDir).filter(f => !f.startsWith('.'));
  await step(`open the knee folder (${files.length} files) with the folder picker`, async () => {
    await page.setInputFiles('#pick-folder', dicomDir);
    await phase(['scanned', 'empty', 'error']);
    assert(await currentPhase() === 'scanned', await page.textContent('#open-status'));
    const items = await page.$$eval('#series-list li', lis => lis.map(li => li.textContent));
    assert(items.length === 1, `${items.length} series listed`);
    assert(items[0].includes(`${files.length} files`), items[0]);
    listedDims = items[0].match(/(\d+) × (\d+) × (\d+) voxels/).slice(1).map(Number);
    return items[0];
  });

  await step('pick the series: the viewer draws three non-blank planes', async () => {
    await page.click('#series-list li');
    await phase(['loaded', 'error']);
    assert(await currentPhase() === 'loaded', await page.textContent('#open-status'));
    await page.waitForTimeout(300);
    const stats = await page.$$eval('.vp canvas', cs => cs.map(c => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let s = 0, s2 = 0, n = 0;
      for (let i = 0; i < d.length; i += 4) { s += d[i]; s2 += d[i] * d[i]; n++; }
      return { w: c.width, h: c.height, variance: s2 / n - (s / n) ** 2 };
    }));
    await page.screenshot({ path: path.join(out, 'viewer.png') });
    assert(stats.length === 3, `${stats.length} canvases`);
    stats.forEach((s, i) => assert(s.variance > 1, `plane ${i} looks blank (variance ${s.variance})`));
    knee = await page.evaluate(() => document.querySelector('#open-status').textContent);
    return stats.map(s => `${s.w}x${s.h} var ${s.variance.toFixed(0)}`).join(', ');
  });

  await step('window/level drag, slice slider and zoom change the view', async () => {
    const before = await page.textContent('#wl-readout');
    const box = await page.locator('.vp canvas').first().boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2 + 60, box.y + box.height / 2 + 30, { steps: 5 });
    await page.mouse.up();
    await page.waitForFunction(b => document.querySelector('#wl-readout').textContent !== b, before, { timeout: 5000 });
    const after = await page.textContent('#wl-readout');
    await page.locator('.vp input[type=range]').first().fill('10');
    await page.waitForFunction(() => document.querySelector('.vp .pos').textContent.startsWith('11 /'), null, { timeout: 5000 });
    await page.click('#zoom-in');
    await page.waitForFunction(() => document.querySelector('#zoom-readout').textContent.trim() === '125 %', null, { timeout: 5000 });
    await page.click('#zoom-fit');
    await page.selectOption('#wl-preset', 'auto');
    await page.screenshot({ path: path.join(out, 'viewer-interacted.png') });
    return `${before} -> ${after}`;
  });

  let origNifti = null;
  await step('save the original as NIfTI: the download parses', async () => {
    const d = await download('#export-nifti', 'original', 'original.nii.gz');
    origNifti = parseNifti(d.bytes);
    const n = origNifti.dims.reduce((a, b) => a * b, 1);
    assert(origNifti.dims.join() === listedDims.join(), `dims ${origNifti.dims}, the list said ${listedDims}`);
    assert(n > 0 && origNifti.data.some(v => v !== 0), 'all zero');
    assert(origNifti.datatype === 16, 'not float32');
    return `${d.name}, ${origNifti.dims.join('x')}, ${(d.bytes.length / 1e6).toFixed(1)} MB`;
  });

  await step('the NIfTI comes with its BIDS sidecar (the series\' fields, as dcm2niix writes)', async () => {
    const { sidecar: s } = await download('#export-nifti', 'original', 'original-sidecar.nii.gz');
    const want = { Modality: 'MR', Manufacturer: 'GE MEDICAL SYSTEMS', MagneticFieldStrength: 3, RepetitionTime: 0.025, SliceThickness: 1.5, MRAcquisitionType: '3D', ConversionSoftware: 'mrisr' };
    const wrong = Object.entries(want).filter(([k, v]) => s?.[k] !== v).map(([k, v]) => `${k}: ${JSON.stringify(s?.[k])}, want ${JSON.stringify(v)}`);
    assert(!wrong.length, wrong.join('; '));
    assert(Math.abs(s.EchoTime - 0.00748) < 1e-6, `EchoTime ${s.EchoTime}`);
    assert(s.SeriesDescription?.startsWith('Sag DESS'), `SeriesDescription ${s.SeriesDescription}`);
    assert(!('mrisr' in s), 'an original has no mrisr field');
    return Object.keys(s).join(', ');
  });

  const ref = process.env.MRISR_E2E_DICOM_REF || path.join(repo, '../shared/data/ref/knee_dess_echo1.nii.gz');
  if (fs.existsSync(ref) && origNifti) {
    await step('the page read the series exactly like dcm2niix (voxels and affine)', async () => {
      const r = parseNifti(fs.readFileSync(ref));
      const c = compare(origNifti, r);
      assert(c.maxAbs === 0, `max |diff| ${c.maxAbs}`);
      const da = Math.max(...origNifti.srow.flat().map((v, i) => Math.abs(v - r.srow.flat()[i])));
      assert(da < 1e-3, `affine differs by ${da}`);
      return `${path.basename(ref)}: identical voxels, affine within ${da.toExponential(1)} mm`;
    });
  }

  await step('save the original as a DICOM series: a zip of DICOM files', async () => {
    const d = await download('#export-dicom', 'original', 'original_dicom.zip');
    const entries = parseZip(d.bytes);
    assert(entries.length === origNifti.dims[2], `${entries.length} entries, expected ${origNifti.dims[2]}`);
    const bad = entries.filter(e => e.method !== 0 || e.data.toString('latin1', 128, 132) !== 'DICM');
    assert(!bad.length, `${bad.length} entries are not DICOM (first: ${bad[0]?.name})`);
    try { execSync('command -v unzip', { stdio: 'ignore' }); } catch { return `${d.name}: ${entries.length} files (unzip not installed)`; }
    execSync(`unzip -tq ${JSON.stringify(d.path)}`, { stdio: 'pipe' }); // throws if any CRC is wrong
    return `${d.name}: ${entries.length} files, e.g. ${entries[0].name}`;
  });

  await step('the saved DICOM series reads back with the same voxels', async () => {
    const dir = path.join(out, 'dicom_roundtrip');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    for (const e of parseZip(fs.readFileSync(path.join(out, 'original_dicom.zip')))) {
      fs.mkdirSync(path.join(dir, path.dirname(e.name)), { recursive: true });
      fs.writeFileSync(path.join(dir, e.name), e.data);
    }
    const sub = path.join(dir, fs.readdirSync(dir)[0]);
    await page.setInputFiles('#pick-folder', sub);
    await phase(['scanned', 'empty', 'error']);
    assert(await currentPhase() === 'scanned', await page.textContent('#open-status'));
    await page.click('#series-list li');
    await phase(['loaded', 'error']);
    const back = parseNifti((await download('#export-nifti', 'original', 'roundtrip.nii.gz')).bytes);
    const c = compare(back, origNifti);
    assert(c.maxAbs < 1e-3 * c.range, `max |diff| ${c.maxAbs}`);
    return `${back.dims.join('x')}, max |diff| ${c.maxAbs}`;
  });

  await step('open the saved NIfTI with the file picker', async () => {
    await page.setInputFiles('#pick-files', path.join(out, 'original.nii.gz'));
    await phase(['scanned', 'empty', 'error']);
    const items = await page.$$eval('#series-list li', lis => lis.map(li => li.textContent));
    assert(items.length === 1 && items[0].includes('NIfTI'), items.join(' | '));
    await page.click('#series-list li');
    await phase(['loaded', 'error']);
    assert(await currentPhase() === 'loaded', await page.textContent('#open-status'));
    return items[0];
  });

  await step('drop two DICOM files on the drop zone', async () => {
    const two = files.slice(0, 2).map(f => ({ name: f, b64: fs.readFileSync(path.join(dicomDir, f)).toString('base64') }));
    const dt = await page.evaluateHandle(list => {
      const dt = new DataTransfer();
      for (const f of list) {
        const bin = atob(f.b64), u8 = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
        dt.items.add(new File([u8], f.name));
      }
      return dt;
    }, two);
    await page.dispatchEvent('#drop', 'drop', { dataTransfer: dt });
    await page.waitForFunction(() => document.querySelector('#open-status').textContent.startsWith('2 files read'), null, { timeout: 30000 });
    const items = await page.$$eval('#series-list li', lis => lis.map(li => li.textContent));
    assert(items.length === 1 && items[0].includes('2 files'), items.join(' | '));
    // back to the whole knee for what follows
    await page.setInputFiles('#pick-files', path.join(out, 'original.nii.gz'));
    await phase(['scanned']);
    await page.click('#series-list li');
    await phase(['loaded']);
    return items[0];
  });

  // Files dropped on the drop zone (name and bytes), then the first series listed is loaded.
  async function dropAndLoad(list) {
    const payload = list.map(f => ({ name: f.name, b64: f.bytes.toString('base64') }));
    const dt = await page.evaluateHandle(items => {
      const dt = new DataTransfer();
      for (const f of items) {
        const bin = atob(f.b64), u8 = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
        dt.items.add(new File([u8], f.name));
      }
      return dt;
    }, payload);
    await page.evaluate(() => { document.body.dataset.phase = ''; });
    await page.dispatchEvent('#drop', 'drop', { dataTransfer: dt });
    await phase(['scanned', 'empty', 'error']);
    if (await currentPhase() !== 'scanned') return { phase: await currentPhase(), status: await page.textContent('#open-status') };
    await page.click('#series-list li');
    await phase(['loaded', 'error']);
    return { phase: await currentPhase(), status: await page.textContent('#open-status') };
  }

  const conf = path.join(repo, '../shared/data/conformance/pydicom-data/pydicom-data');
  if (fs.existsSync(conf)) {
    await step('drop a JPEG 2000 and a JPEG-LS file: both decode to the uncompressed twin\'s voxels', async () => {
      const voxels = {};
      for (const f of ['emri_small.dcm', 'emri_small_jpeg_2k_lossless.dcm', 'emri_small_jpeg_ls_lossless.dcm']) {
        const r = await dropAndLoad([{ name: f, bytes: fs.readFileSync(path.join(conf, f)) }]);
        assert(r.phase === 'loaded', `${f}: ${r.status}`);
        voxels[f] = parseNifti((await download('#export-nifti', 'original', `drop-${f}.nii.gz`)).bytes);
      }
      const ref = voxels['emri_small.dcm'];
      for (const f of ['emri_small_jpeg_2k_lossless.dcm', 'emri_small_jpeg_ls_lossless.dcm']) {
        const c = compare(voxels[f], ref);
        assert(voxels[f].dims.join() === ref.dims.join() && c.maxAbs === 0, `${f}: dims ${voxels[f].dims}, max |diff| ${c.maxAbs}`);
      }
      return `JPEG 2000 and JPEG-LS: ${ref.dims.join('x')}, identical to the uncompressed file`;
    });
  }

  await step('a file declaring a 2 GB element: a clear message, and the tab goes on', async () => {
    // A knee slice whose Pixel Data (7FE0,0010) says it holds 2^31 bytes.
    const b = Buffer.from(fs.readFileSync(path.join(dicomDir, files[0])));
    const at = b.lastIndexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f]));
    assert(at > 0, 'no Pixel Data header found');
    b.writeUInt32LE(0x80000000, at + 8);
    const r = await dropAndLoad([{ name: 'declares-2GB.dcm', bytes: b }]);
    assert(r.phase === 'error' && /declares 2147483648 bytes/.test(r.status) && r.status.includes('declares-2GB.dcm'), `${r.phase}: ${r.status}`);
    const mem = await page.evaluate(() => performance.memory?.usedJSHeapSize || 0);
    // back to the whole knee for what follows: the page still reads files
    await page.setInputFiles('#pick-files', path.join(out, 'original.nii.gz'));
    await phase(['scanned']);
    await page.click('#series-list li');
    await phase(['loaded']);
    return `${r.status} (JS heap ${(mem / 1e6).toFixed(0)} MB)`;
  });

  for (const mode of ['side', 'swipe']) {
    await step(`comparison view "${mode}" (stand-in result: a 64³ crop, no network)`, async () => {
      await page.evaluate(m => window.viewerTest(m, 64), mode);
      const stats = await page.$$eval('.vp canvas', cs => cs.map(c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let s = 0, s2 = 0, n = 0;
        for (let i = 0; i < d.length; i += 4) { s += d[i]; s2 += d[i] * d[i]; n++; }
        return s2 / n - (s / n) ** 2;
      }));
      await page.screenshot({ path: path.join(out, `compare-${mode}.png`) });
      assert(stats.length === (mode === 'side' ? 6 : 3), `${stats.length} canvases`);
      stats.forEach((v, i) => assert(v > 1, `canvas ${i} looks blank`));
      return `${stats.length} canvases drawn`;
    });
  }

  // ---- super-resolution
  if (!hasWeights) {
    pending.push('super-resolution on WebGPU and CPU vs native: no weights/index.json (the model is not published yet; set MRISR_E2E_WEIGHTS)');
  } else {
    await step('the model menu lists the published models; picking one loads its card', async () => {
      const n = await page.$$eval('#model option', opts => opts.length);
      if (n < 2) { pending.push('model menu: the weights folder lists one model'); return 'one model: menu hidden'; }
      assert(!(await page.isHidden('#model-row')), 'menu hidden with several models');
      const titles = await page.$$eval('#model option', opts => opts.map(o => o.textContent));
      const heading = () => page.textContent('#model-info h3');
      const first = await heading();
      // The card in words: what the model undoes, its network, its size (the tiny e2e models
      // undo x2 thicker slices).
      const summary = await page.$$eval('#model-info dl > *', els => els.map(e => e.textContent));
      const row = k => summary[summary.indexOf(k) + 1] || '';
      assert(row('Undoes').startsWith('slices 2x thicker'), `card summary: ${summary.join(' | ')}`);
      assert(/blocks x \d+ channels/.test(row('Network')) && /[KM]B$/.test(row('Size')), `card summary: ${summary.join(' | ')}`);
      await page.selectOption('#model', '1');
      await page.waitForFunction(f => document.querySelector('#model-info h3')?.textContent !== f, first);
      const second = await heading();
      assert(titles[1].startsWith(second), `picked "${titles[1]}", card says "${second}"`);
      await page.selectOption('#model', '0');
      await page.waitForFunction(f => document.querySelector('#model-info h3')?.textContent === f, first);
      await page.waitForFunction(() => !document.querySelector('#run').disabled);
      return `${n} models; ${first} -> ${second} -> ${first}; ${row('Undoes')}, ${row('Network')}`;
    });

    const results = {};
    for (const backend of ['webgpu', 'cpu']) {
      await step(`super-resolution of a 32³ region on ${backend}`, async () => {
        await page.waitForFunction(() => !document.querySelector('#run').disabled);
        await page.selectOption('#backend', backend);
        await page.selectOption('#region', '32');
        const t0 = Date.now();
        await page.click('#run');
        await phase(['sr-done', 'sr-error', 'sr-cancelled']);
        const status = await page.textContent('#sr-status');
        assert(await currentPhase() === 'sr-done', status);
        const used = await page.evaluate(() => document.body.dataset.backend);
        assert(used === backend, `ran on ${used}`);
        let pool = '';
        if (backend === 'cpu') {
          // The CPU path splits the work over one worker per core (a 32-row region holds
          // slabs for up to 3 with the tiny model's halo of 5).
          const [workers, cores] = await page.evaluate(() => [+document.body.dataset.cpuWorkers, navigator.hardwareConcurrency]);
          assert(workers === Math.min(cores, 8, 3), `${workers} workers on ${cores} cores`);
          pool = ` (${workers} workers)`;
        }
        await page.screenshot({ path: path.join(out, `result-${backend}.png`) });
        const saved = await download('#export-nifti', 'result', `result-${backend}.nii.gz`);
        const r = parseNifti(saved.bytes);
        const m = saved.sidecar?.mrisr;
        assert(m?.model && m.card && m.input_spacing_mm?.length === 3 && m.output_spacing_mm?.every((v, a) => Math.abs(v - r.pixdim[a]) < 1e-5),
          `the result's sidecar says ${JSON.stringify(m)} (output spacing ${[...r.pixdim]})`);
        const inp = parseNifti((await download('#export-nifti', 'input', `input-${backend}.nii.gz`)).bytes);
        results[backend] = { r, inp };
        return `${(Date.now() - t0) / 1000} s${pool}: ${inp.dims.join('x')} -> ${r.dims.join('x')}; ${status}`;
      });
    }
    if (results.webgpu && results.cpu) {
      await step('WebGPU and CPU results agree', async () => {
        const c = compare(results.webgpu.r, results.cpu.r);
        assert(c.rel < 1e-3, `max |diff| ${c.maxAbs} of range ${c.range}`);
        return `max |diff| ${c.maxAbs.toExponential(2)} (range ${c.range.toFixed(1)})`;
      });
    }
    await step('a GPU run that crashes (lost device) finishes on the CPU', async () => {
      await page.evaluate(() => { delete document.body.dataset.fallback; window.failNextGpuRun(); });
      await page.selectOption('#backend', 'webgpu');
      await page.selectOption('#region', '32');
      await page.click('#run');
      await phase(['sr-done', 'sr-error', 'sr-cancelled']);
      const status = await page.textContent('#sr-status');
      assert(await currentPhase() === 'sr-done', status);
      const used = await page.evaluate(() => document.body.dataset.backend);
      const why = await page.evaluate(() => document.body.dataset.fallback || '');
      assert(used === 'cpu', `ran on ${used}`);
      assert(why.includes('device lost'), `fallback reason: ${JSON.stringify(why)}`);
      const r = parseNifti((await download('#export-nifti', 'result', 'result-fallback.nii.gz')).bytes);
      const c = compare(r, results.cpu.r);
      assert(c.maxAbs === 0, `differs from the CPU run by ${c.maxAbs}`);
      return `${why}; ${status}`;
    });

    await step('"Automatic" takes the CPU over a software WebGPU adapter', async () => {
      const line = await page.textContent('#engine');
      const software = line.includes('software fallback');
      await page.selectOption('#backend', 'auto');
      await page.selectOption('#region', '32');
      await page.click('#run');
      await phase(['sr-done', 'sr-error', 'sr-cancelled']);
      assert(await currentPhase() === 'sr-done', await page.textContent('#sr-status'));
      const used = await page.evaluate(() => document.body.dataset.backend);
      assert(used === (software ? 'cpu' : 'webgpu'), `ran on ${used}; footer: ${line}`);
      return `${used} (${line})`;
    });

    await step('the Diagnostics panel says what ran, and copies', async () => {
      await page.click('#diag-open');
      const text = await page.textContent('#diag-text');
      for (const want of ['mrisr page 0.', 'cores: ', 'WebAssembly SIMD: yes', 'WebGPU: ', 'model: ', 'last run: ', 'stages: prepare'])
        assert(text.includes(want), `no "${want}" in:\n${text}`);
      await page.click('#diag-copy');
      await page.waitForFunction(() => document.querySelector('#diag-status').textContent !== '');
      const status = await page.textContent('#diag-status');
      await page.screenshot({ path: path.join(out, 'diagnostics.png') });
      await page.click('#diag-close');
      return `${text.split('\n').length} lines; ${status}`;
    });

    let reference = process.env.MRISR_E2E_REFERENCE;
    const cmd = process.env.MRISR_UPSCALE_CMD;
    if (!reference && cmd && results.cpu) {
      reference = path.join(out, 'native.nii.gz');
      const w = process.env.MRISR_E2E_WEIGHTS_FILE || '';
      execSync(cmd.replace('{input}', path.join(out, 'input-cpu.nii.gz')).replace('{output}', reference).replace('{weights}', w), { stdio: 'inherit' });
    }
    if (reference && results.cpu) {
      await step('page results match the native `mrisr upscale`', async () => {
        const ref = parseNifti(fs.readFileSync(reference));
        const lines = [];
        for (const [b, { r }] of Object.entries(results)) {
          const c = compare(r, ref);
          assert(c.rel < 1e-3, `${b}: max |diff| ${c.maxAbs} of range ${c.range}`);
          lines.push(`${b} max |diff| ${c.maxAbs.toExponential(2)}`);
        }
        return lines.join(', ');
      });
    } else {
      pending.push('comparison with the native CLI: set MRISR_E2E_REFERENCE or MRISR_UPSCALE_CMD');
    }
    await step('cancel stops a run and the page stays usable', async () => {
      await page.selectOption('#region', 'all');
      await page.selectOption('#backend', 'cpu');
      await page.click('#run');
      await page.waitForSelector('#sr-progress:not([hidden])');
      await page.click('#cancel');
      await phase(['sr-cancelled', 'sr-done', 'sr-error']);
      assert(await currentPhase() === 'sr-cancelled', await page.textContent('#sr-status'));
      assert(!(await page.isDisabled('#run')), 'run button stays disabled');
    });
  }

  // ---- "Learn from this scan": a few steps on a 64³ region of the knee (the Steps field keeps
  // it short), at x3 instead of the default x4.
  let learned = null;
  await step('learn from a 64³ region at x3: progress advances, the card says "Learned from", the result has 3x the slices', async () => {
    await page.waitForFunction(() => !document.querySelector('#learn-start').disabled);
    const dflt = await page.inputValue('#learn-factor');
    const hint = await page.textContent('#learn-spacing');
    assert(dflt === '4' && /^80 → 320 slices of 0\.3[78] mm/.test(hint), `default factor ${dflt}, "${hint}"`);
    // The Steps field starts at the library's default (the module's, not a copy in the page).
    const stepsField = await page.inputValue('#learn-steps');
    assert(/^[1-9][0-9]*$/.test(stepsField), `Steps field "${stepsField}": expected the module's default`);
    await page.fill('#learn-factor', '3');
    await page.waitForFunction(() => document.querySelector('#learn-spacing').textContent.startsWith('80 → 240 slices of 0.5 mm'));
    await page.fill('#learn-steps', '12');
    await page.selectOption('#region', '64');
    await page.selectOption('#backend', 'cpu');
    await page.evaluate(() => {
      window.learnTexts = [];
      const t = document.querySelector('#sr-progress .progress-text');
      new MutationObserver(() => window.learnTexts.push(t.textContent)).observe(t, { childList: true, characterData: true, subtree: true });
    });
    const t0 = Date.now();
    await page.click('#learn-start');
    await phase(['sr-done', 'sr-error', 'sr-cancelled', 'learn-error', 'learn-cancelled']);
    const status = await page.textContent('#learn-status');
    assert(await currentPhase() === 'sr-done', `${status} / ${await page.textContent('#sr-status')}`);
    const texts = await page.evaluate(() => window.learnTexts);
    const steps = texts.map(t => +(t.match(/^Learning: step (\d+) of 12/) || [0, 0])[1]).filter(Boolean);
    assert(steps.length >= 2 && steps[0] < steps[steps.length - 1] && steps.includes(12), `progress: ${texts.slice(0, 4).join(' | ')} …`);
    assert(texts.some(t => / left$/.test(t)), `no time left shown: ${texts.slice(0, 4).join(' | ')}`);
    const summary = await page.$$eval('#model-info dl > *', els => els.map(e => e.textContent));
    const row = k => summary[summary.indexOf(k) + 1] || '';
    assert(row('Learned from') && /x3\.00 \(1\.50 -> 0\.50 mm\), 12 steps/.test(row('Learned from')), `card summary: ${summary.join(' | ')}`);
    assert(await page.inputValue('#model') === 'learned', 'the learned model is not the one selected');
    await page.screenshot({ path: path.join(out, 'learned.png') });
    const r = parseNifti((await download('#export-nifti', 'result', 'result-learned.nii.gz')).bytes);
    const inp = parseNifti((await download('#export-nifti', 'input', 'input-learned.nii.gz')).bytes);
    const thick = inp.pixdim.indexOf(Math.max(...inp.pixdim));
    const want = inp.dims.map((d, a) => (a === thick ? 3 * d : d));
    assert(r.dims.join() === want.join(), `result ${r.dims.join('x')}, expected ${want.join('x')} (input ${inp.dims.join('x')})`);
    assert(Math.abs(r.pixdim[thick] - inp.pixdim[thick] / 3) < 1e-3, `slice spacing ${r.pixdim[thick]}`);
    learned = { r, inp };
    return `${(Date.now() - t0) / 1000} s: ${inp.dims.join('x')} -> ${r.dims.join('x')}; ${status}; ${row('Learned from')}`;
  });

  if (learned) {
    await step('"Save learned weights": a weight file whose card sr_model_card reads back', async () => {
      const [d] = await Promise.all([page.waitForEvent('download'), page.click('#learn-save')]);
      const p = path.join(out, 'learned.safetensors');
      await d.saveAs(p);
      const bytes = fs.readFileSync(p);
      // safetensors: u64 header length, JSON header with the card in __metadata__.
      const n = Number(bytes.readBigUInt64LE(0));
      const header = JSON.parse(bytes.toString('utf8', 8, 8 + n));
      const card = JSON.parse(header.__metadata__['mrisr.card']);
      assert(card.adapted && Math.abs(card.adapted.task.factor - 3) < 1e-9 && card.adapted.steps === 12, `card: ${JSON.stringify(card).slice(0, 300)}`);
      const back = await page.evaluate(async b64 => {
        const m = await import('./pkg/mrisr_web.js');
        const bin = atob(b64), u8 = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
        return JSON.parse(m.sr_model_card(u8));
      }, bytes.toString('base64'));
      const lf = back.summary.find(([k]) => k === 'Learned from');
      assert(lf && back.card.adapted, `sr_model_card: ${JSON.stringify(back.summary)}`);
      learned.weights = p;
      return `${d.suggestedFilename()}, ${bytes.length} bytes; ${lf[1]}`;
    });
  }

  const upscaleCmd = process.env.MRISR_UPSCALE_CMD;
  if (learned?.weights && upscaleCmd) {
    await step('the learned weights give the page\'s voxels natively (`mrisr upscale --weights`)', async () => {
      const native = path.join(out, 'native-learned.nii.gz');
      execSync(upscaleCmd.replace('{input}', path.join(out, 'input-learned.nii.gz')).replace('{output}', native).replace('{weights}', learned.weights), { stdio: 'inherit' });
      const c = compare(learned.r, parseNifti(fs.readFileSync(native)));
      assert(c.rel < 1e-3, `max |diff| ${c.maxAbs} of range ${c.range}`);
      return `max |diff| ${c.maxAbs.toExponential(2)} (range ${c.range.toFixed(1)})`;
    });
  }

  if (learned) {
    await step('the learned model on WebGPU (both views, in tiles) gives the CPU\'s voxels', async () => {
      const res = {};
      for (const backend of ['webgpu', 'cpu']) {
        await page.selectOption('#backend', backend);
        await page.selectOption('#region', '32');
        await page.click('#run');
        await phase(['sr-done', 'sr-error', 'sr-cancelled']);
        assert(await currentPhase() === 'sr-done', await page.textContent('#sr-status'));
        assert(await page.evaluate(() => document.body.dataset.backend) === backend, `did not run on ${backend}`);
        res[backend] = parseNifti((await download('#export-nifti', 'result', `result-learned-${backend}.nii.gz`)).bytes);
      }
      const c = compare(res.webgpu, res.cpu);
      assert(res.cpu.dims.join() === '96,32,32', `dims ${res.cpu.dims}`);
      assert(c.rel < 1e-3, `max |diff| ${c.maxAbs} of range ${c.range}`);
      return `${res.cpu.dims.join('x')}, max |diff| ${c.maxAbs.toExponential(2)} (range ${c.range.toFixed(1)})`;
    });
  }

  await step('a region too small to learn from (32³): learning says why not', async () => {
    await page.selectOption('#region', '32');
    await page.click('#learn-start');
    await phase(['learn-error', 'sr-done']);
    const status = await page.textContent('#learn-status');
    assert(await currentPhase() === 'learn-error' && /too small/.test(status), status);
    return status;
  });

  await step('Cancel stops the learning; the page stays usable', async () => {
    await page.fill('#learn-steps', '100000');
    await page.selectOption('#region', '64');
    await page.click('#learn-start');
    await page.waitForFunction(() => +document.body.dataset.learnStep >= 1 || document.body.dataset.phase === 'learn-error');
    assert(await currentPhase() === 'learn-running', await page.textContent('#learn-status'));
    await page.click('#cancel');
    await phase(['learn-cancelled', 'learn-error', 'sr-done']);
    const status = await page.textContent('#learn-status');
    assert(await currentPhase() === 'learn-cancelled', status);
    assert(!(await page.isDisabled('#learn-start')) && !(await page.isDisabled('#run')), 'buttons stay disabled');
    assert(await page.inputValue('#model') === 'learned', 'the model changed');
    return status;
  });

  await step('an isotropic volume: learning says why not', async () => {
    // A 32³ volume of 0.5 mm voxels (knee values), written here as NIfTI.
    const dims = [32, 32, 32], data = new Float32Array(32 * 32 * 32);
    const src = learned?.inp || origNifti;
    for (let k = 0; k < 32; k++) for (let j = 0; j < 32; j++) for (let i = 0; i < 32; i++) {
      data[i + 32 * (j + 32 * k)] = src.data[i + src.dims[0] * (j + src.dims[1] * k)];
    }
    const p = path.join(out, 'isotropic.nii');
    fs.writeFileSync(p, writeNifti(dims, [0.5, 0.5, 0.5], data));
    await page.setInputFiles('#pick-files', p);
    await phase(['scanned', 'empty', 'error']);
    await page.click('#series-list li');
    await phase(['loaded', 'error']);
    await page.selectOption('#region', 'all');
    await page.click('#learn-start');
    await phase(['learn-error', 'learn-running', 'sr-done']);
    const status = await page.textContent('#learn-status');
    assert(await currentPhase() === 'learn-error' && /nearly isotropic/.test(status) && /no thick axis/.test(status), status);
    return status;
  });

  await step('no page errors and no CSP violations', async () => {
    assert(!errors.length, errors.join(' | '));
    assert(!cspViolations.length, cspViolations.join(' | '));
  });

  await step('every request stayed on 127.0.0.1 (page and workers)', async () => {
    const foreign = requests.filter(u => !u.startsWith(`${origin}/`) && !u.startsWith('blob:') && !u.startsWith('data:'));
    assert(requests.length > 0, 'no requests recorded');
    assert(!foreign.length, foreign.join(', '));
    return `${requests.length} requests, ${new Set(srv.hits).size} distinct paths served`;
  });
} catch (e) {
  check('test harness', false, e.stack);
} finally {
  await close().catch(() => {});
  await srv.close();
}
fs.writeFileSync(path.join(out, 'requests.txt'), requests.join('\n') + '\n');
for (const p of pending) console.log(`PENDING ${p}`);
// The project's test command (tests/run.sh) sets MRISR_E2E_STRICT: there, a pending part fails.
if (process.env.MRISR_E2E_STRICT && pending.length) failed += pending.length;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
