// The Manifold dashboard: live counters and a throughput chart fed by
// Server-Sent Events ($sys topics), the connection list (/connections), a
// pattern watcher over WebSocket (manifold.json) and a publisher (POST /pub).
'use strict';

const $ = (id) => document.getElementById(id);
const num = (v) => Number(v || 0);
const fmt = (n) => n >= 1e9 ? (n / 1e9).toFixed(2) + 'G' : n >= 1e6 ? (n / 1e6).toFixed(2) + 'M'
  : n >= 1e4 ? (n / 1e3).toFixed(1) + 'k' : String(Math.round(n));
const fmtBytes = (n) => n >= 1 << 30 ? (n / (1 << 30)).toFixed(2) + ' GiB' : n >= 1 << 20 ? (n / (1 << 20)).toFixed(1) + ' MiB'
  : n >= 1024 ? (n / 1024).toFixed(1) + ' KiB' : Math.round(n) + ' B';
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));

// ---- Counters and chart --------------------------------------------------
const history = [];  // {t, pub, del}
let last = null;
const MAX_POINTS = 120;

function showStats(s) {
  const now = performance.now() / 1000;
  const cur = {
    t: now, publishes: num(s.publishes), deliveries: num(s.deliveries),
    bytes: num(s.bytesIn) + num(s.bytesOut),
  };
  $('c-connections').textContent = fmt(num(s.connections));
  $('c-protocols').textContent = (s.connectionsByProtocol || [])
    .filter((p) => num(p.connections) > 0)
    .map((p) => p.protocol + ' ' + num(p.connections)).join(' · ');
  $('c-subscriptions').textContent = fmt(num(s.subscriptions));
  $('c-services').textContent = num(s.services) + ' services · ' + num(s.requestsInFlight) + ' requests waiting';
  $('c-publishes').textContent = fmt(cur.publishes) + ' in all';
  $('c-deliveries').textContent = fmt(cur.deliveries) + ' in all';
  $('c-bytes').textContent = fmtBytes(num(s.bytesIn)) + ' in · ' + fmtBytes(num(s.bytesOut)) + ' out';
  const errors = num(s.protocolErrors) + num(s.operationErrors);
  $('c-errors').textContent = fmt(errors);
  $('c-errors-sub').textContent = num(s.slowConsumerDisconnects) + ' slow consumers · ' + num(s.requestsTimedOut) + ' timeouts';
  if (last && cur.t > last.t) {
    const dt = cur.t - last.t;
    const point = {
      t: cur.t, pub: Math.max(0, (cur.publishes - last.publishes) / dt),
      del: Math.max(0, (cur.deliveries - last.deliveries) / dt),
    };
    history.push(point);
    if (history.length > MAX_POINTS) history.shift();
    $('c-pub-rate').textContent = fmt(point.pub);
    $('c-del-rate').textContent = fmt(point.del);
    $('c-bytes-rate').textContent = fmtBytes(Math.max(0, (cur.bytes - last.bytes) / dt)) + '/s';
    drawChart();
  }
  last = cur;
}

function drawChart() {
  const canvas = $('chart');
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = w * ratio; canvas.height = h * ratio;
  const g = canvas.getContext('2d');
  g.scale(ratio, ratio);
  g.clearRect(0, 0, w, h);
  const max = Math.max(10, ...history.map((p) => Math.max(p.pub, p.del))) * 1.15;
  g.strokeStyle = '#263240'; g.fillStyle = '#8b98a5'; g.font = '11px system-ui'; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = Math.round(8 + (h - 24) * i / 4) + 0.5;
    g.beginPath(); g.moveTo(40, y); g.lineTo(w, y); g.stroke();
    g.fillText(fmt(max * (1 - i / 4)), 2, y + 4);
  }
  const line = (key, color) => {
    if (history.length < 2) return;
    g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
    history.forEach((p, i) => {
      const x = 40 + (w - 44) * (i + MAX_POINTS - history.length) / (MAX_POINTS - 1);
      const y = 8 + (h - 24) * (1 - p[key] / max);
      if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
  };
  line('pub', '#4cc3ff');
  line('del', '#b48cff');
}

function loadStats() {
  fetch('/stats').then((r) => r.json()).then(showStats).catch(() => {});
}

// ---- Broker events over SSE ------------------------------------------------
let refreshTimer = null;
function refreshConnectionsSoon() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => { refreshTimer = null; loadConnections(); }, 300);
}

function openEvents() {
  const topics = ['$sys/stats', '$sys/connection/added', '$sys/connection/removed',
    '$sys/subscription/added', '$sys/subscription/removed'];
  const url = '/sse?format=json&' + topics.map((t) => 'topic=' + encodeURIComponent(t)).join('&');
  const events = new EventSource(url);
  events.onopen = () => { $('status').className = 'status live'; $('status').textContent = 'live'; };
  events.onerror = () => { $('status').className = 'status down'; $('status').textContent = 'reconnecting…'; };
  events.addEventListener('$sys/stats', (e) => {
    const event = JSON.parse(e.data);
    if (event.statistics) showStats(event.statistics);
  });
  for (const t of topics.slice(1)) events.addEventListener(t, refreshConnectionsSoon);
}

// ---- Connections ---------------------------------------------------------------
function loadConnections() {
  fetch('/connections').then((r) => r.json()).then((list) => {
    const rows = (list.connections || []).map((c) => {
      const subs = (c.subscriptions || []).map((s) => '<code>' + esc(s.pattern) +
        (s.queueGroup ? ' (' + esc(s.queueGroup) + ')' : '') + '</code>').join('');
      const served = (c.servedTopics || []).map((t) => '<code>' + esc(t) + '</code>').join('');
      return '<tr><td>' + esc(c.sessionId) + '</td><td>' + esc(c.clientName || '–') +
        '</td><td><span class="proto">' + esc(c.protocol) + '</span></td><td>' + esc(c.peer) +
        '</td><td>' + (subs || '<span class="empty">none</span>') + '</td><td>' + (served || '') +
        '</td><td>' + fmtBytes(num(c.pendingOutputBytes)) + '</td></tr>';
    });
    $('connections').innerHTML = rows.join('') || '<tr><td colspan="7" class="empty">No connections.</td></tr>';
    $('conn-hint').textContent = num(list.totalConnections) + ' in all' + (list.truncated ? ' (list cut short)' : '');
  }).catch(() => {});
}

// ---- Watch a pattern (WebSocket, manifold.json) ----------------------------
let watch = null;
let watched = 0;
function addMessage(d) {
  const list = $('messages');
  if (watched === 0) list.innerHTML = '';
  watched++;
  const li = document.createElement('li');
  const payload = d.base64 ? '[base64] ' + d.payload : d.payload;
  li.innerHTML = '<span class="seq">#' + watched + '</span><span class="topic">' + esc(d.topic) + '</span>' + esc(payload || '');
  list.prepend(li);
  while (list.children.length > 200) list.lastChild.remove();
}

function toggleWatch(event) {
  event.preventDefault();
  if (watch) { watch.close(); watch = null; $('sub-button').textContent = 'Subscribe'; $('sub-button').className = ''; return; }
  const pattern = $('sub-pattern').value.trim();
  if (!pattern) return;
  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws', 'manifold.json');
  watch = ws;
  $('sub-button').textContent = 'Stop'; $('sub-button').className = 'stop';
  ws.onopen = () => {
    ws.send(JSON.stringify({ hello: { protocolVersion: 1, clientName: 'dashboard' } }));
    ws.send(JSON.stringify({ subscribe: { opId: '1', pattern } }));
  };
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.deliver) addMessage(m.deliver);
    else if (m.ack && m.ack.opId === '1') $('sub-pattern').dataset.subscribed = 'yes';
    else if (m.error) addMessage({ topic: 'error', payload: m.error.code + ': ' + m.error.message });
  };
  ws.onclose = () => { if (watch === ws) { watch = null; $('sub-button').textContent = 'Subscribe'; $('sub-button').className = ''; } };
}

// ---- Publish (POST /pub) ---------------------------------------------------------
function publish(event) {
  event.preventDefault();
  const topic = $('pub-topic').value.trim();
  if (!topic) { $('pub-result').textContent = 'give a topic'; return; }
  fetch('/pub/' + topic.split('/').map(encodeURIComponent).join('/'), { method: 'POST', body: $('pub-payload').value })
    .then((r) => r.json().then((body) => ({ ok: r.ok, body })))
    .then(({ ok, body }) => {
      $('pub-result').textContent = ok ? 'delivered to ' + body.delivered + ' subscription(s)'
        : body.error.code + ': ' + body.error.message;
    })
    .catch((e) => { $('pub-result').textContent = String(e); });
}

$('sub-form').addEventListener('submit', toggleWatch);
$('pub-form').addEventListener('submit', publish);
window.addEventListener('resize', drawChart);
loadStats();
loadConnections();
openEvents();
setInterval(loadConnections, 5000);
drawChart();
