// The dashboard in a real browser: Debian's chromium, headless, driven by
// puppeteer-core. The page subscribes to a pattern, sees a message the CLI
// publishes and its counters move; a screenshot goes to $WEB_SCREENSHOT_DIR.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer from "puppeteer-core";
import { Manifoldd, manifoldCli, waitFor } from "./lib/servers.mjs";

const chromium = process.env.CHROMIUM || "/usr/bin/chromium";
let server;
let browser;

before(async () => {
  server = await Manifoldd.start();
  browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    userDataDir: mkdtempSync(join(tmpdir(), "manifold-chromium-")),
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--disable-dev-shm-usage"],
  });
});
after(async () => {
  await browser?.close();
  await server.stop();
});

test("the dashboard shows live counters, watches a pattern and sees a published message", { skip: !existsSync(chromium) && `no browser at ${chromium}` }, async () => {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 1000 });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(server.url("/"), { waitUntil: "domcontentloaded" });
  await page.waitForFunction(() => document.getElementById("status").textContent === "live", { timeout: 10_000 });
  await page.waitForFunction(() => /\d/.test(document.getElementById("c-connections").textContent), { timeout: 10_000 });

  await page.$eval("#sub-pattern", (e) => { e.value = "dash/**"; });
  await page.click("#sub-button");
  await page.waitForFunction(() => document.getElementById("sub-pattern").dataset.subscribed === "yes", { timeout: 10_000 });

  const publishedBefore = await page.$eval("#c-publishes", (e) => e.textContent);
  await manifoldCli(server, ["pub", "dash/news", "hello from the CLI"]);
  await page.waitForFunction(() => document.getElementById("messages").textContent.includes("hello from the CLI"), { timeout: 10_000 });
  // $sys/stats comes every second while the page listens.
  await page.waitForFunction((before) => document.getElementById("c-publishes").textContent !== before,
    { timeout: 10_000 }, publishedBefore);
  await page.waitForFunction(() => document.getElementById("connections").textContent.includes("dashboard"), { timeout: 10_000 });

  await page.$eval("#pub-topic", (e) => { e.value = "dash/from-page"; });
  await page.$eval("#pub-payload", (e) => { e.value = "published by the page"; });
  await page.click("#pub-button");
  await page.waitForFunction(() => document.getElementById("messages").textContent.includes("published by the page"), { timeout: 10_000 });
  await page.waitForFunction(() => /delivered to 1/.test(document.getElementById("pub-result").textContent), { timeout: 10_000 });

  const dir = process.env.WEB_SCREENSHOT_DIR || tmpdir();
  mkdirSync(dir, { recursive: true });
  await waitFor(() => true, "a frame");
  await page.screenshot({ path: join(dir, "dashboard.png"), fullPage: true });
  assert.deepEqual(errors, []);
});
