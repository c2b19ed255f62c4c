import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/**
 * The browser code, compiled by `src/web/tsconfig.json` into dist/web. Both src/http and dist/http
 * sit two folders below the project, so the same path works from the build and from tests.
 */
export const WEB_DIR = resolve(import.meta.dirname, '../../dist/web');

const NAME_RE = /^[a-z][a-z-]*\.js$/;

/** Every module of the page, read once: name -> source. Empty if the web code was not built. */
export async function loadAssets(dir = WEB_DIR): Promise<Map<string, Buffer>> {
  const assets = new Map<string, Buffer>();
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names.filter((n) => NAME_RE.test(n))) {
    assets.set(name, await readFile(join(dir, name)));
  }
  return assets;
}

/** The page: no external assets, so it works offline; the script fills it from `/events`. */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Parity live view</title>
<link rel="stylesheet" href="/style.css">
<script type="module" src="/web/app.js"></script>
</head>
<body>
<header>
  <h1>Parity <span id="status" class="status">connecting…</span></h1>
  <dl id="totals" class="totals"></dl>
</header>
<main>
  <section>
    <h2>Clients <span id="hidden" class="muted"></span></h2>
    <table id="clients">
      <thead><tr>
        <th>conn</th><th>id</th><th>value</th><th>last 60 s</th><th>increment</th><th>remote</th>
        <th>connected since</th><th>req/s</th><th>last request</th><th>state</th>
      </tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section>
    <h2>Message log
      <label>id <input id="filter" size="16" placeholder="all" autocomplete="off"></label>
      <button id="pause" type="button">pause</button>
    </h2>
    <ol id="tail" class="tail"></ol>
  </section>
</main>
</body>
</html>
`;

export const PAGE_CSS = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 1.5rem 2rem; color: #1d2430; background: #fafbfc; }
h1 { font-size: 1.4rem; margin: 1rem 0 .5rem; }
h2 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; display: flex; gap: 1rem; align-items: center; }
.status { font-size: .8rem; font-weight: normal; padding: .1rem .5rem; border-radius: 1rem; background: #e4e7eb; }
.status.live { background: #d3f5dc; color: #11602a; }
.status.down { background: #fde0e0; color: #8a1c1c; }
.totals { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; margin: 0; }
.totals div { background: #fff; border: 1px solid #e1e4e8; border-radius: 6px; padding: .35rem .7rem; }
.totals dt { font-size: .75rem; color: #5b6573; }
.totals dd { margin: 0; font-size: 1.1rem; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; background: #fff; border: 1px solid #e1e4e8; }
th, td { text-align: left; padding: .25rem .6rem; border-bottom: 1px solid #eef0f2; white-space: nowrap; }
th { font-size: .75rem; color: #5b6573; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.closed td { color: #9aa3ad; }
tr.closed canvas { opacity: .35; }
.muted { color: #5b6573; font-weight: normal; font-size: .85rem; }
.tail { font: 12px/1.45 ui-monospace, monospace; background: #fff; border: 1px solid #e1e4e8; padding: .4rem .8rem; margin: 0; list-style: none; max-height: 22rem; overflow-y: auto; }
.tail li.in .line { color: #0b5394; }
.tail li.out .line { color: #38761d; }
.tail li.event, .tail li.skipped { color: #8a6d3b; }
.tail .meta { color: #8b949e; margin-right: .6rem; }
`;
