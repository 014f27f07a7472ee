import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

/** Debian's Chromium, as the browser tests use it. */
export const DEFAULT_CHROMIUM_PATH = '/usr/bin/chromium';

const viewsDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'views');
const require = createRequire(import.meta.url);
const read = (path: string) => readFileSync(path, 'utf8');
/** What the print page loads, inlined: the PDF is made from the HTML alone, with no request back to the platform (and no session to pass). */
const assets = () => ({
  styles: [read(join(viewsDir, 'static', 'site.css')), read(join(viewsDir, 'static', 'evidence.css'))],
  scripts: [read(join(dirname(require.resolve('chart.js')), 'chart.umd.js')), read(join(viewsDir, 'static', 'evidence-charts.js'))],
});

/** One PDF at a time: each launches a browser, and the machine's cores are shared. */
let queue: Promise<unknown> = Promise.resolve();

/**
 * Prints the report page's HTML (its body, rendered without the site's
 * layout) to an A4 PDF with Chromium: the same tables and charts as the page,
 * through its print style sheet. Scripts and styles are the platform's own
 * files, inlined; the page may request nothing from anywhere.
 */
export function reportPdf(body: string, options: { chromiumPath?: string; title: string; language?: string; pageWords?: [string, string] }): Promise<Buffer> {
  const run = queue.then(async () => {
    const { styles, scripts } = assets();
    const escape = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
    const [pageWord, ofWord] = options.pageWords ?? ['page', 'of'];
    const html = `<!doctype html><html lang="${escape(options.language ?? 'en')}"><head><meta charset="utf-8"><title>${escape(options.title)}</title>${styles.map((s) => `<style>${s}</style>`).join('')}</head><body><main>${body}</main></body></html>`;
    const browser = await chromium.launch({
      executablePath: options.chromiumPath ?? DEFAULT_CHROMIUM_PATH,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const context = await browser.newContext({ viewport: { width: 794, height: 1123 }, javaScriptEnabled: true });
      const page = await context.newPage();
      // Nothing leaves the machine: every request the document might make is refused.
      await page.route('**/*', (route) => route.abort());
      await page.setContent(html, { waitUntil: 'load' });
      for (const script of scripts) await page.addScriptTag({ content: script });
      await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => resolve(null))));
      await page.emulateMedia({ media: 'print' });
      return await page.pdf({ format: 'A4', printBackground: true, margin: { top: '15mm', bottom: '15mm', left: '12mm', right: '12mm' }, displayHeaderFooter: true, headerTemplate: '<span></span>', footerTemplate: `<div style="font-size:8pt;width:100%;text-align:center;color:#555">${escape(options.title)} · ${escape(pageWord)} <span class="pageNumber"></span> ${escape(ofWord)} <span class="totalPages"></span></div>` });
    } finally {
      await browser.close();
    }
  });
  queue = run.catch(() => undefined);
  return run;
}
