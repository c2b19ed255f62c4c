import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { LineClient, ROOT, spawnServer, tempDir, type TestLike } from './fixtures/server.js';
import { fetchText } from './http-events.js';

// Real processes on a shared 2-core machine: more than tap's 30 s default when it is loaded.
t.setTimeout(90_000);

// The little of the DOM that the functions run in the page by waitForFunction use (this project's
// tsconfig has no DOM lib).
declare const document: {
  querySelector(selector: string): { textContent: string | null } | null;
  querySelectorAll(selector: string): { length: number };
};

const CHROMIUM = '/usr/bin/chromium';
// CI (CI=true) installs Debian's chromium and always runs this; elsewhere it is skipped if absent.
const noChromium =
  !existsSync(CHROMIUM) && process.env.CI !== 'true'
    ? `${CHROMIUM} is not installed (apt-get install chromium)`
    : false;

/** A real bin/client, fast (a VALUE every 100 ms, EVEN/ODD every 300-600 ms); killed in teardown. */
function startClient(t: TestLike, id: string, port: number) {
  const args = ['--id', id, '--port', String(port), '--tick-ms', '100'];
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin/client'), ...args, '--switch-min-ms', '300', '--switch-max-ms', '600'],
    { stdio: 'ignore' },
  );
  const exited = once(child, 'exit');
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    return exited;
  });
  return { child, exited };
}

async function openPage(t: TestLike, url: string): Promise<Page> {
  const context = await chromium.launchPersistentContext(tempDir(t), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  t.teardown(() => context.close());
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(url);
  return page;
}

const cell = (page: Page, id: string, column: string) =>
  page.locator(`#clients tr[data-id="${id}"] td.${column}`);

t.test('the live view in a real browser', { skip: noChromium }, async (t) => {
  const server = await spawnServer(t, { args: ['--http-port', '0'] });
  const url = String((await server.waitForOutput('live view')).liveView);
  startClient(t, 'alice', server.port);
  const bob = startClient(t, 'bob', server.port);
  const page = await openPage(t, url);

  await cell(page, 'alice', 'value').waitFor();
  await cell(page, 'bob', 'value').waitFor();
  t.equal(await page.locator('#status').textContent(), 'live');

  const value = await cell(page, 'alice', 'value').textContent();
  await page.waitForFunction(
    ([before]) => document.querySelector('tr[data-id="alice"] td.value')?.textContent !== before,
    [value],
  );
  t.pass(`alice's value advanced from ${value}`);

  await page.waitForFunction(() =>
    /^\+\d+$/.test(document.querySelector('tr[data-id="alice"] td.increment')?.textContent ?? ''),
  );
  const increment = await cell(page, 'alice', 'increment').textContent();
  await page.waitForFunction(
    ([before]) =>
      /^\+\d+$/.test(
        document.querySelector('tr[data-id="alice"] td.increment')?.textContent ?? '',
      ) && document.querySelector('tr[data-id="alice"] td.increment')?.textContent !== before,
    [increment],
  );
  t.pass(`alice's increment changed from ${increment}`);

  bob.child.kill('SIGINT'); // the client says QUIT
  await page.locator('#clients tr.closed[data-id="bob"]').waitFor();
  t.match(await cell(page, 'bob', 'state').textContent(), /^closed: QUIT/);
  t.equal(await page.locator('#clients tr.closed[data-id="alice"]').count(), 0, 'alice is live');

  // Peer input in the tail is text: a request line holding markup shows as those characters.
  await page.fill('#filter', 'mallory');
  await page.waitForFunction(() => document.querySelectorAll('#clients tr[data-id]').length === 0);
  const mallory = await LineClient.connect(t, server.port);
  await mallory.request('HELLO mallory');
  await cell(page, 'mallory', 'value').waitFor();
  t.match(await mallory.request('<b>x</b>'), [/^ERR UNKNOWN_COMMAND /]);
  const line = page.locator('#tail li.in .line', { hasText: '<b>x</b>' });
  await line.waitFor();
  t.equal(await line.textContent(), '→ <b>x</b>');
  t.equal(await page.locator('#tail b').count(), 0, 'no element was made of it');
  t.equal(await page.locator('#clients tr[data-id="alice"]').count(), 0, 'rows follow the filter');

  // The same run, as /metrics counts it.
  const metrics = (await fetchText(url.replace(/\/$/, '/metrics'))).body;
  t.match(metrics, /^parity_requests_total\{verb="INVALID"\} [1-9]/m);
  t.match(metrics, /^parity_replies_total\{kind="BYE",code=""\} 1$/m, "bob's QUIT");
  t.match(metrics, /^parity_connections 2$/m, 'alice and mallory');
  t.match(metrics, /^parity_ids [23]$/m);
  t.equal(await server.stop(), 0);
});
