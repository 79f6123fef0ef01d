/** Headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core) for the browser tests. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/**
 * Launches Chromium headless, closed when the test ends. The flags keep it off the network it cannot reach here
 * (background services, component updates, QUIC) and work as root (no sandbox).
 */
export async function launchChromium(t: { after(fn: () => Promise<void>): void }): Promise<Browser> {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  t.after(() => browser.close());
  return browser;
}
