// The admin page's sign-in with a school account, in Debian's Chromium driven by
// playwright-core: the admin page sends the browser to the school's OpenID provider
// (tests/e2e/idp.mjs) and back. Started by tests/signin.rs.
//
// Environment: ADMIN_URL (https://127.0.0.1:PORT), SHOTS. Exits non-zero, with the reason, at
// the first thing that is not as it should be.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const { ADMIN_URL, SHOTS } = process.env;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
mkdirSync(SHOTS, { recursive: true });

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

// Signs in at the provider as `login` from the admin page's sign-in; returns the page.
async function signIn(login) {
  // The admin page's certificate is the filtering CA's, which this profile does not hold.
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  await page.goto(`${ADMIN_URL}/login`);
  await page.click('#sso');
  await page.waitForSelector('input[name=login]');
  await page.fill('input[name=login]', login);
  await page.fill('input[name=password]', 'any password');
  await page.click('button[type=submit]');
  await page.waitForSelector('button.login-submit');
  await page.click('button.login-submit');
  return page;
}

let page;
try {
  // Tess is in the staff group, which [admin] sso_roles makes the DSL.
  page = await signIn('tess.teacher');
  await page.waitForURL(`${ADMIN_URL}/`);
  const who = await page.textContent('nav .who');
  check(who.includes('tess.teacher') && who.includes('DSL'), `signed in as the DSL: ${who}`);
  await page.screenshot({ path: `${SHOTS}/admin-sso-01-signed-in.png` });

  // Amy is a pupil: the provider knows her, the admin page does not let her in.
  page = await signIn('amy.pupil');
  await page.waitForSelector('.error');
  const said = await page.textContent('.error');
  check(said.includes('none of the groups'), `a pupil is refused: ${said}`);
  check(!(await page.isVisible('nav .who')), 'no session for a pupil');
  console.log('admin-sso.mjs: all checks passed');
} catch (e) {
  if (page) {
    console.log(`at ${page.url()}:\n${await page.textContent('body').catch(() => '')}`);
  }
  throw e;
} finally {
  await browser.close();
}
