#!/usr/bin/env node
// Cold-start benchmark: the time from navigation until the page says it is ready (data-phase
// "ready": its wasm module fetched, compiled, started on the page and in its first worker), each
// run in a fresh Chromium profile (no HTTP cache, no compiled-code cache).
//
//   node tests/e2e/start-bench.mjs [--runs=5] [--pkg=DIR[,DIR...]]
//
// --pkg: builds of www/pkg to compare (default: www/pkg); their runs are interleaved, so a machine
//   whose load changes during the benchmark affects each build alike.
// Prints a markdown table: per build, the module's size (raw and gzip -9, GitHub Pages sends it
// gzip-compressed) and the median (min-max) seconds to ready. Served from 127.0.0.1: download
// time is not in it.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { launch } from './browser.mjs';
import { serve } from './server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const arg = (k, d) => (process.argv.find(a => a.startsWith(`--${k}=`)) || '').split('=').slice(1).join('=') || d;
const runs = +arg('runs', '5');
const pkgs = arg('pkg', path.join(repo, 'www/pkg')).split(',').map(p => path.resolve(p));
const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function coldLoad(pkgDir) {
  const srv = await serve(path.join(repo, 'www'), { pkgDir });
  const { page, close } = await launch();
  try {
    // The moment data-phase turns "ready", on the page's own clock (0 = navigation start).
    await page.addInitScript(() => {
      new MutationObserver(() => {
        if (document.body?.dataset.phase === 'ready' && window.__readyAt === undefined) window.__readyAt = performance.now();
      }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-phase'] });
    });
    await page.goto(`http://127.0.0.1:${srv.port}/index.html`);
    await page.waitForFunction(() => window.__readyAt !== undefined || document.body.dataset.phase === 'error');
    const at = await page.evaluate(() => window.__readyAt);
    if (at === undefined) throw new Error(`${pkgDir}: the page did not start: ${await page.textContent('#open-status')}`);
    return at / 1000;
  } finally {
    await close();
    await srv.close();
  }
}

const times = pkgs.map(() => []);
for (let r = 0; r < runs; r++) {
  for (let i = 0; i < pkgs.length; i++) times[i].push(await coldLoad(pkgs[i]));
}
console.log(`cold load to "ready", fresh profile each run, median of ${runs}\n`);
console.log('| www/pkg build | module MB | gzip -9 MB | median s to ready (min-max) |');
console.log('| --- | --- | --- | --- |');
pkgs.forEach((p, i) => {
  const wasm = fs.readFileSync(path.join(p, 'mrisr_web_bg.wasm'));
  const gz = zlib.gzipSync(wasm, { level: 9 }).length;
  const mb = n => (n / 1e6).toFixed(2);
  const ts = times[i];
  console.log(`| ${p.startsWith(repo + path.sep) ? path.relative(repo, p) : p} | ${mb(wasm.length)} | ${mb(gz)} | ${median(ts).toFixed(2)} (${Math.min(...ts).toFixed(2)}-${Math.max(...ts).toFixed(2)}) |`);
});
