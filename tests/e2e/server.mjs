// A tiny static server on 127.0.0.1 for the e2e test: serves www/, optionally with weights/ taken
// from another folder, and remembers every request it got.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.css': 'text/css', '.wasm': 'application/wasm', '.json': 'application/json',
  '.png': 'image/png', '.svg': 'image/svg+xml',
};

export async function serve(root, { weightsDir = null, pkgDir = null } = {}) {
  root = path.resolve(root);
  const hits = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    hits.push(url.pathname);
    let rel = decodeURIComponent(url.pathname);
    if (rel.endsWith('/')) rel += 'index.html';
    let base = root;
    if (weightsDir && rel.startsWith('/weights/')) { base = path.resolve(weightsDir); rel = rel.slice('/weights'.length); }
    if (pkgDir && rel.startsWith('/pkg/')) { base = path.resolve(pkgDir); rel = rel.slice('/pkg'.length); }
    const p = path.join(base, rel);
    if (!p.startsWith(base) || !fs.existsSync(p) || fs.statSync(p).isDirectory()) {
      res.writeHead(404); res.end(); return;
    }
    res.writeHead(200, {
      'Content-Type': TYPES[path.extname(p)] || 'application/octet-stream',
      'Content-Length': fs.statSync(p).size,
      'Cache-Control': 'no-cache',
    });
    fs.createReadStream(p).pipe(res);
  });
  await new Promise(r => server.listen(0, '127.0.0.1', r));
  return { port: server.address().port, hits, close: () => new Promise(r => server.close(r)) };
}
