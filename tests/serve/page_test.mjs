// tests/serve/page_test.mjs: the gateway's browser page in a real browser.
// Debian's chromium, driven through the DevTools protocol by puppeteer-core,
// loads llmux-serve's page (test_page.sh starts llmux-serve in front of
// llmux-mock and passes what this needs in the environment):
//   PAGE_CACHE    the directory puppeteer-core is installed under
//   CHROMIUM      the browser (/usr/bin/chromium)
//   GATEWAY       http://127.0.0.1:PORT of llmux-serve, whose routes are
//                 slow (llmux-mock with --chunk-delay) and down (nothing
//                 listens there)
//   SLOW_MOCK     http://127.0.0.1:PORT of the slow route's llmux-mock
//   SCREENSHOT    where the screenshot goes
// Prints "ok   - ..." / "FAIL - ..." lines; exits 1 when a check failed.
import { createRequire } from "node:module";
import path from "node:path";

const env = (k) => {
  if (!process.env[k]) {
    console.error(`page_test.mjs: ${k} is not set`);
    process.exit(2);
  }
  return process.env[k];
};
const CACHE = env("PAGE_CACHE"), CHROMIUM = env("CHROMIUM");
const GATEWAY = env("GATEWAY"), SLOW_MOCK = env("SLOW_MOCK");
const SCREENSHOT = env("SCREENSHOT");
// installed with npm --prefix CACHE: resolve it from there (ES imports
// ignore NODE_PATH)
const puppeteer = createRequire(path.join(CACHE, "package.json"))("puppeteer-core");

let passed = 0, failed = 0;
const ok = (name) => { passed++; console.log(`ok   - ${name}`); };
const bad = (name, ...lines) => {
  failed++;
  console.log(`FAIL - ${name}`);
  for (const l of lines) console.log(`       ${l}`);
};
const check = (name, cond, ...lines) => (cond ? ok(name) : bad(name, ...lines));

// generous: a loaded 2-core CI machine runs this under ASan
const WAIT_MS = 60000;
// a last resort so that a stuck browser cannot hang the test
setTimeout(() => {
  console.log("FAIL - the browser test did not finish within 240 s");
  process.exit(1);
}, 240000).unref();

async function mockInFlight() {
  const r = await fetch(`${SLOW_MOCK}/_mock/stats`);
  return (await r.json()).in_flight;
}

async function waitFor(what, fn, ms = WAIT_MS) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// What the gateway answers for the same request without streaming: the
// page must show exactly that text.
async function plainAnswer(route, prompt) {
  const r = await fetch(`${GATEWAY}/v1/chat/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model: route, messages: [{ role: "user", content: prompt }] }),
  });
  const j = await r.json();
  if (r.status !== 200) throw new Error(`plain request: ${r.status} ${JSON.stringify(j)}`);
  return j.choices[0].message.content;
}

const pageUrl = (q) => `${GATEWAY}/?${new URLSearchParams(q)}`;
const statusOf = (page) => page.$eval("#status", (e) => e.textContent);
const answerOf = (page) => page.$eval("#answer", (e) => e.textContent);

// Opens the page with query `q` and waits for #status to say how it ended.
async function openAndWait(browser, q) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1000, height: 700 });
  // before the page's own script: record every length #answer goes
  // through before the stream ends, and any CSP violation
  await page.evaluateOnNewDocument(() => {
    window.__lengths = [];
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
    new MutationObserver(() => {
      const a = document.getElementById("answer");
      const s = document.getElementById("status");
      if (a && s && s.textContent !== "done") window.__lengths.push(a.textContent.length);
    }).observe(document, { subtree: true, childList: true, characterData: true });
  });
  await page.goto(pageUrl(q), { timeout: WAIT_MS });
  try {
    await page.waitForFunction(() => {
      const s = document.getElementById("status").textContent;
      return s === "done" || s.startsWith("error") || s === "stopped";
    }, { timeout: WAIT_MS, polling: 50 });
  } catch (e) {
    // say what the page shows (a refused script never changes #status)
    const [status, csp] = await page.evaluate(() =>
      [document.getElementById("status").textContent, window.__csp]);
    throw new Error(`${new URLSearchParams(q)}: #status still '${status}' after ` +
      `${WAIT_MS} ms; CSP violations: ${JSON.stringify(csp)}`);
  }
  return page;
}

async function main() {
  // the page's own headers
  {
    const r = await fetch(`${GATEWAY}/`);
    const csp = r.headers.get("content-security-policy") || "";
    check("GET / is the page: 200, text/html", r.status === 200 &&
      r.headers.get("content-type") === "text/html; charset=utf-8" &&
      (await r.text()).includes('id="answer"'), `status ${r.status}`);
    check("GET / has a strict CSP (hashes, no unsafe-inline)",
      /default-src 'self'/.test(csp) && /script-src 'sha256-[A-Za-z0-9+/]+={0,2}'/.test(csp) &&
      /style-src 'sha256-/.test(csp) && !csp.includes("unsafe"), `CSP: ${csp}`);
    check("GET / has nosniff and no-cache",
      r.headers.get("x-content-type-options") === "nosniff" &&
      r.headers.get("cache-control") === "no-cache");
    const head = await fetch(`${GATEWAY}/`, { method: "HEAD" });
    check("HEAD / is 200 with the page's length and no body", head.status === 200 &&
      head.headers.get("content-length") === r.headers.get("content-length") &&
      (await head.text()) === "", `status ${head.status}`);
    const post = await fetch(`${GATEWAY}/`, { method: "POST", body: "{}" });
    const pj = await post.json().catch(() => null);
    check("POST / is OpenAI's JSON 405", post.status === 405 && pj && pj.error &&
      pj.error.code === "method_not_allowed", `status ${post.status}`);
  }

  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // --no-sandbox: CI runs the test as root, and Chromium's sandbox
    // refuses to start as root; --headless=new: the real browser, not the
    // old headless shell
    args: ["--no-sandbox", "--headless=new", "--disable-dev-shm-usage", "--disable-gpu"],
    timeout: 90000,
    protocolTimeout: 120000,
  });
  try {
    // 1. a streamed answer, with markup in it that must stay text
    const prompt = 'stream <b>me</b> & "you" <img src=x onerror=window.__xss=1> to the end';
    const want = await plainAnswer("slow", prompt);
    let page = await openAndWait(browser, { route: "slow", prompt });
    const status = await statusOf(page), answer = await answerOf(page);
    check("?route=&prompt= streams on load: #status done", status === "done", `status: ${status}`);
    check("#answer is what the gateway answers unstreamed", answer === want,
      `got:  ${JSON.stringify(answer)}`, `want: ${JSON.stringify(want)}`);
    const lengths = await page.evaluate(() => window.__lengths);
    const partial = new Set(lengths.filter((n) => n > 0 && n < want.length));
    check("#answer grew token by token (2+ partial lengths before done)", partial.size >= 2,
      `lengths seen: ${JSON.stringify(lengths)}`);
    const inert = await page.evaluate(() =>
      document.getElementById("answer").children.length === 0 && window.__xss === undefined);
    check("the answer is text, never markup", inert);
    const stats = await page.evaluate(() => ["ttft", "tps", "model"].map((id) =>
      document.getElementById(id).textContent));
    check("time to first token, tokens/s and model are shown",
      /^\d+ ms$/.test(stats[0]) && /^\d+(\.\d+)?$/.test(stats[1]) && stats[2] !== "-" && stats[2] !== "",
      `ttft/tps/model: ${JSON.stringify(stats)}`);
    const csp = await page.evaluate(() => window.__csp);
    check("no CSP violation (the build's hashes match the page)", csp.length === 0,
      `violations: ${JSON.stringify(csp)}`);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(`# screenshot: ${SCREENSHOT}`);
    await page.close();

    // 2. failures: an upstream that is down, an unknown route
    page = await openAndWait(browser, { route: "down", prompt: "x" });
    let s = await statusOf(page);
    check("a failing route: #status error: <message>", /^error: \S/.test(s), `status: ${s}`);
    await page.close();
    page = await openAndWait(browser, { route: "nosuch", prompt: "x" });
    s = await statusOf(page);
    check("an unknown route: #status error: naming it", s.startsWith("error: ") && s.includes("nosuch"),
      `status: ${s}`);
    await page.close();

    // 3. ?key= is refused, the key field goes to sessionStorage
    page = await openAndWait(browser, { route: "slow", prompt: "x", key: "sk-in-url" });
    s = await statusOf(page);
    check("?key= is not accepted", s.startsWith("error: ") && s.includes("?key=") &&
      (await answerOf(page)) === "", `status: ${s}`);
    await page.type("#key", "sk-typed");
    const stored = await page.evaluate(() => sessionStorage.getItem("llmux.key"));
    check("the key field is kept in sessionStorage", stored === "sk-typed", `stored: ${stored}`);
    await page.close();

    // 4. Stop on a slow stream: the gateway cancels upstream
    const long = Array.from({ length: 60 }, (_, i) => `word${i}`).join(" ");
    page = await browser.newPage();
    await page.goto(pageUrl({ route: "slow", prompt: long }), { timeout: WAIT_MS });
    await page.waitForFunction(() => document.getElementById("answer").textContent.length > 0,
      { timeout: WAIT_MS, polling: 50 });
    const during = await mockInFlight();
    await page.click("#stop");
    await page.waitForFunction(() => document.getElementById("status").textContent !== "streaming",
      { timeout: WAIT_MS, polling: 50 });
    s = await statusOf(page);
    let after = -1;
    try {
      await waitFor("in_flight 0", async () => (after = await mockInFlight()) === 0);
    } catch (e) { /* reported below */ }
    check("Stop: #status stopped, the mock's in_flight back to 0",
      during === 1 && s === "stopped" && after === 0,
      `in_flight while streaming ${during}, after Stop ${after}; status: ${s}`);
    const cut = await answerOf(page);
    check("Stop: the answer stopped part way", cut.length > 0 && !cut.endsWith("word59"),
      `answer: ${JSON.stringify(cut.slice(-60))}`);
    await page.close();
  } finally {
    await browser.close();
  }
}

try {
  await main();
} catch (e) {
  bad("the browser test ran to its end", String(e && e.stack ? e.stack : e));
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
