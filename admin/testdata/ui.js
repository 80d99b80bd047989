// Drives the official Admin UI page in headless Chromium against a rally
// server, for admin's browser test. Prints JSON lines (nodetest's
// convention): "ready" once logged in, "sockets" with the socket ids the
// sockets page lists, "rooms" with the rooms page's names, "clicked" once
// the disconnect button of DISCONNECT_ID was clicked, "done" at the end.
//
// Environment: UI_URL (the page), SERVER_URL, SOCKETIO_PATH, NAMESPACE,
// USERNAME, PASSWORD, SERVER_ID (shown on the dashboard), EXPECT_SOCKETS and EXPECT_ROOMS (comma separated:
// what to wait for), DISCONNECT_ID, SCREENSHOT_DIR.
const { chromium } = require('playwright-core');
const path = require('path');

const env = process.env;
const out = (event, fields) => console.log(JSON.stringify({ event, ...fields }));
const list = (s) => (s ? s.split(',') : []);

// settled waits until no page transition runs, so that screenshots show
// the page, not its fade.
const settled = (page) => page.waitForFunction(() =>
  !document.querySelector('[class*="-transition-enter"], [class*="-transition-leave"]'));

(async () => {
  const browser = await chromium.launch({
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('pageerror', (err) => out('pageerror', { error: String(err) }));
    // The page loads fonts and icons from CDNs; tests run offline.
    await page.route(/^https?:\/\/(fonts\.googleapis\.com|fonts\.gstatic\.com|cdn\.jsdelivr\.net)\//, (r) => r.abort());
    await page.goto(env.UI_URL);

    // The connection form: server URL, credentials, and under the
    // advanced options the namespace and path.
    await page.getByLabel('Server URL').fill(env.SERVER_URL);
    await page.getByLabel('Username').fill(env.USERNAME || '');
    await page.getByLabel('Password').fill(env.PASSWORD || '');
    await page.getByText('Advanced options').click();
    await page.getByLabel('Admin namespace').fill(env.NAMESPACE || '/admin');
    await page.getByLabel('Path').fill(env.SOCKETIO_PATH || '/socket.io');
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.getByLabel('Server URL').waitFor({ state: 'hidden' });
    out('ready', {});

    // The servers page lists this server (server_stats came).
    await page.goto(env.UI_URL + '#/servers/');
    await page.getByText(env.SERVER_ID).first().waitFor();
    out('server', { id: env.SERVER_ID });
    await settled(page);
    await page.screenshot({ path: path.join(env.SCREENSHOT_DIR, 'servers.png'), fullPage: true });

    // The dashboard, once it lists the namespaces.
    await page.goto(env.UI_URL + '#/');
    await page.getByText(env.NAMESPACE || '/admin').first().waitFor();
    await settled(page);
    await page.screenshot({ path: path.join(env.SCREENSHOT_DIR, 'dashboard.png'), fullPage: true });

    // The sockets page lists the sockets of "/".
    await page.goto(env.UI_URL + '#/sockets/');
    for (const id of list(env.EXPECT_SOCKETS)) {
      await page.locator('tbody tr', { hasText: id }).first().waitFor();
    }
    const ids = await page.locator('tbody tr td:first-child').allInnerTexts();
    out('sockets', { ids });
    await settled(page);
    await page.screenshot({ path: path.join(env.SCREENSHOT_DIR, 'sockets.png'), fullPage: true });

    // The rooms page lists the rooms.
    await page.goto(env.UI_URL + '#/rooms/');
    for (const room of list(env.EXPECT_ROOMS)) {
      await page.locator('tbody tr', { hasText: room }).first().waitFor();
    }
    const rooms = await page.locator('tbody tr td:first-child').allInnerTexts();
    out('rooms', { rooms });
    await settled(page);
    await page.screenshot({ path: path.join(env.SCREENSHOT_DIR, 'rooms.png'), fullPage: true });

    // Disconnect one socket with its button, and see it leave the list.
    if (env.DISCONNECT_ID) {
      await page.goto(env.UI_URL + '#/sockets/');
      const row = page.locator('tbody tr', { hasText: env.DISCONNECT_ID }).filter({ has: page.getByRole('button') });
      await row.getByRole('button').click();
      out('clicked', { id: env.DISCONNECT_ID });
      // The row goes once the UI is told of the disconnection (the click
      // also opened the socket's page: back to the list).
      await page.goto(env.UI_URL + '#/sockets/');
      await page.waitForFunction((id) => ![...document.querySelectorAll('tbody tr td:first-child')]
        .some((td) => td.innerText.trim() === id), env.DISCONNECT_ID);
      await settled(page);
    await page.screenshot({ path: path.join(env.SCREENSHOT_DIR, 'after-disconnect.png'), fullPage: true });
      out('gone', { id: env.DISCONNECT_ID });
    }
    out('done', {});
  } finally {
    await browser.close();
  }
})().catch((err) => {
  out('fatal', { error: String(err && err.stack || err) });
  process.exit(1);
});
