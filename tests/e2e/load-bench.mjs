#!/usr/bin/env node
// Page load time of a DICOM folder (default: the knee) in headless Chromium: from picking the
// folder to the series listed (files read + scan in the worker) and to the volume shown (load,
// transfer to the page, viewer built). One untimed warm-up, then --repeat runs.
//
//   node tests/e2e/load-bench.mjs [--repeat=5] [--dir=../shared/data/dicom/pykneer_subject01_DESS_echo1]
//
// Needs www/pkg built (web/build.sh). Prints a markdown row per run and the medians.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from './browser.mjs';
import { serve } from './server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const arg = (k, d) => (process.argv.find(a => a.startsWith(`--${k}=`)) || '').split('=').slice(1).join('=') || d;
const repeat = +arg('repeat', '5');
const dir = path.resolve(repo, arg('dir', '../shared/data/dicom/pykneer_subject01_DESS_echo1'));

const srv = await serve(path.join(repo, 'www'), {});
const { page, phase, close } = await launch();
const median = v => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
try {
  await page.goto(`http://127.0.0.1:${srv.port}/index.html`);
  await phase(['ready']);
  const scans = [], loads = [];
  for (let i = 0; i <= repeat; i++) {
    await page.evaluate(() => { document.body.dataset.phase = ''; });
    const t0 = Date.now();
    await page.setInputFiles('#pick-folder', dir);
    await phase(['scanned']);
    const t1 = Date.now();
    await page.click('#series-list li');
    await phase(['loaded']);
    const t2 = Date.now();
    if (i === 0) continue; // warm-up
    scans.push(t1 - t0);
    loads.push(t2 - t1);
    console.log(`| ${i} | ${t1 - t0} | ${t2 - t1} | ${t2 - t0} |`);
  }
  console.log(`median: pick -> listed ${median(scans)} ms, click -> shown ${median(loads)} ms, total ${median(scans.map((s, i) => s + loads[i]))} ms`);
} finally {
  await close();
  srv.close();
}
