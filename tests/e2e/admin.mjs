// The admin page in a real browser: Debian's Chromium, driven by playwright-core.
// Started by tests/admin.rs, which runs Gatehouse and checks the proxy side before and after.
//
// Environment: ADMIN_URL (https://127.0.0.1:PORT), PASSWORD (of the accounts ivy/IT, dee/DSL,
// vic/viewer), GAMES_URL (a games site as the pupil would visit it), SHOTS (a folder for the
// screenshots). Exits non-zero, with the reason, at the first thing that is not as it should be.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const { ADMIN_URL, PASSWORD, GAMES_URL, SHOTS } = process.env;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
mkdirSync(SHOTS, { recursive: true });

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

async function shot(page, name) {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

async function signIn(browser, name) {
  // The admin page's certificate comes from the filtering CA, which this throw-away browser
  // profile does not hold; tests/admin.rs verifies the certificate with curl instead.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  await page.goto(`${ADMIN_URL}/login`);
  await page.fill('#name', name);
  await page.fill('#password', PASSWORD);
  await Promise.all([page.waitForURL(`${ADMIN_URL}/`), page.click('button[type=submit]')]);
  check((await page.textContent('nav .who')).includes(name), `${name} is signed in`);
  return { context, page };
}

async function asIt(browser) {
  const { context, page } = await signIn(browser, 'ivy');
  await shot(page, '01-overview');
  // Before: the games site is allowed for pupils.
  await page.goto(`${ADMIN_URL}/explain?url=${encodeURIComponent(GAMES_URL)}&role=pupil`);
  check((await page.textContent('#verdict')) === 'allow', 'games allowed for pupils before the change');
  await shot(page, '02-explain-before');
  // The change: games blocked for pupils, in the grid.
  await page.goto(`${ADMIN_URL}/policy`);
  const before = await page.textContent('#generation');
  await page.selectOption('select[name="cell:pupil:games"]', 'block');
  await Promise.all([page.waitForNavigation(), page.click('#save-grid')]);
  check(await page.isVisible('#grid'), `the policy page after saving: ${await page.textContent('main')}`);
  check((await page.inputValue('select[name="cell:pupil:games"]')) === 'block', 'the grid shows games blocked for pupils');
  check(Number(await page.textContent('#generation')) === Number(before) + 1, 'a new policy generation is in force');
  await shot(page, '03-policy-after');
  await page.goto(`${ADMIN_URL}/explain?url=${encodeURIComponent(GAMES_URL)}&role=pupil`);
  check((await page.textContent('#verdict')) === 'block', 'games blocked for pupils after the change');
  await shot(page, '04-explain-after');
  // The change is in the audit trail, with who, before and after.
  await page.goto(`${ADMIN_URL}/audit`);
  const row = page.locator('#audit tr', { hasText: 'roles.pupil.categories.games' });
  check((await row.count()) === 1, 'one audit entry for the grid cell');
  const cells = await row.locator('td').allTextContents();
  check(cells[1] === 'ivy' && cells[4] === 'allow' && cells[5] === 'block', `audit entry: ${cells.join(' | ')}`);
  await shot(page, '05-audit');
  for (const [path, name] of [['/logs', '06-logs'], ['/reviews', '07-reviews'], ['/guests', '08-guests'], ['/?range=hour', '09-overview-hour']]) {
    await page.goto(`${ADMIN_URL}${path}`);
    await shot(page, name);
  }
  // Guest vouchers: made, printable.
  await page.goto(`${ADMIN_URL}/guests`);
  await page.fill('input[name=count]', '2');
  await Promise.all([page.waitForNavigation(), page.click('form[action="/guests"] button')]);
  check((await page.locator('.voucher').count()) === 2, 'two printable vouchers');
  await shot(page, '10-vouchers');
  await context.close();
}

async function asDsl(browser) {
  const { context, page } = await signIn(browser, 'dee');
  await page.goto(`${ADMIN_URL}/alerts`);
  await shot(page, '11-alerts');
  const link = page.locator('table a[href^="/alerts/"]').first();
  check((await link.count()) === 1, 'the pupil\'s alert is in the inbox');
  await Promise.all([page.waitForURL(/\/alerts\/\d+$/), link.click()]);
  check((await page.textContent('#evidence-search')).includes('self harm'), 'the alert shows the search as evidence');
  await shot(page, '12-alert');
  await page.fill('#note', 'Spoke to the pupil with their head of year; support in place.');
  await page.selectOption('#outcome', 'concern');
  await Promise.all([page.waitForNavigation(), page.click('button[value=resolve]')]);
  check((await page.textContent('#alert-state')) === 'Resolved: concern', 'the alert is resolved as a concern');
  check((await page.textContent('#history')).includes('support in place'), 'the note is in the alert\'s history');
  await shot(page, '13-alert-resolved');
  await page.goto(`${ADMIN_URL}/alerts`);
  check((await page.textContent('main')).includes('No alerts here'), 'nothing left to do in the inbox');
  await context.close();
}

async function asViewer(browser) {
  const { context, page } = await signIn(browser, 'vic');
  await page.goto(`${ADMIN_URL}/policy`);
  check(await page.isDisabled('select[name="cell:pupil:games"]'), 'the viewer\'s grid is read-only');
  check((await page.locator('main button').count()) === 0, 'no button to change anything');
  await shot(page, '14-viewer-policy');
  // Even a hand-made request with the viewer's own session and token is refused.
  const csrf = await page.inputValue('nav input[name=csrf]');
  // (The page's own policy forbids scripts from sending requests, so it is sent beside it,
  // with the page's cookies.)
  const res = await context.request.post(`${ADMIN_URL}/policy/grid`, {
    form: { csrf, 'cell:pupil:games': 'allow' },
    headers: { Origin: ADMIN_URL },
    maxRedirects: 0,
  });
  const status = res.status();
  check(status === 403, `a viewer's change is refused (got ${status})`);
  const alerts = await page.goto(`${ADMIN_URL}/alerts`);
  check(alerts.status() === 403, 'a viewer cannot open the alerts');
  await shot(page, '15-viewer-refused');
  await context.close();
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  await asIt(browser);
  await asDsl(browser);
  await asViewer(browser);
  console.log('admin page flows: ok');
} finally {
  await browser.close();
}
