#!/usr/bin/env node
// Browser benchmark: super-resolution of one region of the knee in headless Chromium, on the CPU
// (wasm) and on WebGPU, next to the native `mrisr upscale` of the same region, in one run.
//
//   node tests/e2e/bench.mjs [--region=64] [--repeat=3] [--backends=cpu,webgpu] [--alt-pkg=DIR]
//                            [--native=CMD]
//
// --backends: the worker's engines to time (webgpu; cpu = mrisr's CPU engine in a pool of workers,
//   one per core; an engine a test build of
//   web/src/sr.rs adds, e.g. cpu-ndarray, is added to the page's menu for the run).
// --alt-pkg: a second build of www/pkg (e.g. without simd128), timed on the same CPU engines.
// --native: command template with {input} {output} {weights} (`mrisr upscale`), run --repeat
//   times on the region the page exported; its own timing of the super-resolution step is used.
// Weights: the page's default (www/weights/index.json), or MRISR_E2E_WEIGHTS (a folder).
// Each engine runs once untimed (warm-up), then --repeat times. Prints a markdown table: median seconds and voxels/s per engine, and each as a ratio of the
// first row. Only the ratios mean anything off a GPU: SwiftShader's "WebGPU" runs on the CPU.
// Then the peak resident memory of the tab's renderer process (Linux), over all runs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { launch, openSeries } from './browser.mjs';
import { serve } from './server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const arg = (k, d) => (process.argv.find(a => a.startsWith(`--${k}=`)) || '').split('=').slice(1).join('=') || d;
const region = arg('region', '64');
if (!['32', '64', 'all'].includes(region)) throw new Error('--region: 32, 64 or all (the page\'s choices)');
const repeat = +arg('repeat', '3');
const altPkg = arg('alt-pkg', '');
const native = arg('native', '');
const dicomDir = path.join(repo, '../shared/data/dicom/pykneer_subject01_DESS_echo1');
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'mrisr-bench-'));
const weightsDir = process.env.MRISR_E2E_WEIGHTS || null;

const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timePage(pkgDir, backends) {
  const srv = await serve(path.join(repo, 'www'), { weightsDir, pkgDir });
  const { page, phase, close, peakMemory } = await launch({ timeout: 600000 });
  try {
    await openSeries(page, phase, srv.port, dicomDir);
    // Engines the worker knows but the menu does not offer (a test build's) are added to it.
    await page.evaluate(list => {
      const sel = document.querySelector('#backend');
      for (const be of list) {
        if (![...sel.options].some(o => o.value === be)) sel.append(new Option(be, be));
      }
    }, backends);
    const times = {};
    let dims = null;
    for (const be of backends) {
      times[be] = [];
      for (let i = -1; i < repeat; i++) { // i = -1: warm-up (shader compilation), not timed
        await page.selectOption('#backend', be);
        await page.selectOption('#region', region);
        await page.click('#run');
        await phase(['sr-done', 'sr-error']);
        if (await page.evaluate(() => document.body.dataset.phase) !== 'sr-done') throw new Error(await page.textContent('#sr-status'));
        if (await page.evaluate(() => document.body.dataset.backend) !== be) throw new Error(`${be} fell back to the CPU`);
        if (i >= 0) times[be].push(+await page.evaluate(() => document.body.dataset.srSeconds));
        // The CPU path also reports its stages: the network alone (all workers) is timed too.
        const stages = await page.evaluate(() => document.body.dataset.srStages);
        if (i >= 0 && be === 'cpu' && stages) (times['cpu-network'] ??= []).push(JSON.parse(stages).network);
        await page.waitForFunction(() => !document.querySelector('#run').disabled);
      }
      if (!dims) {
        // The whole series has no separate input region: the original is the input.
        await page.selectOption('#export-what', region === 'all' ? 'original' : 'input');
        const [d] = await Promise.all([page.waitForEvent('download'), page.click('#export-nifti')]);
        await d.saveAs(path.join(out, 'input.nii.gz'));
        dims = (await page.evaluate(() => document.querySelector('#sr-status').textContent)).match(/(\d+) × (\d+) × (\d+) voxels/).slice(1).map(Number);
      }
    }
    return { times, dims, peak: peakMemory() };
  } finally {
    await close();
    await srv.close();
  }
}

const backends = arg('backends', 'cpu,webgpu').split(',');
const label = { cpu: `browser CPU (mrisr engine, ${Math.min(os.cpus().length, 8)} workers)`, webgpu: 'browser WebGPU (this machine\'s adapter)', 'cpu-ndarray': 'browser CPU (ndarray)' };
const rows = [];
const main = await timePage(null, backends);
const voxels = main.dims.reduce((a, b) => a * b, 1);
for (const be of backends) rows.push([`${label[be] || be}, www/pkg`, main.times[be]]);
if (main.times['cpu-network']) rows.push([`${label.cpu}: the network stage alone`, main.times['cpu-network']]);
if (altPkg) {
  const alt = await timePage(altPkg, backends.filter(b => b !== 'webgpu'));
  for (const [be, ts] of Object.entries(alt.times)) rows.push([`${label[be] || be}, ${path.basename(altPkg)}`, ts]);
}
if (native) {
  const w = weightsDir || path.join(repo, 'www/weights');
  const index = JSON.parse(fs.readFileSync(path.join(w, 'index.json'), 'utf8'));
  const file = path.join(w, (index.models.find(m => m.default) || index.models[0]).file);
  const ts = [];
  for (let i = 0; i < repeat; i++) {
    // The CLI reports the time of the same step the page times (upsampling, network, tiles).
    const log = execSync(`${native.replace('{input}', path.join(out, 'input.nii.gz')).replace('{output}', path.join(out, 'native.nii.gz')).replace('{weights}', file)} 2>&1`).toString();
    const m = log.match(/super-resolved in ([\d.]+) s/);
    if (!m) throw new Error(`no timing in the CLI's output:\n${log}`);
    ts.push(+m[1]);
  }
  rows.push([`native \`mrisr upscale\` (CPU engine, ${os.cpus().length} threads)`, ts]);
}

console.log(`region ${region}³ of the knee -> ${main.dims.join(' × ')} = ${voxels} output voxels; median of ${repeat}; ${os.cpus().length} cores (${os.cpus()[0].model})\n`);
console.log('| engine | median s | output voxels/s | time vs. first row |');
console.log('| --- | --- | --- | --- |');
const base = median(rows[0][1]);
for (const [name, ts] of rows) {
  const m = median(ts);
  console.log(`| ${name} | ${m.toFixed(2)} | ${Math.round(voxels / m)} | ${(m / base).toFixed(2)} |`);
}
if (main.peak) console.log(`\npeak resident memory of the tab's renderer process (page and workers, VmHWM): ${(main.peak / 2 ** 20).toFixed(0)} MiB`);
fs.rmSync(out, { recursive: true, force: true });
