// Wharf dashboard core: DOM building (text only, never HTML strings), the API
// client (bearer token from session storage), formatting, polling that pauses
// while the tab is hidden, and announcements for screen readers.
'use strict';

window.Wharf = (function () {
  const W = {};
  const kTokenKey = 'wharf.token';

  // h('a', {href: '#/jobs', class: 'x', on: {click: f}}, 'text', child, [children])
  // Strings become text nodes, so data can never turn into markup.
  W.h = function (tag, attrs, ...children) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [key, value] of Object.entries(attrs)) {
        if (value === undefined || value === null || value === false) continue;
        if (key === 'on') {
          for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
        } else if (key === 'class') {
          el.className = value;
        } else if (key === 'dataset') {
          Object.assign(el.dataset, value);
        } else if (key in el && typeof value !== 'string') {
          el[key] = value;
        } else {
          el.setAttribute(key, value === true ? '' : String(value));
        }
      }
    }
    W.append(el, children);
    return el;
  };

  W.append = function (el, children) {
    for (const child of children) {
      if (child === undefined || child === null || child === false) continue;
      if (Array.isArray(child)) W.append(el, child);
      else if (child instanceof Node) el.appendChild(child);
      else el.appendChild(document.createTextNode(String(child)));
    }
    return el;
  };

  W.clear = function (el) {
    while (el.firstChild) el.removeChild(el.firstChild);
    return el;
  };

  // Replaces el's children, keeping keyboard focus on the element with the
  // same data-focus-key (a re-rendered table keeps the focused checkbox).
  W.replace = function (el, ...children) {
    const active = document.activeElement;
    const key = active && el.contains(active) ? active.dataset.focusKey : undefined;
    W.clear(el);
    W.append(el, children);
    if (key) {
      const again = el.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
      if (again) again.focus();
    }
  };

  W.token = () => sessionStorage.getItem(kTokenKey);
  W.setToken = (t) => (t ? sessionStorage.setItem(kTokenKey, t) : sessionStorage.removeItem(kTokenKey));

  class ApiError extends Error {
    constructor(status, code, message, field) {
      super(message);
      this.status = status;
      this.code = code;
      this.field = field;
    }
  }
  W.ApiError = ApiError;

  // Called when the server says the token is not (or no longer) valid.
  W.onUnauthorized = () => {};

  async function errorFrom(res) {
    let code = 'http_' + res.status;
    let message = `${res.status} ${res.statusText}`;
    let field = null;
    try {
      const body = await res.json();
      if (body && body.error) {
        code = body.error.code || code;
        message = body.error.message || message;
        field = body.error.field || null;
      }
    } catch (e) {
      // Not JSON: keep the status line.
    }
    return new ApiError(res.status, code, message, field);
  }

  // fetch() with the token; resolves to the Response, throws ApiError for 4xx/5xx.
  W.fetchApi = async function (method, path, options = {}) {
    const headers = Object.assign({}, options.headers || {});
    const token = W.token();
    if (token) headers['Authorization'] = 'Bearer ' + token;
    let body = options.body;
    if (options.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(options.json);
    }
    let res;
    try {
      res = await fetch(path, { method, headers, body, cache: 'no-store', credentials: 'omit' });
    } catch (e) {
      throw new ApiError(0, 'unreachable', 'the server cannot be reached (' + e.message + ')', null);
    }
    if (!res.ok) {
      const error = await errorFrom(res);
      if (res.status === 401 && !options.noLogout) W.onUnauthorized(error);
      throw error;
    }
    return res;
  };

  // JSON in, JSON out; resolves to {status, body, headers}.
  W.api = async function (method, path, json, options = {}) {
    const res = await W.fetchApi(method, path, Object.assign({}, options, json === undefined ? {} : { json }));
    const text = res.status === 204 ? '' : await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
  };
  W.get = (path, options) => W.api('GET', path, undefined, options);

  W.query = function (params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v === undefined || v === null || v === '') continue;
      q.set(k, String(v));
    }
    const s = q.toString();
    return s ? '?' + s : '';
  };

  // Saves a Blob under a file name (the browser's download).
  W.saveBlob = function (blob, name) {
    const url = URL.createObjectURL(blob);
    const a = W.h('a', { href: url, download: name, class: 'sr-only' });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  };

  // Downloads an API resource with the token (a plain link cannot send it).
  W.download = async function (path, fallbackName) {
    const res = await W.fetchApi('GET', path);
    let name = fallbackName;
    const disposition = res.headers.get('Content-Disposition') || '';
    const m = /filename="([^"]+)"/.exec(disposition);
    if (m) name = m[1];
    W.saveBlob(await res.blob(), name);
    return name;
  };

  // ---- formatting ----
  // Today's times as 14:03:27, older ones with their date; the full
  // RFC 3339 time is in the element's title.
  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const dateFormat = new Intl.DateTimeFormat(undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
  });
  W.time = function (iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    return d.toDateString() === new Date().toDateString() ? timeFormat.format(d) : dateFormat.format(d);
  };
  W.timeEl = function (iso) {
    if (!iso) return W.h('span', { class: 'muted' }, '—');
    return W.h('time', { datetime: iso, title: iso }, W.time(iso));
  };
  W.duration = function (ms) {
    if (ms === null || ms === undefined || isNaN(ms)) return '';
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + ' s';
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${s % 60} s`;
    const h = Math.floor(m / 60);
    return `${h} h ${m % 60} min`;
  };
  W.number = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : String(n ?? ''));
  W.bytes = function (n) {
    if (typeof n !== 'number') return '';
    if (n < 1024) return n + ' B';
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let v = n / 1024, i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; ++i; }
    return v.toFixed(v < 10 ? 1 : 0) + ' ' + units[i];
  };

  // An AEM status label as a badge (Active, Success, Fail, Error, Scheduled, Queued, Stopped).
  W.statusBadge = function (label) {
    const cls = 'status status-' + String(label || '').toLowerCase().replace(/[^a-z]/g, '');
    return W.h('span', { class: cls }, label || '');
  };

  // ---- messages ----
  W.announce = function (text) {
    const el = document.getElementById('announce');
    el.textContent = '';
    // A new text node in a cleared region is read even when it repeats.
    setTimeout(() => { el.textContent = text; }, 30);
  };

  // A message box that stays on the page (role=status for success, alert for errors).
  W.message = function (box, kind, ...content) {
    W.clear(box);
    delete box.dataset.loadError;
    box.className = 'message message-' + kind;
    box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    W.append(box, content);
    box.hidden = false;
  };
  W.errorText = function (e) {
    if (e instanceof ApiError) {
      const where = e.field ? ` (field: ${e.field})` : '';
      return `${e.message}${where} [${e.code}${e.status ? ', HTTP ' + e.status : ''}]`;
    }
    return String(e && e.message ? e.message : e);
  };

  // ---- polling ----
  // Runs fn now and then every `interval()` ms while the page is current; the
  // timer waits while the tab is hidden and fires at once when it is shown.
  W.poller = function (fn, interval) {
    let timer = null;
    let stopped = false;
    let running = false;
    const schedule = () => {
      clearTimeout(timer);
      if (stopped || document.hidden) return;
      timer = setTimeout(tick, interval());
    };
    const tick = async () => {
      if (stopped || running) return;
      running = true;
      try { await fn(); } catch (e) { /* fn shows its own errors */ }
      running = false;
      schedule();
    };
    const onVisibility = () => {
      if (document.hidden) clearTimeout(timer);
      else tick();
    };
    document.addEventListener('visibilitychange', onVisibility);
    tick();
    return {
      now: tick,
      stop() {
        stopped = true;
        clearTimeout(timer);
        document.removeEventListener('visibilitychange', onVisibility);
      },
    };
  };

  // ---- CSV ----
  // Splits CSV text into records, each {text (the raw record, line end
  // included), cells}; quoted fields may hold commas, quotes and newlines.
  W.parseCsv = function (text) {
    const records = [];
    let i = 0;
    while (i < text.length) {
      const start = i;
      const cells = [];
      let cell = '';
      let quoted = false;
      for (;;) {
        if (i >= text.length) { cells.push(cell); break; }
        const c = text[i];
        if (quoted) {
          if (c === '"') {
            if (text[i + 1] === '"') { cell += '"'; i += 2; continue; }
            quoted = false; ++i; continue;
          }
          cell += c; ++i; continue;
        }
        if (c === '"') { quoted = true; ++i; continue; }
        if (c === ',') { cells.push(cell); cell = ''; ++i; continue; }
        if (c === '\r' && text[i + 1] === '\n') { cells.push(cell); i += 2; break; }
        if (c === '\n') { cells.push(cell); ++i; break; }
        cell += c; ++i;
      }
      records.push({ text: text.slice(start, i), cells });
    }
    return records;
  };

  // ---- pages ----
  // A page is {title, render(container, params) -> optional cleanup function}.
  W.pages = {};
  W.user = null;
  W.operations = null;  // name -> descriptor, from /api/operations
  W.operationsByTopic = {};

  W.loadOperations = async function () {
    if (W.operations) return W.operations;
    const r = await W.get('/api/operations');
    W.operations = {};
    for (const op of r.body.operations || []) {
      W.operations[op.name] = op;
      W.operationsByTopic[op.topic] = op;
    }
    return W.operations;
  };
  W.operationTitle = function (topic) {
    const op = W.operationsByTopic[topic];
    return op && op.title ? op.title : topic;
  };
  W.canOperate = () => W.user && (W.user.role === 'operator' || W.user.role === 'admin');

  W.heading = function (text, ...extra) {
    return W.h('div', { class: 'page-head' }, W.h('h1', { id: 'page-title', tabindex: '-1' }, text), extra);
  };

  // A table inside a scrolling wrapper (narrow screens scroll it sideways).
  W.table = function (caption, headers, rows, attrs = {}) {
    return W.h('div', { class: 'table-wrap' },
      W.h('table', attrs,
        caption ? W.h('caption', { class: 'sr-only' }, caption) : null,
        W.h('thead', null, W.h('tr', null, headers.map((hd) =>
          typeof hd === 'string' ? W.h('th', { scope: 'col' }, hd) : hd))),
        W.h('tbody', null, rows)));
  };

  return W;
})();
