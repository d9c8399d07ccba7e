#!/usr/bin/env node
// "Learn from this scan" in the page, timed on the whole knee: headless Chromium reads the knee
// DICOM series, learns for --steps steps in the page's CPU worker (from the page's default
// model, www/weights or MRISR_E2E_WEIGHTS) at the default factor, then (unless --learn-only)
// super-resolves the whole series with the learned weights on the CPU pool.
//
//   node tests/e2e/learn-bench.mjs [--steps=30] [--learn-only] [--region=all|64]
//
// Prints the page's own timings: setup (normalisation, pairs, first step's start), seconds per
// step (from the first reported step to the last), the whole learning, and the super-resolution.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, openSeries } from './browser.mjs';
import { serve } from './server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const arg = (k, d) => (process.argv.find(a => a.startsWith(`--${k}=`)) || '').split('=').slice(1).join('=') || d;
const steps = arg('steps', '30');
const region = arg('region', 'all');
const learnOnly = process.argv.includes('--learn-only');
const dicomDir = path.join(repo, '../shared/data/dicom/pykneer_subject01_DESS_echo1');

const srv = await serve(path.join(repo, 'www'), { weightsDir: process.env.MRISR_E2E_WEIGHTS || null });
const { page, phase, close } = await launch({ timeout: 3600000 });
let tick = null;
page.on('pageerror', e => console.log(`[pageerror] ${e.message}`));
try {
  await openSeries(page, phase, srv.port, dicomDir);
  await page.selectOption('#backend', 'cpu');
  await page.selectOption('#region', region);
  await page.fill('#learn-steps', steps);
  const factor = await page.inputValue('#learn-factor');
  const t0 = Date.now();
  await page.click('#learn-start');
  tick = setInterval(async () => {
    const t = await page.textContent('#sr-progress .progress-text').catch(() => '');
    console.log(`  ${((Date.now() - t0) / 1000).toFixed(0)} s: ${t}`);
  }, 15000);
  // 'learn-done' lasts no longer than it takes to start the super-resolution: wait for the
  // learning's timings instead.
  await page.waitForFunction(() => document.body.dataset.learnSeconds || ['learn-error', 'learn-cancelled'].includes(document.body.dataset.phase));
  const status = await page.textContent('#learn-status');
  if (!(await page.evaluate(() => document.body.dataset.learnSeconds))) throw new Error(status);
  const l = await page.evaluate(() => ({
    seconds: +document.body.dataset.learnSeconds, perStep: +document.body.dataset.learnPerStep,
  }));
  console.log(`knee, region ${region}, x${factor}, ${steps} steps: ${status}`);
  console.log(`learning: ${l.seconds.toFixed(1)} s in all, ${l.perStep.toFixed(3)} s a step (${((Date.now() - t0) / 1000).toFixed(1)} s from the click)`);
  if (!learnOnly) {
    await phase(['sr-done', 'sr-error', 'sr-cancelled']);
    const sr = await page.textContent('#sr-status');
    clearInterval(tick);
    const stages = await page.evaluate(() => document.body.dataset.srStages);
    console.log(`super-resolution: ${sr} stages ${stages}`);
    console.log(`whole: ${((Date.now() - t0) / 1000).toFixed(1)} s from the click`);
  }
} finally {
  clearInterval(tick);
  await close();
  await srv.close();
}
