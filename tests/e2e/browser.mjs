// Headless Chromium for the e2e test and the browser benchmark: Debian's /usr/bin/chromium
// (or $CHROMIUM) through playwright-core, with WebGPU on (SwiftShader where there is no GPU)
// and Chromium's own background traffic off, so every request recorded is the page's.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const { chromium } = createRequire(path.join(here, 'noop.js'))('playwright-core');

// -> { ctx, page, phase, close }; phase(p) waits until the page's data-phase is one of p.
export async function launch({ timeout = 180000, viewport = { width: 1440, height: 900 } } = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'mrisr-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    acceptDownloads: true,
    viewport,
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--enable-unsafe-swiftshader',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           '--no-first-run', '--disable-quic', '--disable-domain-reliability'],
  });
  const page = ctx.pages()[0] || await ctx.newPage();
  page.setDefaultTimeout(timeout);
  const phase = p => page.waitForFunction(ps => ps.includes(document.body.dataset.phase), [].concat(p));
  const close = async () => {
    await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return { ctx, page, phase, close, peakMemory: () => rendererPeakMemory(profile) };
}

// Peak resident memory (bytes, Linux's VmHWM) of the largest renderer process of the Chromium
// started with `profile` (its processes carry --user-data-dir): the tab and its Web Workers
// live in one renderer, so this is what the page cost the machine at its peak. null where
// /proc cannot tell (not Linux).
export function rendererPeakMemory(profile) {
  let peak = null;
  let pids;
  try { pids = fs.readdirSync('/proc').filter(d => /^\d+$/.test(d)); } catch { return null; }
  for (const pid of pids) {
    try {
      // Chromium rewrites its command line as one string (arguments joined by spaces).
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split(/[\0 ]/);
      if (!cmd.includes('--type=renderer') || !cmd.includes(`--user-data-dir=${profile}`)) continue;
      const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmHWM:\s+(\d+) kB/);
      if (m) peak = Math.max(peak ?? 0, +m[1] * 1024);
    } catch { /* the process ended meanwhile */ }
  }
  return peak;
}

// Opens the page served on `port`, picks the DICOM folder `dicomDir`, loads its first series
// and waits until a model is loaded (the benchmarks' common start).
export async function openSeries(page, phase, port, dicomDir) {
  await page.goto(`http://127.0.0.1:${port}/index.html`);
  await phase(['ready']);
  await page.setInputFiles('#pick-folder', dicomDir);
  await phase(['scanned']);
  await page.click('#series-list li');
  await phase(['loaded']);
  await page.waitForFunction(() => !document.querySelector('#run').disabled);
}
