// Opens a page in Debian's headless Chromium (playwright-core, no downloaded browser), waits
// until the element #status holds `expected` (or `timeout_ms` passes), saves a screenshot, and
// prints one JSON line: {"state", "text", "found", "events"}. Used by crates/tokendeploy/tests/browser.rs.
//
//   node drive.mjs URL EXPECTED SCREENSHOT_PATH TIMEOUT_MS
import { chromium } from "playwright-core";

const [url, expected, screenshot, timeoutMs] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  // As root in a sandbox, and with no network but loopback: nothing in the background.
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 700 } });
  // What the page's console and network said, for a failing test to show.
  const events = [];
  page.on("console", (message) => events.push(`console: ${message.text()}`));
  page.on("requestfailed", (request) => events.push(`failed: ${request.url()} ${request.failure()?.errorText}`));
  page.on("response", (response) => events.push(`${response.status()} ${response.url()}`));
  await page.goto(url);
  let found = true;
  try {
    await page.waitForFunction(
      (text) => document.getElementById("status").textContent.includes(text),
      expected,
      { timeout: Number(timeoutMs), polling: 100 },
    );
  } catch {
    found = false;
  }
  const status = page.locator("#status");
  const result = {
    state: await status.getAttribute("data-state"),
    text: await status.textContent(),
    found,
    events,
  };
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
