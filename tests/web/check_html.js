#!/usr/bin/env node
// SPDX-License-Identifier: MIT
/*
 * check_html.js - giltrace's views in a real browser: Debian's headless
 * Chromium driven by playwright-core (web/package.json devDependencies;
 * playwright's own browser downloads are not used).
 *
 *   node tests/web/check_html.js [--html REPORT.html --json REPORT.json]
 *        [--perfetto TRACE.json] [--folded STACKS.folded]
 *        [--screenshot OUT.png] [--chromium PATH]
 *
 * --html: loads the self-contained report from file:// with every network
 *   request refused, and fails on any console error, page error or request
 *   that leaves the file; checks that every thread of --json (giltrace's
 *   --json of the same trace) is labelled with its TID and name in the
 *   threads table and as a timeline lane, and that the figures the page
 *   shows (data-* attributes: data-tid, data-hold-ns, data-wait-ns, ...)
 *   equal the JSON's: per-thread hold/wait/acquisitions, the summary, the
 *   verdict, every blocked_by entry, the probes. With stacks (the page data's
 *   "flame"): both flame graphs (wait, hold) are SVGs with rect nodes, their
 *   root values equal the page's stack totals and the JSON's
 *   (threads[].stacks.wait.total_ns, .hold.total_ns; threads[].wait_ns,
 *   .hold_ns for a JSON without them) within 1%, for all threads and each
 *   thread of the selector, and hovering a box shows a tooltip
 *   with its function, file:line and share; without stacks, no flame graph
 *   and a note on --stacks.
 * --perfetto: imports the trace into speedscope (npm package, run offline
 *   from its dist/release/ the way its own CLI does: #localProfilePath= a
 *   script that calls speedscope.loadFileFromBase64) and checks it loads
 *   without errors or nesting warnings (slices that do not nest once ends
 *   are computed as ts + dur) and shows one profile per thread.
 * --folded: imports giltrace's folded stacks (--folded) into speedscope the
 *   same way: it must recognise the collapsed format and load it without
 *   errors (the values' sum is checked by tests/cases/75_stacks.py).
 *
 * Prints one line per check ("PASS ..." / "FAIL ...: why"), then
 * "N passed, N failed"; exit status 1 if any failed, 2 on a usage or
 * set-up problem (say what to install).
 */
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { createRequire } = require('module');

const REPO = path.resolve(__dirname, '..', '..');
const WEB = path.join(REPO, 'web');
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
  '--disable-default-apps', '--disable-extensions', '--mute-audio'
];

function usage(msg) {
  console.error('check_html: ' + msg);
  process.exit(2);
}

function parseArgs(argv) {
  const o = { chromium: process.env.CHROMIUM || '/usr/bin/chromium' };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (!['--html', '--json', '--perfetto', '--folded', '--screenshot', '--chromium'].includes(k) || v === undefined)
      usage('usage: check_html.js [--html F --json F] [--perfetto F] [--folded F] [--screenshot PNG] [--chromium PATH]');
    o[k.slice(2)] = v;
    i++;
  }
  if (!o.html && !o.perfetto && !o.folded) usage('nothing to check: give --html, --perfetto or --folded');
  if (o.html && !o.json) usage('--html needs --json (giltrace --json of the same trace)');
  return o;
}

let passed = 0;
let failed = 0;
function result(name, problems) {
  if (problems.length) {
    failed++;
    console.log('FAIL ' + name + ': ' + problems.slice(0, 8).join('; ') +
      (problems.length > 8 ? '; ... ' + (problems.length - 8) + ' more' : ''));
  } else {
    passed++;
    console.log('PASS ' + name);
  }
}

async function openBrowser(o) {
  let pw;
  try {
    pw = createRequire(path.join(WEB, 'package.json'))('playwright-core');
  } catch (e) {
    usage('playwright-core is not installed: run scripts/deps-web.sh (npm ci in web/)');
  }
  if (!fs.existsSync(o.chromium))
    usage(o.chromium + ' is missing: run scripts/deps-web.sh (apt-get install chromium)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'giltrace-chromium-'));
  const ctx = await pw.chromium.launchPersistentContext(dir, {
    executablePath: o.chromium, headless: true, args: ARGS,
    viewport: { width: 1400, height: 900 }, offline: false
  });
  return { ctx, dir };
}

/* A page that records console errors, page errors and network requests
 * leaving file:// (refused). */
async function watchedPage(ctx) {
  const page = await ctx.newPage();
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push('console error: ' + m.text().slice(0, 300));
  });
  page.on('pageerror', (e) => problems.push('page error: ' + String(e && e.message || e).slice(0, 300)));
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('file:') || url.startsWith('data:') || url.startsWith('blob:'))
      return route.continue();
    problems.push('network request to ' + url.slice(0, 120));
    return route.abort();
  });
  return { page, problems };
}

/* ---- the HTML report -------------------------------------------------------- */

async function checkHtml(ctx, o) {
  const data = JSON.parse(fs.readFileSync(o.json, 'utf8'));
  const { page, problems } = await watchedPage(ctx);
  await page.goto('file://' + path.resolve(o.html), { waitUntil: 'load', timeout: 60000 });
  try {
    await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
  } catch (e) {
    problems.push('the page never finished drawing (body[data-ready])');
  }
  await page.waitForTimeout(300);
  result('html loads with no console error, page error or network request', problems.slice());

  const seen = await page.evaluate(() => {
    const attrs = (sel) => Array.from(document.querySelectorAll(sel)).map((e) => {
      const d = Object.assign({}, e.dataset);
      d.text = e.textContent;
      return d;
    });
    const tl = document.getElementById('timeline-chart');
    let lanes = null;
    let series = null;
    if (tl && window.echarts) {
      const inst = echarts.getInstanceByDom(tl);
      const opt = inst && inst.getOption();
      lanes = opt ? opt.yAxis[0].data : null;
      series = opt ? opt.series.map((s) => ({ name: s.name, n: (s.data || []).length })) : null;
    }
    const embedded = JSON.parse(document.getElementById('giltrace-data').textContent);
    return {
      threads: attrs('tr.thread'), blocked: attrs('tr.blocked'), cards: attrs('.card'),
      probes: attrs('tr.probe'), hists: attrs('.hist'),
      verdict: (document.getElementById('verdict') || {}).textContent,
      lanes, series, canvases: document.querySelectorAll('canvas').length,
      timeline: embedded.timeline,
      title: document.title
    };
  });

  let p = [];
  for (const t of data.threads) {
    const row = seen.threads.find((r) => r.tid === String(t.tid));
    if (!row) { p.push('no row for TID ' + t.tid); continue; }
    if (row.name !== t.name) p.push('TID ' + t.tid + ' name ' + JSON.stringify(row.name) + ' != ' + JSON.stringify(t.name));
    if (!row.text.includes(String(t.tid)) || !row.text.includes(t.name))
      p.push('TID ' + t.tid + ' row does not show its TID and name');
    for (const [k, a] of [['holdNs', 'hold_ns'], ['waitNs', 'wait_ns'], ['acquisitions', 'acquisitions']])
      if (row[k] !== String(t[a])) p.push('TID ' + t.tid + ' ' + a + ' ' + row[k] + ' != ' + t[a]);
  }
  if (seen.threads.length !== data.threads.length)
    p.push(seen.threads.length + ' thread rows for ' + data.threads.length + ' threads');
  result('every thread labelled with TID and name, figures equal the JSON', p);

  p = [];
  if (!seen.lanes) {
    p.push(seen.timeline ? 'no timeline chart' : 'the page has no timeline data');
  } else {
    for (const t of data.threads) {
      const want = t.tid + ' ' + t.name;
      const inTl = (seen.timeline.threads || []).some((x) => x.tid === t.tid);
      if (inTl && !seen.lanes.includes(want)) p.push('no timeline lane ' + JSON.stringify(want));
    }
    if (seen.lanes.length !== seen.timeline.threads.length)
      p.push(seen.lanes.length + ' lanes for ' + seen.timeline.threads.length + ' threads');
    const segs = seen.timeline.threads.reduce((a, t) => a + t.seg.length / 3, 0);
    const drawn = (seen.series || []).filter((s) => s.name === 'holds the GIL' || s.name === 'waits for it')
      .reduce((a, s) => a + s.n, 0);
    if (drawn !== segs) p.push('timeline draws ' + drawn + ' segments of ' + segs);
    if (!seen.timeline.downsampled) {
      for (const t of seen.timeline.threads) {
        const j = data.threads.find((x) => x.tid === t.tid);
        let hold = 0;
        let wait = 0;
        for (let i = 0; i + 2 < t.seg.length; i += 3) {
          if (t.seg[i + 2] === 1) hold += t.seg[i + 1] - t.seg[i];
          else if (t.seg[i + 2] === 2) wait += t.seg[i + 1] - t.seg[i];
        }
        if (j && !seen.timeline.truncated && (hold !== j.hold_ns || wait !== j.wait_ns))
          p.push('TID ' + t.tid + ' timeline sums hold ' + hold + ' wait ' + wait +
            ' != JSON ' + j.hold_ns + ' / ' + j.wait_ns);
      }
    }
  }
  result('timeline: a lane per thread, every segment drawn, sums equal the JSON', p);

  p = [];
  const card = (k) => (seen.cards.find((c) => c.key === k) || {}).value;
  const want = { interval_ns: data.interval_ns, held_ns: data.gil.held_ns, acquisitions: data.gil.acquisitions,
    holder_switches: data.gil.holder_switches, threads_total: data.threads_total };
  for (const k of Object.keys(want))
    if (card(k) !== String(want[k])) p.push('summary ' + k + ' ' + card(k) + ' != ' + want[k]);
  if (seen.verdict !== data.verdict) p.push('verdict differs: ' + JSON.stringify(seen.verdict));
  if (seen.probes.length !== data.target.probes.length)
    p.push(seen.probes.length + ' probe rows for ' + data.target.probes.length + ' probes');
  if (!seen.title.includes(String(data.target.pid))) p.push('title ' + JSON.stringify(seen.title) + ' lacks the PID');
  result('summary, verdict and probes equal the JSON', p);

  p = [];
  if (Array.isArray(data.blocked_by)) {
    for (const b of data.blocked_by) {
      const h = b.holder === null ? 'null' : String(b.holder);
      const row = seen.blocked.find((r) => r.waiter === String(b.waiter) && r.holder === h);
      if (!row) { p.push('no row for ' + b.waiter + ' behind ' + h); continue; }
      if (row.waitNs !== String(b.wait_ns) || row.count !== String(b.count))
        p.push(b.waiter + ' behind ' + h + ': ' + row.waitNs + '/' + row.count + ' != ' + b.wait_ns + '/' + b.count);
    }
    if (seen.blocked.length !== data.blocked_by.length)
      p.push(seen.blocked.length + ' blocked rows for ' + data.blocked_by.length + ' entries');
  } else {
    p.push('the JSON has no blocked_by (giltrace --json of a trace with the event stream is needed)');
  }
  result('who-blocks-whom matrix equals the JSON blocked_by', p);

  p = [];
  const withHist = data.threads.filter((t) => t.wait.count || t.hold.count).slice(0, 16);
  for (const t of withHist) {
    const h = seen.hists.find((x) => x.tid === String(t.tid));
    if (!h) p.push('no histogram for TID ' + t.tid);
    else if (h.waitCount !== String(t.wait.count) || h.holdCount !== String(t.hold.count))
      p.push('TID ' + t.tid + ' histogram counts differ');
  }
  if (seen.canvases < 2) p.push('only ' + seen.canvases + ' canvases drawn');
  result('histograms per thread', p);

  if (o.screenshot) {
    await page.screenshot({ path: o.screenshot, fullPage: true });
    console.log('screenshot: ' + o.screenshot);
  }

  /* Zoom the timeline to 5% of the trace, as a wheel or the slider would. */
  p = [];
  const zoomed = await page.evaluate(() => {
    const dom = document.getElementById('timeline-chart');
    const c = dom && echarts.getInstanceByDom(dom);
    if (!c) return null;
    c.dispatchAction({ type: 'dataZoom', start: 40, end: 45 });
    const dz = c.getOption().dataZoom[0];
    return [dz.start, dz.end];
  });
  if (zoomed && (Math.abs(zoomed[0] - 40) > 0.01 || Math.abs(zoomed[1] - 45) > 0.01))
    p.push('the timeline did not zoom: ' + JSON.stringify(zoomed));
  await page.waitForTimeout(300);
  if (zoomed && o.screenshot) {
    const shot = o.screenshot.replace(/(\.png)?$/, '-zoom.png');
    await (await page.$('#timeline')).screenshot({ path: shot });
    console.log('screenshot: ' + shot);
  }
  result('timeline zooms', zoomed || !seen.timeline ? p : ['no timeline chart to zoom']);
  await checkFlame(page, data, o);
  const late = problems.slice();
  result('no error while inspecting the page', late);
  await page.close();
}

/* ---- flame graphs (traces with stacks) ------------------------------------------ */

/* Within 1% (or 1 µs, for tiny totals). */
function near(a, b) {
  return Math.abs(a - b) <= Math.max(0.01 * Math.abs(b), 1000);
}

/* What the two flame graphs show now: per kind, the total the page says,
 * the root value of the drawn tree (ms -> ns) and the SVG's rect count. */
async function flameState(page) {
  return page.evaluate(() => ['wait', 'hold'].map((k) => {
    const box = document.getElementById('flame-' + k);
    if (!box) return { kind: k, missing: true };
    const div = box.querySelector('.flame-chart');
    const svg = div && div.querySelector('svg');
    let root = null;
    try {
      const d = window.d3 && d3.select(div).datum();
      root = d && typeof d.value === 'number' ? d.value * 1e6 : null;
    } catch (e) { root = null; }
    return {
      kind: k, thread: box.dataset.thread, total: Number(box.dataset.totalNs),
      rects: svg ? svg.querySelectorAll('rect').length : 0, svg: !!svg, root,
      labels: svg ? Array.from(svg.querySelectorAll('.d3-flame-graph-label')).filter((e) => e.textContent).length : 0
    };
  }));
}

async function checkFlame(page, data, o) {
  const flame = await page.evaluate(() =>
    JSON.parse(document.getElementById('giltrace-data').textContent).flame || null);
  let p = [];
  if (!flame) {
    const st = await page.evaluate(() => ({
      section: !!document.getElementById('flame'),
      note: (document.getElementById('flame-note') || {}).textContent || ''
    }));
    if (st.section) p.push('a flame graph section without stacks');
    if (!/--stacks/.test(st.note)) p.push('no note on how to get flame graphs (--stacks): ' + JSON.stringify(st.note));
    result('no stacks: no flame graph, a one-line note on --stacks', p);
    return;
  }
  /* The JSON's stack totals per thread (or, without them, the thread's
   * wait and hold: the stack weights add up to them). */
  const jsonTotal = (t, k) => (t.stacks && t.stacks[k] ? t.stacks[k].total_ns : t[k + '_ns']) || 0;
  const closed = { wait: 0, hold: 0 };
  for (const t of data.threads) {
    closed.wait += jsonTotal(t, 'wait');
    closed.hold += jsonTotal(t, 'hold');
  }
  await page.waitForTimeout(600); /* d3 transitions */
  const check = (st, want, wantJson, what) => {
    for (const g of st) {
      const k = g.kind;
      if (g.missing) { p.push(what + ': no ' + k + ' flame graph'); continue; }
      if (!want[k]) continue; /* nothing to draw */
      if (!g.svg || g.rects < 2) p.push(what + ' ' + k + ': ' + (g.svg ? g.rects + ' rects' : 'no SVG'));
      if (g.root === null) { p.push(what + ' ' + k + ': no root value'); continue; }
      if (!near(g.root, want[k])) p.push(what + ' ' + k + ': root ' + g.root.toFixed(0) + ' ns != page total ' + want[k]);
      if (wantJson && !near(g.root, wantJson[k]))
        p.push(what + ' ' + k + ': root ' + g.root.toFixed(0) + ' ns != JSON ' + k + ' total ' + wantJson[k] + ' ns');
      if (g.total !== want[k]) p.push(what + ' ' + k + ': data-total-ns ' + g.total + ' != ' + want[k]);
    }
  };
  const all = await flameState(page);
  check(all, { wait: flame.wait_ns, hold: flame.hold_ns }, closed, 'all threads');
  if (all.every((g) => !g.missing && (g.labels || !g.rects)) === false) p.push('boxes have no text labels');
  result('flame graphs (all threads): SVG rects, root = total wait / hold within 1% of the page and the JSON', p);

  /* Each thread of the selector (the first 6). */
  p = [];
  const threads = flame.threads || [];
  for (let i = 0; i < Math.min(threads.length, 6); i++) {
    const t = threads[i];
    await page.selectOption('#flame-thread', String(i));
    await page.waitForTimeout(400);
    const st = await flameState(page);
    const j = data.threads.find((x) => x.tid === t.tid);
    const wantJson = j ? { wait: jsonTotal(j, 'wait'), hold: jsonTotal(j, 'hold') } : null;
    check(st, { wait: t.wait_ns, hold: t.hold_ns }, wantJson, 'thread ' + t.tid);
    if (st.some((g) => g.thread !== String(i))) p.push('thread ' + t.tid + ': the selector did not redraw');
  }
  await page.selectOption('#flame-thread', 'all');
  await page.waitForTimeout(400);
  result('flame graphs per thread: root = the thread\'s wait / hold within 1%', p);

  /* Hover the widest frame box of the wait graph: a tooltip with the
   * function, file:line and share. */
  p = [];
  const box = await page.evaluate(() => {
    const k = document.querySelector('#flame-wait .flame-chart svg') ? 'wait' : 'hold';
    const svg = document.querySelector('#flame-' + k + ' .flame-chart svg');
    if (!svg) return null;
    let best = null;
    svg.querySelectorAll('g.frame').forEach((g) => {
      const d = g.__data__;
      if (!d || !d.data || d.data.frame < 0) return;
      const w = g.querySelector('rect').getBoundingClientRect().width;
      if (w > 2 && (!best || w > best.w)) best = { g, w, frame: d.data.frame };
    });
    if (!best) return null;
    const rect = best.g.querySelector('rect');
    rect.scrollIntoView({ block: 'center', inline: 'center' });
    const r = rect.getBoundingClientRect();
    return { x: r.left + r.width / 2, y: r.top + r.height / 2,
      f: JSON.parse(document.getElementById('giltrace-data').textContent).flame.frames[best.frame] };
  });
  if (!box) {
    p.push('no frame box to hover');
  } else {
    await page.mouse.move(box.x, box.y);
    await page.waitForTimeout(300);
    const tip = await page.evaluate(() => {
      const t = document.querySelector('.flame-tip');
      return t && getComputedStyle(t).display !== 'none' ? t.textContent : null;
    });
    if (!tip) p.push('no tooltip on hover');
    else {
      if (!tip.includes(box.f.function)) p.push('tooltip lacks the function ' + JSON.stringify(box.f.function) + ': ' + tip.slice(0, 200));
      if (box.f.file && !tip.includes(box.f.file + (box.f.line ? ':' + box.f.line : '')))
        p.push('tooltip lacks file:line: ' + tip.slice(0, 200));
      if (!/\d ms/.test(tip) || !/%/.test(tip)) p.push('tooltip lacks the ms value or the share: ' + tip.slice(0, 200));
    }
    await page.mouse.move(1, 1);
  }
  result('flame graph tooltip: function, file:line, ms and share', p);
  if (o.screenshot) {
    const shot = o.screenshot.replace(/(\.png)?$/, '-flame.png');
    await (await page.$('#flame')).screenshot({ path: shot });
    console.log('screenshot: ' + shot);
  }
}

/* ---- the Perfetto file in speedscope ------------------------------------------ */

/* @file into speedscope; @what: 'perfetto' (one profile per thread) or
 * 'folded' (one profile). */
async function checkSpeedscope(ctx, o, file, what) {
  const root = path.join(WEB, 'node_modules', 'speedscope', 'dist', 'release');
  const index = path.join(root, 'index.html');
  if (!fs.existsSync(index)) usage(index + ' is missing: run scripts/deps-web.sh (npm ci in web/)');
  let tids = new Set();
  if (what === 'perfetto') {
    const trace = JSON.parse(fs.readFileSync(file, 'utf8'));
    tids = new Set(trace.traceEvents.filter((e) => e.ph === 'X').map((e) => e.tid));
  }
  const name = path.basename(file);
  const loader = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'giltrace-speedscope-')), 'load.js');
  fs.writeFileSync(loader, 'speedscope.loadFileFromBase64(' + JSON.stringify(name) + ', ' +
    JSON.stringify(fs.readFileSync(file).toString('base64')) + ')');

  const { page, problems } = await watchedPage(ctx);
  /* speedscope warns when slices of a thread do not nest (an end that is
   * not the innermost open slice): the file would show a staircase. */
  let nesting = 0;
  page.on('console', (m) => {
    if (m.type() === 'warning' && /Tried to end|still open at end of profile|stack was empty/.test(m.text()))
      if (nesting++ < 3) problems.push('speedscope: ' + m.text().slice(0, 200));
  });
  await page.goto('file://' + index + '#localProfilePath=' + loader, { waitUntil: 'load', timeout: 60000 });
  let loaded = false;
  try {
    await page.waitForFunction((n) => document.title.includes(n), name, { timeout: 30000 });
    loaded = true;
  } catch (e) {
    problems.push('speedscope did not load the profile (title ' + JSON.stringify(await page.title()) + ')');
  }
  await page.waitForTimeout(500);
  const body = await page.evaluate(() => document.body.innerText);
  if (/went wrong|unrecognized format|failed to/i.test(body))
    problems.push('speedscope says: ' + body.slice(0, 200).replace(/\s+/g, ' '));
  if (loaded) {
    /* One profile per thread: its "n/N" thread selector says N. */
    const m = body.match(/\b\d+\s*\/\s*(\d+)\b/);
    if (tids.size > 1 && (!m || Number(m[1]) !== tids.size))
      problems.push('expected ' + tids.size + ' thread profiles, speedscope shows ' + (m ? m[1] : 'none'));
  }
  if (o.screenshot) {
    const shot = o.screenshot.replace(/(\.png)?$/, '-speedscope-' + what + '.png');
    await page.screenshot({ path: shot });
    console.log('screenshot: ' + shot);
  }
  result(what + ' file imports into speedscope without errors', problems);
  fs.rmSync(path.dirname(loader), { recursive: true, force: true });
  await page.close();
}

async function main() {
  const o = parseArgs(process.argv);
  const { ctx, dir } = await openBrowser(o);
  try {
    if (o.html) await checkHtml(ctx, o);
    if (o.perfetto) await checkSpeedscope(ctx, o, o.perfetto, 'perfetto');
    if (o.folded) await checkSpeedscope(ctx, o, o.folded, 'folded');
  } catch (e) {
    result('harness', [String(e && e.stack || e).split('\n').slice(0, 3).join(' ')]);
  } finally {
    await ctx.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(passed + ' passed, ' + failed + ' failed');
  process.exit(failed ? 1 : 0);
}

main();
