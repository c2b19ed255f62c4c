#!/usr/bin/env node
/**
 * Builds dist/ from src/ with TypeScript, when it can.
 *
 *   node scripts/prepare.mjs          `prepare`: build if TypeScript and src/ are both here
 *   node scripts/prepare.mjs --pack   `prepack`: clean build without source maps; fails if it can't
 *
 * `prepare` runs on every `npm install` / `npm ci` in a clone, including `npm ci --omit=dev`,
 * where tsc is not installed: a plain `tsc` there failed the whole install. So it builds when it
 * can (a newcomer's `npm install && npm start` still gets dist/) and only says so when it can't.
 * In an installed package (from the tarball) src/ is absent and dist/ already shipped.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath, URL } from 'node:url';

// Not import.meta.dirname: it needs Node 20.11, and package.json promises any Node 20.
const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const pack = process.argv.includes('--pack');

/** The tsc entry point from this package's own node_modules, or null if TypeScript is absent. */
function findTsc() {
  try {
    return createRequire(join(ROOT, 'package.json')).resolve('typescript/bin/tsc');
  } catch {
    return null;
  }
}

function main() {
  // `npm pack` and `npm publish` run prepack (a clean build) and then prepare: build only once.
  if (!pack && ['pack', 'publish'].includes(process.env.npm_command ?? '')) return 0;
  const tsc = findTsc();
  const hasSource = existsSync(join(ROOT, 'src')) && existsSync(join(ROOT, 'tsconfig.build.json'));
  if (tsc === null || !hasSource) {
    const why = hasSource ? 'TypeScript is not installed' : 'there is no src/ to build';
    if (pack) {
      process.stderr.write(`prepack: cannot build dist/: ${why}; run \`npm install\` first\n`);
      return 1;
    }
    if (hasSource && !existsSync(join(ROOT, 'dist/cli/server.js')))
      process.stderr.write(
        `prepare: not building dist/: ${why} (dev dependencies omitted?); ` +
          'run `npm install` and `npm run build` before `npm start`\n',
      );
    return 0;
  }
  const args = [tsc, '-p', 'tsconfig.build.json'];
  if (pack) {
    // A clean dist/: tsc never deletes the output of a source file that was renamed or removed,
    // and the tarball ships all of dist/. No source maps: they point at src/*.ts, which the
    // package does not ship, and tsc's es2022 output is close enough to the source to read.
    rmSync(join(ROOT, 'dist'), { recursive: true, force: true });
    args.push('--sourceMap', 'false');
  }
  const server = spawnSync(process.execPath, args, { cwd: ROOT, stdio: 'inherit' }).status ?? 1;
  if (server !== 0) return server;
  // The live view's browser code: its own tsconfig (DOM lib), compiled into dist/web.
  const web = [tsc, '-p', 'src/web/tsconfig.json', ...args.slice(3)];
  return spawnSync(process.execPath, web, { cwd: ROOT, stdio: 'inherit' }).status ?? 1;
}

process.exit(main());
