// The sign-in page in a real browser: Debian's Chromium, driven by playwright-core, through
// Gatehouse to the school's OpenID provider (tests/idp.mjs) and back. Started by
// tests/signin.rs, which checks the events and the DSL's email afterwards.
//
// Environment: PROXY (host:port), START_URL (a search as the pupil types it), HARM_URL (a
// search the pupil's role blocks and alerts on), PORTAL (https://signin.school.test), LOGIN,
// SHOTS. Exits non-zero, with the reason, at the first thing that is not as it should be.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const { PROXY, START_URL, HARM_URL, PORTAL, LOGIN, SHOTS } = process.env;
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
  args: [
    `--proxy-server=http://${PROXY}`,
    // Loopback too goes through the filter (the provider is on 127.0.0.1 here).
    '--proxy-bypass-list=<-loopback>',
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
let page;
try {
  // The filtering CA is not in this throw-away profile; tests/signin.rs checks the page's
  // certificate and answers with curl.
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  page = await context.newPage();
  page.setDefaultTimeout(20000);

  // Not signed in: the search goes to the sign-in page, which goes to the provider.
  await page.goto(START_URL);
  await page.waitForSelector('input[name=login]');
  check(page.url().startsWith('http://127.0.0.1:'), `at the provider: ${page.url()}`);
  await page.screenshot({ path: `${SHOTS}/signin-01-provider.png` });
  await page.fill('input[name=login]', LOGIN);
  await page.fill('input[name=password]', 'any password');
  await page.click('button[type=submit]');
  // The provider's consent page, then back through the filter's callback to the search.
  await page.waitForSelector('button.login-submit');
  await page.click('button.login-submit');
  await page.waitForURL(START_URL);
  check((await page.textContent('body')).includes('results'), 'the search results after signing in');

  // The page says who is signed in on this device.
  await page.goto(`${PORTAL}/`);
  const who = await page.textContent('#who');
  check(who.includes('Amy Pupil, Year 9, 9B'), `the sign-in page names the person: ${who}`);
  await page.screenshot({ path: `${SHOTS}/signin-02-signed-in.png` });

  // A search the pupil's role blocks: the block page, and (checked by the test) an alert
  // that names her.
  const harm = await page.goto(HARM_URL);
  check(harm.status() === 403, `the harmful search is blocked: ${harm.status()}`);

  // Signing out (tests/signin.rs then checks the device is sent to sign in again).
  await page.goto(`${PORTAL}/`);
  await page.click('form[action="/signout"] button');
  await page.waitForSelector('#signed-out');
  console.log('signin.mjs: all checks passed');
} catch (e) {
  if (page) {
    console.log(`at ${page.url()}:\n${await page.textContent('body').catch(() => '')}`);
    await page.screenshot({ path: `${SHOTS}/signin-failed.png` }).catch(() => {});
  }
  throw e;
} finally {
  await browser.close();
}
