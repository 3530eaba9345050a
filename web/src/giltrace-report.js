/* SPDX-License-Identifier: MIT */
/*
 * giltrace-report.js - draws giltrace's self-contained HTML report from the
 * JSON that src/report_html.c inlines (<script id="giltrace-data">): the
 * giltrace/1 figures (docs/json.md) with blocked_by, plus "timeline", each
 * thread's hold/wait segments [begin_ns, end_ns, kind] relative to t0_ns
 * (kind 1 hold, 2 wait, 3 wait cut short by the thread's exit).
 *
 * With stacks (giltrace --stacks), "flame" holds the frames table, the
 * stacks (frame indices, root first) and each thread's weighted wait and
 * hold stacks: drawn as two flame graphs (d3-flame-graph, with d3).
 *
 * Charts use Apache ECharts (inlined before this script). Every figure is
 * also in the DOM with data-* attributes (data-tid, data-hold-ns, ...), for
 * people who copy them and for the tests (tests/web/check_html.js).
 * Text from the data is only ever set with textContent.
 */
(function () {
  'use strict';

  var C = {
    hold: '#d9480f', wait: '#f59f00', abandoned: '#a61e4d',
    lost: 'rgba(134,142,150,0.30)', line: '#495057', muted: '#868e96'
  };
  var D = JSON.parse(document.getElementById('giltrace-data').textContent);
  var TL = D.timeline || null;
  var app = document.getElementById('app');
  var charts = [];

  /* ---- helpers ------------------------------------------------------------ */

  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === undefined || v === null) return;
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else if (k === 'style') e.setAttribute('style', v);
      else e.setAttribute(k, String(v));
    });
    (kids || []).forEach(function (k) {
      if (k !== null && k !== undefined)
        e.appendChild(typeof k === 'string' ? document.createTextNode(k) : k);
    });
    return e;
  }

  function sig3(v, unit) {
    if (v < 9.995) return v.toFixed(2) + unit;
    if (v < 99.95) return v.toFixed(1) + unit;
    return v.toFixed(0) + unit;
  }

  /* Human duration, as the terminal report prints it. */
  function fmtDur(ns) {
    var units = [[1e3, ' µs'], [1e6, ' ms'], [1e9, ' s']], i = 0;
    if (ns < 1000) return Math.round(ns) + ' ns';
    while (i + 1 < units.length && ns >= units[i + 1][0]) i++;
    if (i + 1 < units.length && ns / units[i][0] >= 999.5) i++;
    return sig3(ns / units[i][0], units[i][1]);
  }

  function fmtAxis(ms) { return ms === 0 ? '0' : fmtDur(ms * 1e6); }

  function fmtPct(x) { return (100 * x).toFixed(1) + '%'; }
  function fmtInt(n) { return Number(n).toLocaleString('en-US'); }

  var names = {};
  (D.threads || []).forEach(function (t) { names[t.tid] = t.name; });
  (TL && TL.threads || []).forEach(function (t) {
    if (!names[t.tid]) names[t.tid] = t.name;
  });
  function label(tid) {
    return tid === null ? 'nobody (hand-off)' : tid + ' ' + (names[tid] || '?');
  }

  function section(id, title, help) {
    var s = el('section', { id: id }, [el('h2', { text: title })]);
    if (help) s.appendChild(el('p', { class: 'help', text: help }));
    app.appendChild(s);
    return s;
  }

  function chartBox(parent, id, height) {
    var div = el('div', { class: 'chart', id: id, style: 'height:' + height + 'px' });
    parent.appendChild(div);
    var c = echarts.init(div, null, { renderer: 'canvas' });
    charts.push(c);
    return c;
  }

  /* Run one part of the page; a failure is reported, the rest still drawn. */
  function part(name, fn) {
    try {
      fn();
    } catch (e) {
      console.error('giltrace report: ' + name + ': ' + (e && e.stack || e));
    }
  }

  /* ---- header, verdict, summary --------------------------------------------- */

  function header() {
    var tg = D.target || {};
    var sub = ['PID ' + tg.pid, tg.exe, 'Python ' + tg.python_version,
      'traced ' + fmtDur(D.interval_ns) + (D.target_exited ? ' (until the target exited)' : '')];
    app.appendChild(el('header', {}, [
      el('h1', { text: 'giltrace: how the GIL serialized this process' }),
      el('p', { class: 'sub', id: 'target', 'data-pid': tg.pid, text: sub.join(' · ') })
    ]));
    var v = D.verdict || '';
    var bad = /no parallel speed-up|slows/.test(v);
    app.appendChild(el('p', { class: 'verdict' + (bad ? ' bad' : ''), id: 'verdict', text: v }));
  }

  function summary() {
    var g = D.gil || {};
    var cards = [
      ['interval_ns', D.interval_ns, fmtDur(D.interval_ns), 'traced'],
      ['held_share', g.held_share, fmtPct(g.held_share || 0), 'of the time the GIL was held'],
      ['held_ns', g.held_ns, fmtDur(g.held_ns), 'GIL held in all'],
      ['acquisitions', g.acquisitions, fmtInt(g.acquisitions), 'acquisitions'],
      ['holder_switches', g.holder_switches, fmtInt(g.holder_switches), 'holder switches'],
      ['switch_interval_ns', D.switch_interval_ns,
        D.switch_interval_ns ? fmtDur(D.switch_interval_ns) : 'unknown', 'switch interval'],
      ['threads_total', D.threads_total, fmtInt(D.threads_total), 'threads seen']
    ];
    var box = el('div', { class: 'cards', id: 'summary' });
    cards.forEach(function (c) {
      box.appendChild(el('div', { class: 'card', 'data-key': c[0], 'data-value': c[1] }, [
        el('div', { class: 'v', text: c[2] }), el('div', { class: 'k', text: c[3] })
      ]));
    });
    app.appendChild(box);

    var w = [];
    if (D.dropped_events)
      w.push(D.dropped_events + ' GIL transitions were not recorded: the per-thread map was full (--max-threads).');
    if (TL && TL.records_lost)
      w.push(TL.records_lost + ' event records were lost in the kernel (ring buffer full): grey bands on the timeline mark the time they affect.');
    if (TL && TL.truncated)
      w.push('The timeline keeps the first ' + fmtInt(TL.max_cycles) + ' GIL cycles only; the figures count them all.');
    if (TL && TL.downsampled)
      w.push('The trace is long: the timeline shows the dominant state of each ' + fmtDur(TL.bucket_ns) +
        ' bucket instead of every GIL cycle (the figures are exact). Use --perfetto for every cycle.');
    var ab = (D.threads || []).reduce(function (a, t) { return a + (t.waits_abandoned || 0); }, 0);
    if (ab)
      w.push(ab + (ab === 1 ? ' wait was' : ' waits were') +
        ' cut short by the thread\'s exit and not counted in the wait figures (dark red on the timeline).');
    if (w.length) {
      var ul = el('ul', { class: 'warnings', id: 'warnings' });
      w.forEach(function (t) { ul.appendChild(el('li', { text: t })); });
      app.appendChild(ul);
    }
  }

  /* ---- threads table ---------------------------------------------------- */

  function threadsTable() {
    var s = section('threads', 'Threads',
      'Busiest first. Hold: time holding the GIL; wait: time inside take_gil waiting for it; '
      + 'shares are of the traced time (wait share: of the time the thread was there).');
    var head = ['TID', 'name', 'hold', 'hold %', 'wait', 'wait %', 'wait share', 'acquisitions',
      'wait p50', 'wait p99', 'wait max', 'hold p50', 'hold p99', 'hold max'];
    var thead = el('tr', {}, head.map(function (h, i) {
      return el('th', { class: i >= 2 ? 'num' : null, text: h });
    }));
    var tbody = el('tbody');
    (D.threads || []).forEach(function (t) {
      var iv = D.interval_ns || 1;
      function d(x) { return x && x.count ? x : null; }
      var w = d(t.wait), h = d(t.hold);
      var cells = [
        el('td', { class: 'tid', text: String(t.tid) }),
        el('td', { class: 'name', text: t.name + (t.exited ? ' (exited)' : '') }),
        el('td', { class: 'num', text: fmtDur(t.hold_ns) }),
        el('td', { class: 'num', text: fmtPct(t.hold_ns / iv) }),
        el('td', { class: 'num', text: fmtDur(t.wait_ns) }),
        el('td', { class: 'num', text: fmtPct(t.wait_ns / iv) }),
        el('td', { class: 'num', text: fmtPct(t.wait_share || 0) }),
        el('td', { class: 'num', text: fmtInt(t.acquisitions) }),
        el('td', { class: 'num', text: w ? fmtDur(w.p50_ns) : '-' }),
        el('td', { class: 'num', text: w ? fmtDur(w.p99_ns) : '-' }),
        el('td', { class: 'num', text: w ? fmtDur(w.max_ns) : '-' }),
        el('td', { class: 'num', text: h ? fmtDur(h.p50_ns) : '-' }),
        el('td', { class: 'num', text: h ? fmtDur(h.p99_ns) : '-' }),
        el('td', { class: 'num', text: h ? fmtDur(h.max_ns) : '-' })
      ];
      tbody.appendChild(el('tr', {
        class: 'thread' + (t.exited ? ' exited' : ''), 'data-tid': t.tid, 'data-name': t.name,
        'data-hold-ns': t.hold_ns, 'data-wait-ns': t.wait_ns, 'data-acquisitions': t.acquisitions,
        'data-wait-share': t.wait_share
      }, cells));
    });
    s.appendChild(el('div', { class: 'tablewrap' }, [el('table', { id: 'threads-table' },
      [el('thead', {}, [thead]), tbody])]));
  }

  /* ---- timeline ------------------------------------------------------------ */

  /* Every hold of every thread, in time order, for the holders of a wait. */
  var HOLDS = null;
  function holds() {
    if (HOLDS) return HOLDS;
    HOLDS = [];
    TL.threads.forEach(function (t) {
      for (var i = 0; i + 2 < t.seg.length; i += 3)
        if (t.seg[i + 2] === 1) HOLDS.push([t.seg[i], t.seg[i + 1], t.tid]);
    });
    HOLDS.sort(function (a, b) { return a[0] - b[0]; });
    return HOLDS;
  }

  /* "behind 4243 worker-1 4.2 ms, hand-off 30 µs" for a wait [b, e). */
  function behind(tid, b, e) {
    var h = holds(), lo = 0, hi = h.length, per = {}, order = [], covered = 0;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (h[mid][0] < b) lo = mid + 1; else hi = mid;
    }
    while (lo > 0 && h[lo - 1][1] > b) lo--;
    for (var i = lo; i < h.length && h[i][0] < e; i++) {
      var x = Math.max(b, h[i][0]), y = Math.min(e, h[i][1]);
      if (y <= x || h[i][2] === tid) continue;
      if (!(h[i][2] in per)) { per[h[i][2]] = 0; order.push(h[i][2]); }
      per[h[i][2]] += y - x;
      covered += y - x;
    }
    var parts = order.slice(0, 6).map(function (t) { return label(t) + ' ' + fmtDur(per[t]); });
    if (order.length > 6) parts.push((order.length - 6) + ' more');
    if (e - b > covered) parts.push('nobody (hand-off) ' + fmtDur(e - b - covered));
    return parts.join(', ');
  }

  function laneOrder() {
    var v = TL.threads.slice();
    v.sort(function (a, b) {
      var fa = a.seg.length ? a.seg[0] : Infinity, fb = b.seg.length ? b.seg[0] : Infinity;
      return fa - fb || a.tid - b.tid;
    });
    return v;
  }

  /* Threads waiting over time, from the wait segments: [[ms, n], ...]. */
  function waitingSeries(spanMs) {
    var ev = [];
    TL.threads.forEach(function (t) {
      for (var i = 0; i + 2 < t.seg.length; i += 3)
        if (t.seg[i + 2] !== 1 && t.seg[i + 1] > t.seg[i]) {
          ev.push([t.seg[i], 1]);
          ev.push([t.seg[i + 1], -1]);
        }
    });
    ev.sort(function (a, b) { return a[0] - b[0]; });
    var pts = [[0, 0]], v = 0;
    for (var i = 0; i < ev.length;) {
      var ts = ev[i][0];
      for (; i < ev.length && ev[i][0] === ts; i++) v += ev[i][1];
      pts.push([ts / 1e6, v]);
    }
    pts.push([spanMs, v]);
    if (pts.length <= 40000) return pts;
    /* Too many steps to draw: the maximum of each of 8000 buckets. */
    var n = 8000, out = [], w = spanMs / n, j = 0;
    for (var k = 0; k < n; k++) {
      var m = 0, end = (k + 1) * w;
      for (; j < pts.length && pts[j][0] < end; j++) m = Math.max(m, pts[j][1]);
      out.push([k * w, m]);
    }
    return out;
  }

  function timeline() {
    var s = section('timeline', 'Timeline',
      'One lane per thread. Scroll or pinch to zoom, drag to pan, or use the slider; '
      + 'hover a bar for its figures and, for a wait, the threads that held the GIL meanwhile.');
    if (!TL) {
      s.appendChild(el('p', { class: 'none', text: 'No event-level data in this report: the timeline needs the event stream.' }));
      return;
    }
    var lanes = laneOrder(), spanMs = TL.interval_ns / 1e6;
    var labels = lanes.map(function (t) { return t.tid + ' ' + t.name; });
    var holdData = [], waitData = [], cut = 0;
    lanes.forEach(function (t, li) {
      for (var i = 0; i + 2 < t.seg.length; i += 3) {
        var item = [li, t.seg[i] / 1e6, t.seg[i + 1] / 1e6, t.seg[i + 2]];
        (t.seg[i + 2] === 1 ? holdData : waitData).push(item);
        cut = Math.max(cut, t.seg[i + 1]);
      }
    });
    function item(color, text) {
      return el('span', { class: 'item' }, [el('span', { class: 'swatch', style: 'background:' + color }), text]);
    }
    var legend = el('p', { class: 'help legend' }, [
      item(C.hold, 'holds the GIL'), item(C.wait, 'waits for it'),
      item(C.abandoned, 'wait cut short by the thread\'s exit'), item(C.lost, 'records lost'),
      el('span', { class: 'item', text: 'blank: runs without the GIL' })
    ]);
    s.appendChild(legend);
    var laneH = 26, shown = Math.min(lanes.length, 40);
    var lanesH = Math.max(shown * laneH, 60);
    var height = 40 + lanesH + 40 + 80 + 70;
    var chart = chartBox(s, 'timeline-chart', height);
    chart.getDom().setAttribute('data-lanes', JSON.stringify(labels));
    chart.getDom().setAttribute('data-downsampled', TL.downsampled ? '1' : '0');

    function renderSeg(params, api) {
      var lane = api.value(0), kind = api.value(3);
      var a = api.coord([api.value(1), lane]), b = api.coord([api.value(2), lane]);
      var band = api.size([0, 1])[1], h = band * (kind === 1 ? 0.64 : 0.36);
      var cs = params.coordSys;
      var shape = echarts.graphic.clipRectByRect(
        { x: a[0], y: a[1] - h / 2, width: Math.max(b[0] - a[0], 1), height: h },
        { x: cs.x, y: cs.y, width: cs.width, height: cs.height });
      return shape && {
        type: 'rect', shape: shape,
        style: { fill: kind === 1 ? C.hold : kind === 3 ? C.abandoned : C.wait }
      };
    }
    function renderLost(params, api) {
      var a = api.coord([api.value(0), 0]), b = api.coord([api.value(1), 0]);
      var cs = params.coordSys;
      var shape = echarts.graphic.clipRectByRect(
        { x: a[0], y: cs.y, width: Math.max(b[0] - a[0], 2), height: cs.height },
        { x: cs.x, y: cs.y, width: cs.width, height: cs.height });
      return shape && { type: 'rect', shape: shape, style: { fill: C.lost } };
    }
    function tip(p) {
      if (p.seriesName === 'threads waiting')
        return p.value[1] + ' threads waiting at ' + fmtDur(p.value[0] * 1e6);
      if (p.seriesName === 'records lost')
        return fmtInt(p.value[2]) + ' records lost between ' + fmtDur(p.value[0] * 1e6) +
          ' and ' + fmtDur(p.value[1] * 1e6) + ': this part of the timeline is incomplete';
      var t = lanes[p.value[0]], b = p.value[1] * 1e6, e = p.value[2] * 1e6, k = p.value[3];
      var what = k === 1 ? 'holds the GIL' : k === 3 ? 'waits, until the thread exits' : 'waits for the GIL';
      var div = document.createElement('div');
      div.appendChild(el('b', { text: t.tid + ' ' + t.name }));
      div.appendChild(el('div', { text: what + ' for ' + fmtDur(e - b) }));
      div.appendChild(el('div', { text: 'from ' + fmtDur(b) + ' to ' + fmtDur(e) + ' after the start' }));
      if (TL.downsampled)
        div.appendChild(el('div', { text: '(downsampled: dominant state of ' + fmtDur(TL.bucket_ns) + ' buckets)' }));
      else if (k !== 1)
        div.appendChild(el('div', { text: 'behind: ' + (behind(t.tid, b, e) || '-') }));
      return div;
    }

    var yZoom = lanes.length > shown;
    var option = {
      animation: false,
      tooltip: { trigger: 'item', confine: true, formatter: tip },
      toolbox: { right: 20, feature: { dataZoom: { yAxisIndex: 'none' }, restore: {}, saveAsImage: {} } },
      grid: [
        { id: 'lanes', left: 170, right: 40, top: 36, height: lanesH },
        { id: 'waiting', left: 170, right: 40, top: 36 + lanesH + 40, height: 80 }
      ],
      xAxis: [
        { type: 'value', gridIndex: 0, min: 0, max: spanMs, axisLabel: { formatter: fmtAxis, hideOverlap: true },
          splitLine: { lineStyle: { color: '#f1f3f5' } } },
        { type: 'value', gridIndex: 1, min: 0, max: spanMs, axisLabel: { formatter: fmtAxis, hideOverlap: true } }
      ],
      yAxis: [
        { type: 'category', gridIndex: 0, data: labels, inverse: true,
          axisLabel: { width: 150, overflow: 'truncate', fontFamily: 'monospace' },
          splitLine: { show: true, lineStyle: { color: '#f1f3f5' } } },
        { type: 'value', gridIndex: 1, name: 'threads waiting', nameTextStyle: { align: 'left' },
          minInterval: 1, splitNumber: 2 }
      ],
      dataZoom: [
        { type: 'inside', xAxisIndex: [0, 1], filterMode: 'weakFilter' },
        { type: 'slider', xAxisIndex: [0, 1], filterMode: 'weakFilter', bottom: 10, height: 22,
          labelFormatter: function (v) { return fmtDur(v * 1e6); } }
      ].concat(yZoom ? [{ type: 'slider', yAxisIndex: 0, filterMode: 'weakFilter', right: 5, width: 16,
        startValue: 0, endValue: shown - 1 }] : []),
      series: [
        { type: 'custom', name: 'records lost', xAxisIndex: 0, yAxisIndex: 0, renderItem: renderLost,
          encode: { x: [0, 1] }, data: (TL.lost || []).map(function (l) { return [l[0] / 1e6, l[1] / 1e6, l[2]]; }),
          z: 1, silent: false },
        { type: 'custom', name: 'waits for it', xAxisIndex: 0, yAxisIndex: 0, renderItem: renderSeg,
          encode: { x: [1, 2], y: 0 }, data: waitData, z: 2 },
        { type: 'custom', name: 'holds the GIL', xAxisIndex: 0, yAxisIndex: 0, renderItem: renderSeg,
          encode: { x: [1, 2], y: 0 }, data: holdData, z: 3,
          markLine: TL.truncated ? { symbol: 'none', silent: true, lineStyle: { color: C.line, type: 'dashed' },
            label: { formatter: 'truncated' }, data: [{ xAxis: cut / 1e6 }] } : undefined },
        { type: 'line', name: 'threads waiting', xAxisIndex: 1, yAxisIndex: 1, step: 'end',
          showSymbol: false, data: waitingSeries(spanMs), lineStyle: { width: 1, color: C.wait },
          areaStyle: { color: 'rgba(245,159,0,0.25)' } }
      ]
    };
    chart.setOption(option);
  }

  /* ---- histograms ------------------------------------------------------------ */

  function histograms() {
    var s = section('histograms', 'Wait and hold times',
      'How long each wait for the GIL and each hold of it lasted, per thread, in power-of-two '
      + 'buckets (a bar at 1.02 ms counts the intervals from 1.02 ms to 2.05 ms).');
    var box = el('div', { class: 'hists' });
    s.appendChild(box);
    var v = (D.threads || []).filter(function (t) { return (t.wait && t.wait.count) || (t.hold && t.hold.count); });
    var max = 16;
    if (!v.length) {
      box.appendChild(el('p', { class: 'none', text: 'No completed wait or hold.' }));
      return;
    }
    v.slice(0, max).forEach(function (t, i) {
      var wh = (t.wait && t.wait.log2_hist) || [], hh = (t.hold && t.hold.log2_hist) || [];
      var lo = Infinity, hi = -1;
      [wh, hh].forEach(function (h) {
        h.forEach(function (c, k) { if (c) { lo = Math.min(lo, k); hi = Math.max(hi, k); } });
      });
      if (hi < 0) { lo = 0; hi = 0; }
      var cats = [], wd = [], hd = [];
      for (var k = lo; k <= hi; k++) {
        cats.push(k ? fmtDur(Math.pow(2, k)) : '0 ns');
        wd.push(wh[k] || 0);
        hd.push(hh[k] || 0);
      }
      var card = el('div', { class: 'hist', 'data-tid': t.tid,
        'data-wait-count': t.wait ? t.wait.count : 0, 'data-hold-count': t.hold ? t.hold.count : 0 },
      [el('h3', { text: t.tid + ' ' + t.name })]);
      box.appendChild(card);
      var c = chartBox(card, 'hist-' + t.tid + '-' + i, 220);
      c.setOption({
        animation: false,
        grid: { left: 48, right: 12, top: 28, bottom: 40 },
        legend: { top: 0, right: 0, itemWidth: 12, itemHeight: 8 },
        tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
        xAxis: { type: 'category', data: cats, axisLabel: { fontSize: 10 } },
        yAxis: { type: 'value', minInterval: 1, axisLabel: { fontSize: 10 } },
        series: [
          { type: 'bar', name: 'waits', data: wd, itemStyle: { color: C.wait } },
          { type: 'bar', name: 'holds', data: hd, itemStyle: { color: C.hold } }
        ]
      });
    });
    if (v.length > max)
      s.appendChild(el('p', { class: 'help', text: 'The ' + max + ' busiest of ' + v.length + ' threads are shown.' }));
  }

  /* ---- who waited behind whom ---------------------------------------------- */

  function blocked() {
    var s = section('blocked', 'Who waited behind whom',
      'For each thread that waited (rows), the threads that held the GIL meanwhile (columns): '
      + 'a wait is split by overlap with their holds; "nobody (hand-off)" is the time the GIL was free '
      + 'but not yet taken. A row adds up to the thread\'s wait.');
    var bb = D.blocked_by;
    if (!bb) {
      s.appendChild(el('p', { class: 'none', text: 'Not available: this needs the event stream.' }));
      return;
    }
    if (!bb.length) {
      s.appendChild(el('p', { class: 'none', text: 'No thread waited for the GIL.' }));
      return;
    }
    var order = {};
    (D.threads || []).forEach(function (t, i) { order[t.tid] = i; });
    var waiters = [], holders = [], byHolder = {}, waitOf = {};
    (D.threads || []).forEach(function (t) { waitOf[t.tid] = t.wait_ns; });
    bb.forEach(function (b) {
      if (waiters.indexOf(b.waiter) < 0) waiters.push(b.waiter);
      var h = b.holder === null ? 'null' : b.holder;
      if (!(h in byHolder)) { byHolder[h] = 0; holders.push(b.holder); }
      byHolder[h] += b.wait_ns;
    });
    waiters.sort(function (a, b) { return (order[a] || 0) - (order[b] || 0); });
    holders.sort(function (a, b) {
      if (a === null) return 1;
      if (b === null) return -1;
      return byHolder[b] - byHolder[a];
    });
    var data = [], maxv = 0;
    bb.forEach(function (b) {
      var x = holders.indexOf(b.holder), y = waiters.indexOf(b.waiter);
      data.push([x, y, b.wait_ns, b.count]);
      maxv = Math.max(maxv, b.wait_ns);
    });
    var c = chartBox(s, 'blocked-chart', 110 + 30 * waiters.length);
    c.setOption({
      animation: false,
      grid: { left: 170, right: 30, top: 10, bottom: 80 },
      tooltip: {
        formatter: function (p) {
          var w = waiters[p.value[1]], h = holders[p.value[0]];
          return label(w) + ' waited ' + fmtDur(p.value[2]) + ' behind ' + label(h) + ' (' + fmtInt(p.value[3]) + ' waits)';
        }
      },
      xAxis: { type: 'category', data: holders.map(label), name: 'held the GIL', nameLocation: 'middle', nameGap: 28,
        axisLabel: { interval: 0, fontFamily: 'monospace', width: 120, overflow: 'truncate' } },
      yAxis: { type: 'category', data: waiters.map(label), inverse: true, name: 'waited',
        axisLabel: { fontFamily: 'monospace', width: 150, overflow: 'truncate' } },
      visualMap: { min: 0, max: maxv || 1, dimension: 2, calculable: false, orient: 'horizontal', left: 'center', bottom: 0,
        itemHeight: 120, inRange: { color: ['#fff4e6', '#e8590c', '#862e9c'] },
        formatter: function (v) { return fmtDur(v); } },
      series: [{ type: 'heatmap', data: data,
        label: { show: data.length <= 120, formatter: function (p) { return fmtDur(p.value[2]); }, fontSize: 10 } }]
    });

    var tbody = el('tbody');
    bb.forEach(function (b) {
      tbody.appendChild(el('tr', {
        class: 'blocked', 'data-waiter': b.waiter, 'data-holder': b.holder === null ? 'null' : b.holder,
        'data-wait-ns': b.wait_ns, 'data-count': b.count
      }, [
        el('td', { class: 'mono', text: label(b.waiter) }),
        el('td', { class: 'mono', text: label(b.holder) }),
        el('td', { class: 'num', text: fmtDur(b.wait_ns) }),
        el('td', { class: 'num', text: waitOf[b.waiter] ? fmtPct(b.wait_ns / waitOf[b.waiter]) : '-' }),
        el('td', { class: 'num', text: fmtInt(b.count) })
      ]));
    });
    s.appendChild(el('div', { class: 'tablewrap' }, [el('table', { id: 'blocked-table' }, [
      el('thead', {}, [el('tr', {}, ['waiting thread', 'behind', 'wait', 'of its wait', 'waits'].map(function (h, i) {
        return el('th', { class: i >= 2 ? 'num' : null, text: h });
      }))]), tbody])]));
  }

  /* ---- flame graphs (--stacks) -------------------------------------------------- */

  var FL = D.flame || null;
  var KINDS = [
    { key: 'wait', title: 'Where threads waited for the GIL', verb: 'waited', what: 'wait', unit: 'waits',
      during: 'its thread waited for the GIL' },
    { key: 'hold', title: 'Where threads held the GIL', verb: 'held the GIL', what: 'hold', unit: 'holds',
      during: 'its thread held the GIL' }
  ];

  function threadRoot(t) { return (t.name || 'thread') + '-' + t.tid; }

  /*
   * The d3-flame-graph tree of weight @kind ('wait', 'hold') over @threads
   * (FL.threads entries): under the root, one node per thread ("name-tid"),
   * then the frames of its stacks, root first. Each node: name, value (ms,
   * this node and its callees), ns, count, frame (index into FL.frames, -1
   * for the root and the threads), tid. With one thread, that thread is the
   * root.
   */
  function flameTree(kind, threads) {
    function node(name, frame, tid) {
      return { name: name, frame: frame, tid: tid, ns: 0, count: 0, value: 0, children: [], _k: {} };
    }
    function child(n, key, name, frame, tid) {
      var c = n._k[key];
      if (!c) {
        c = n._k[key] = node(name, frame, tid);
        n.children.push(c);
      }
      return c;
    }
    function weigh(n, ns, count) { n.ns += ns; n.count += count; }
    var one = threads.length === 1;
    var root = node(one ? threadRoot(threads[0]) : 'all threads', -1, one ? threads[0].tid : null);
    threads.forEach(function (t) {
      var top = one ? root : child(root, 't' + t.tid + ':' + t.first_seen_ns, threadRoot(t), -1, t.tid);
      (t[kind] || []).forEach(function (w) {
        var st = FL.stacks[w[0]], count = w[1], ns = w[2], n = top;
        if (!one) weigh(root, ns, count);
        weigh(n, ns, count);
        (st ? st.frames : []).forEach(function (fi) {
          var f = FL.frames[fi];
          n = child(n, fi, f ? f.name : '?', fi, t.tid);
          weigh(n, ns, count);
        });
      });
    });
    (function finish(n) {
      n.value = n.ns / 1e6;
      delete n._k;
      n.children.forEach(finish);
    })(root);
    return root;
  }

  /* Tooltip object for d3-flame-graph (show/hide/destroy), text only. */
  function flameTip(kind, rootOf) {
    var div = null;
    function tip() {
      div = el('div', { class: 'flame-tip', style: 'display:none' });
      document.body.appendChild(div);
    }
    tip.show = function (event, d) {
      var x = d.data, f = x.frame >= 0 ? FL.frames[x.frame] : null, r = rootOf();
      while (div.firstChild) div.removeChild(div.firstChild);
      if (f) {
        div.appendChild(el('b', { text: f.kind === 'python' && f.module ? f.module + ':' + f.function : f.function }));
        if (f.file) div.appendChild(el('div', { class: 'mono', text: f.file + (f.line ? ':' + f.line : '') }));
        if (f.kind === 'native' && f.module) div.appendChild(el('div', { text: 'native code in ' + f.module }));
      } else {
        div.appendChild(el('b', { text: x.name }));
        if (x.tid !== null && x.tid !== undefined) div.appendChild(el('div', { text: 'thread ' + label(x.tid) }));
      }
      var ms = (x.ns / 1e6).toLocaleString('en-US', { minimumFractionDigits: 3, maximumFractionDigits: 3 });
      div.appendChild(el('div', { text: ms + ' ms (' + fmtDur(x.ns) + ') ' + kind.verb +
        ' here or in its callees' }));
      div.appendChild(el('div', { text: (r.ns ? fmtPct(x.ns / r.ns) : '-') + ' of ' + r.name + ' · ' +
        fmtInt(x.count) + ' ' + kind.unit }));
      div.style.display = 'block';
      var left = event.pageX + 12, top = event.pageY + 12;
      if (left + div.offsetWidth > window.scrollX + document.documentElement.clientWidth)
        left = Math.max(5, event.pageX - div.offsetWidth - 12);
      div.style.left = left + 'px';
      div.style.top = top + 'px';
      return tip;
    };
    tip.hide = function () { if (div) div.style.display = 'none'; return tip; };
    tip.destroy = function () { if (div && div.parentNode) div.parentNode.removeChild(div); };
    return tip;
  }

  function flameColor(d, original) {
    if (d.highlight) return '#e64980';
    var f = d.data.frame >= 0 ? FL.frames[d.data.frame] : null;
    if (!f) return '#dee2e6';
    if (f.kind === 'mark') return '#ced4da';
    if (f.kind === 'native') return '#a5d8ff';
    return original;
  }

  /* One flame graph: its box, chart and the tree it shows. */
  function FlameBox(parent, kind) {
    this.kind = kind;
    this.box = el('div', { class: 'flame-box', id: 'flame-' + kind.key, 'data-kind': kind.key });
    this.head = el('h3', { text: kind.title });
    this.info = el('p', { class: 'help flame-info' });
    this.chartDiv = el('div', { class: 'flame-chart' });
    this.box.appendChild(this.head);
    this.box.appendChild(this.info);
    this.box.appendChild(this.chartDiv);
    parent.appendChild(this.box);
    this.chart = null;
    this.tree = null;
  }

  FlameBox.prototype.draw = function (threads, scope, search) {
    var self = this, k = this.kind, total = 0, count = 0;
    threads.forEach(function (t) { total += t[k.key + '_ns'] || 0; count += t[k.key + '_count'] || 0; });
    if (this.chart) this.chart.destroy();
    while (this.chartDiv.firstChild) this.chartDiv.removeChild(this.chartDiv.firstChild);
    this.chart = null;
    this.tree = flameTree(k.key, threads);
    this.box.setAttribute('data-thread', scope);
    this.box.setAttribute('data-total-ns', total);
    this.box.setAttribute('data-count', count);
    this.info.textContent = fmtDur(total) + ' ' + k.verb + ' in ' + fmtInt(count) + ' ' + k.unit +
      (scope === 'all' ? ', all threads' : ', ' + this.tree.name) +
      '. Each box is a function, as wide as the time ' + k.during +
      ' while it was on the stack. Click a box to zoom in, the root to zoom out.';
    if (!count && !total) {
      this.chartDiv.appendChild(el('p', { class: 'none', text: 'No ' + k.what + ' with a stack.' }));
      this.box.setAttribute('data-root-ns', 0);
      return;
    }
    var width = Math.max(this.chartDiv.clientWidth || 0, 400);
    var chart = flamegraph.default()
      .width(width)
      .cellHeight(18)
      .transitionDuration(150)
      .minFrameSize(0.5)
      .sort(true)
      .resetHeightOnZoom(false)
      .tooltip(flameTip(k, function () { return self.tree; }))
      .setColorMapper(flameColor)
      .setSearchMatch(function (d, term) {
        var n = d.data.name;
        return !!term && typeof n === 'string' && n.toLowerCase().indexOf(String(term).toLowerCase()) >= 0;
      })
      .setSearchHandler(function (results, sum, totalValue) {
        self.box.setAttribute('data-search-ms', sum);
      });
    d3.select(this.chartDiv).datum(this.tree).call(chart);
    this.chart = chart;
    var root = d3.select(this.chartDiv).datum();
    this.box.setAttribute('data-root-ns', this.tree.ns);
    this.box.setAttribute('data-root-value-ms', root && root.value);
    if (search) chart.search(search);
  };

  function flameGraphs() {
    if (!FL) {
      app.appendChild(el('p', { class: 'help', id: 'flame-note',
        text: 'No flame graphs: this trace has no stacks. Record with --stacks to see where threads waited for the GIL and where they held it.' }));
      return;
    }
    var s = section('flame', 'Flame graphs: where threads waited for and held the GIL',
      'The Python stacks giltrace captured for each wait for the GIL and each hold of it, weighted by '
      + 'time: the root is all threads, then one box per thread (name-tid), then its stacks, outermost '
      + 'function first. Wide boxes are where the time went. Hover a box for its figures.');
    if (typeof flamegraph === 'undefined' || !window.d3) {
      s.appendChild(el('p', { class: 'none', text: 'The flame graph library is missing from this page.' }));
      throw new Error('d3 or d3-flame-graph is not loaded');
    }
    var warn = [];
    if (FL.stacks_lost) warn.push(fmtInt(FL.stacks_lost) + ' stack records were lost (ring buffer full): their time shows as [stack lost].');
    if (FL.weights_lost) warn.push(fmtInt(FL.weights_lost) + ' stack weight updates were lost (kernel map full): the flame graphs miss that time.');
    if (FL.frames_unresolved) warn.push(fmtInt(FL.frames_unresolved) + ' frames could not be named ([unknown]).');
    if (warn.length) {
      var ul = el('ul', { class: 'warnings' });
      warn.forEach(function (t) { ul.appendChild(el('li', { text: t })); });
      s.appendChild(ul);
    }
    var threads = FL.threads || [];
    var sel = el('select', { id: 'flame-thread' });
    sel.appendChild(el('option', { value: 'all', text: 'all threads' }));
    threads.forEach(function (t, i) {
      sel.appendChild(el('option', { value: String(i), 'data-tid': t.tid,
        text: threadRoot(t) + ' (waited ' + fmtDur(t.wait_ns) + ', held ' + fmtDur(t.hold_ns) + ')' }));
    });
    var search = el('input', { type: 'search', id: 'flame-search', placeholder: 'highlight functions…', size: 28 });
    var reset = el('button', { type: 'button', id: 'flame-reset', text: 'reset zoom' });
    s.appendChild(el('div', { class: 'flame-controls' }, [
      el('label', {}, ['thread ', sel]), el('label', {}, ['search ', search]), reset
    ]));
    var boxes = KINDS.map(function (k) { return new FlameBox(s, k); });
    function scope() { return sel.value === 'all' ? threads : [threads[Number(sel.value)]]; }
    function draw() {
      boxes.forEach(function (b) {
        part('flame graph ' + b.kind.key, function () { b.draw(scope(), sel.value, search.value); });
      });
    }
    sel.addEventListener('change', draw);
    search.addEventListener('input', function () {
      boxes.forEach(function (b) {
        if (!b.chart) return;
        if (search.value) b.chart.search(search.value); else b.chart.clear();
      });
    });
    reset.addEventListener('click', function () {
      boxes.forEach(function (b) { if (b.chart) b.chart.resetZoom(); });
    });
    var lastW = 0, timer = null;
    window.addEventListener('resize', function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var w = boxes[0].chartDiv.clientWidth;
        if (w && Math.abs(w - lastW) > 20) { lastW = w; draw(); }
      }, 200);
    });
    draw();
    lastW = boxes[0].chartDiv.clientWidth;
    window.giltraceFlame = { boxes: boxes, draw: draw, select: sel };
  }

  /* ---- probes, footer ---------------------------------------------------------- */

  function probes() {
    var s = section('probes', 'Probes',
      'Where giltrace observed the GIL: the CPython functions probed in the interpreter\'s ELF file.');
    var p = (D.target && D.target.probes) || [];
    if (!p.length) {
      s.appendChild(el('p', { class: 'none', text: 'No probe recorded.' }));
      return;
    }
    var head = ['function', 'role', 'symbol', 'kind', 'inlined into', 'address', 'offset', 'file'];
    var tbody = el('tbody');
    p.forEach(function (x) {
      tbody.appendChild(el('tr', { class: 'probe', 'data-function': x.function, 'data-address': x.address }, [
        el('td', { class: 'mono', text: x.function }),
        el('td', { text: x.role || '' }),
        el('td', { class: 'mono', text: x.symbol }),
        el('td', { text: x.kind }),
        el('td', { class: 'mono', text: x.inlined ? (x.caller || '?') : '-' }),
        el('td', { class: 'mono', text: x.address }),
        el('td', { class: 'num', text: '0x' + Number(x.offset).toString(16) }),
        el('td', { class: 'mono', text: x.file })
      ]));
    });
    s.appendChild(el('div', { class: 'tablewrap' }, [el('table', { id: 'probes-table' }, [
      el('thead', {}, [el('tr', {}, head.map(function (h) { return el('th', { text: h }); }))]), tbody])]));
  }

  function footer() {
    app.appendChild(el('footer', {}, [
      'giltrace ' + (D.giltrace_version || '') + ' · data schema ' + D.schema +
      ' (the JSON is in this file: <script id="giltrace-data">) · charts: Apache ECharts ' +
      (window.echarts && echarts.version || '') + ', Apache License 2.0' +
      (FL && window.d3 ? ' · flame graphs: d3-flame-graph (Apache License 2.0) on d3 ' + d3.version + ' (ISC)' : '')
    ]));
  }

  part('header', header);
  part('summary', summary);
  part('threads', threadsTable);
  part('timeline', timeline);
  part('histograms', histograms);
  part('blocked', blocked);
  part('flame graphs', flameGraphs);
  part('probes', probes);
  part('footer', footer);
  window.addEventListener('resize', function () { charts.forEach(function (c) { c.resize(); }); });
  document.body.setAttribute('data-ready', '1');
})();
