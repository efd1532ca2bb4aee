import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
/** CI installs Debian's chromium (scripts/setup.sh), so there a missing browser is a failure. */
export const haveChromium = existsSync(CHROMIUM) || !!process.env.CI;

/** What a rendered report showed. */
export interface Rendered {
  /** Charts vega-embed reported as drawn. */
  chartsRendered: number;
  /** Marks (rects, lines, symbols) drawn in each chart, by chart id. */
  marks: Record<string, number>;
  /** Console errors and page errors. */
  errors: string[];
  /** Requests to anything but the file itself (a self-contained report makes none). */
  requests: string[];
}

/** Opens an HTML report in headless Chromium, waits for its charts and saves a screenshot. */
export async function renderInChromium(
  file: string,
  chartIds: string[],
  screenshot: string,
): Promise<Rendered> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
  });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    const requests: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith('file:')) requests.push(r.url());
    });
    await page.goto(`file://${file}`);
    await page.waitForFunction(() => document.body.dataset.chartsRendered !== undefined, null, {
      timeout: 30_000,
    });
    const chartsRendered = Number(await page.evaluate(() => document.body.dataset.chartsRendered));
    const marks: Record<string, number> = {};
    for (const id of chartIds) {
      marks[id] = await page
        .locator(`#chart-${id} svg .mark-rect, #chart-${id} svg .mark-line, #chart-${id} svg .mark-symbol`)
        .count();
    }
    await page.screenshot({ path: screenshot, fullPage: true });
    return { chartsRendered, marks, errors, requests };
  } finally {
    await browser.close();
  }
}
