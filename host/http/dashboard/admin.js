// Inbox (#/inbox), queues (#/queues), plugins (#/plugins) and configuration
// status (#/config).
'use strict';

(function (W) {
  const h = W.h;

  // ---- inbox ----
  W.refreshInboxCount = async function () {
    const badge = document.getElementById('inbox-count');
    try {
      const r = await W.get('/api/inbox' + W.query({ unread: true, limit: 1 }));
      const n = r.body.unread || 0;
      badge.textContent = String(n);
      badge.hidden = n === 0;
      badge.setAttribute('aria-label', `${n} unread`);
      return n;
    } catch (e) {
      badge.hidden = true;
      return null;
    }
  };

  W.pages.inbox = {
    title: 'Inbox',
    render(container, params) {
      const unreadOnly = params.get('unread') === 'true';
      const messageBox = h('div', { id: 'inbox-message', hidden: true });
      const list = h('ul', { id: 'inbox-list', class: 'inbox' });
      const moreBtn = h('button', { type: 'button', id: 'inbox-more', hidden: true, on: { click: () => load(true) } }, 'Show more');
      const readAll = h('button', { type: 'button', id: 'inbox-read-all', on: { click: markAll } }, 'Mark all as read');
      const toggle = h('a', { href: unreadOnly ? '#/inbox' : '#/inbox?unread=true' }, unreadOnly ? 'Show all' : 'Show unread only');
      const summary = h('p', { id: 'inbox-summary', class: 'muted' });
      W.append(container, [W.heading('Inbox'), h('div', { class: 'toolbar' }, readAll, toggle), summary, messageBox, list, moreBtn]);
      let items = [];
      let cursor = null;

      async function load(more) {
        try {
          const r = await W.get('/api/inbox' + W.query({ unread: unreadOnly ? 'true' : undefined, limit: 50, cursor: more ? cursor : undefined }));
          items = more ? items.concat(r.body.items) : r.body.items;
          cursor = r.body.next_cursor || null;
          summary.textContent = `${r.body.unread} unread`;
          render();
        } catch (e) {
          const text = e.status === 404 ? 'This server has no inbox yet.' : 'Cannot load the inbox: ' + W.errorText(e);
          W.message(messageBox, 'error', text);
        }
      }

      function render() {
        const rows = items.map((it) => h('li', { class: 'inbox-item' + (it.read ? '' : ' unread'), dataset: { id: String(it.id), jobId: String(it.job_id) } },
          h('div', { class: 'inbox-head' },
            W.statusBadge(outcomeLabel(it.outcome)),
            h('strong', null, it.title),
            it.read ? null : h('span', { class: 'flag' }, 'unread')),
          h('p', null, it.message),
          h('p', { class: 'muted small' }, W.timeEl(it.created), ' · ', it.operation || it.topic, ' · ',
            h('a', { href: '#/jobs/' + it.job_id, class: 'inbox-job' }, `Open job ${it.job_id}`)),
          it.read ? null : h('button', { type: 'button', class: 'quiet', dataset: { focusKey: 'read-' + it.id },
            on: { click: () => markRead(it) } }, 'Mark as read')));
        if (!rows.length) rows.push(h('li', { class: 'muted' }, unreadOnly ? 'No unread notifications.' : 'No notifications.'));
        W.replace(list, rows);
        moreBtn.hidden = !cursor;
      }

      async function markRead(it) {
        try {
          await W.api('POST', `/api/inbox/${encodeURIComponent(it.id)}/read`);
          it.read = true;
          render();
          const n = await W.refreshInboxCount();
          if (n !== null) summary.textContent = `${n} unread`;
          W.announce('Marked as read');
        } catch (e) {
          W.message(messageBox, 'error', 'Cannot mark as read: ' + W.errorText(e));
        }
      }

      async function markAll() {
        try {
          const r = await W.api('POST', '/api/inbox/read-all');
          for (const it of items) it.read = true;
          render();
          summary.textContent = `${r.body.unread} unread`;
          await W.refreshInboxCount();
          W.announce('All notifications marked as read');
        } catch (e) {
          W.message(messageBox, 'error', 'Cannot mark all as read: ' + W.errorText(e));
        }
      }

      const poll = W.poller(() => load(false), () => 10000);
      return () => poll.stop();
    },
  };

  function outcomeLabel(outcome) {
    return { succeeded: 'Success', failed: 'Fail', given_up: 'Fail', error: 'Error', stopped: 'Stopped' }[outcome] || outcome;
  }

  // ---- queues ----
  function stat(n) { return W.number(n ?? 0); }

  W.pages.queues = {
    title: 'Queues',
    render(container) {
      const messageBox = h('div', { hidden: true });
      const box = h('div', { id: 'queues' });
      const instancesBox = h('div', { id: 'instances' });
      W.append(container, [W.heading('Queues'), messageBox, box, instancesBox]);
      // The instances sharing the job store: one host on SQLite, every
      // registered wharfd of a cluster on PostgreSQL.
      async function loadInstances() {
        try {
          const r = await W.get('/api/cluster');
          const rows = (r.body.instances || []).map((i) => h('tr', { dataset: { instance: i.id }, class: i.expired ? 'problem' : '' },
            h('th', { scope: 'row', class: 'mono' }, i.id, i.self ? h('div', { class: 'muted small' }, 'this instance') : null),
            h('td', { class: 'mono' }, i.address || '—'),
            h('td', null, i.expired ? h('span', { class: 'flag flag-warn' }, 'lease expired') : 'live'),
            h('td', null, W.timeEl(i.started)),
            h('td', null, W.timeEl(i.last_heartbeat)),
            h('td', null, i.lease_ms ? W.duration(i.lease_ms) : '—'),
            h('td', null, W.number(i.running_jobs ?? 0))));
          W.replace(instancesBox,
            h('h2', null, r.body.backend === 'postgresql' ? `Cluster instances (${rows.length})` : 'Instance'),
            W.table('Instances', ['Instance', 'Address', 'State', 'Started', 'Last heartbeat', 'Lease', 'Running jobs'], rows, { id: 'instances-table' }));
        } catch (e) {
          W.replace(instancesBox, h('p', { class: 'muted' }, 'Instances unavailable: ' + W.errorText(e)));
        }
      }
      async function load() {
        loadInstances();
        try {
          const r = await W.get('/api/queues');
          const rows = r.body.queues.map((q) => {
            const j = q.jobs || {};
            const limit = q.max_parallel_configured !== undefined && q.max_parallel_configured !== q.max_parallel
              ? `${q.max_parallel} (configured ${q.max_parallel_configured})` : String(q.max_parallel ?? '—');
            return h('tr', { dataset: { queue: q.name } },
              h('th', { scope: 'row' }, q.name, q.title ? h('div', { class: 'muted small' }, q.title) : null),
              h('td', null, q.state),
              h('td', null, q.type || '—'),
              h('td', null, (q.topics || []).join(', ')),
              h('td', null, limit),
              h('td', null, q.retries === undefined ? '—' : `${q.retries} every ${q.retry_delay_ms} ms ×${q.retry_backoff}`),
              h('td', null, q.priority || '—'),
              h('td', null, `${q.running ?? 0}${q.overdue ? ` (${q.overdue} overdue)` : ''}`),
              h('td', null, stat(j.queued), ' / ', stat(j.scheduled)),
              h('td', null, stat(j.succeeded)),
              h('td', null, `${stat(j.failed)} / ${stat(j.given_up)} / ${stat(j.error)} / ${stat(j.stopped)}`),
              h('td', null, `${W.duration(j.average_wait_ms)} / ${W.duration(j.average_processing_ms)}`),
              h('td', null, q.held_by_retry ? `held by job ${q.held_by_retry}` : '',
                (q.topics_without_consumer || []).length ? h('div', { class: 'flag flag-warn' }, 'no consumer: ' + q.topics_without_consumer.join(', ')) : null));
          });
          W.replace(box, W.table('Queues', ['Queue', 'State', 'Type', 'Topics', 'Max parallel', 'Retries', 'Priority', 'Running',
            'Queued / scheduled', 'Succeeded', 'Failed / given up / error / stopped', 'Avg wait / processing', 'Notes'], rows, { id: 'queues-table' }));
          messageBox.hidden = true;
        } catch (e) {
          W.message(messageBox, 'error', 'Cannot load queues: ' + W.errorText(e));
        }
      }
      const poll = W.poller(load, () => 5000);
      return () => poll.stop();
    },
  };

  // ---- plugins ----
  W.pages.plugins = {
    title: 'Plugins',
    render(container) {
      const messageBox = h('div', { hidden: true });
      const box = h('div', { id: 'plugins' });
      W.append(container, [W.heading('Plugins'), messageBox, box]);
      async function load() {
        try {
          const r = await W.get('/api/plugins');
          const rows = r.body.plugins.map((p) => h('tr', { dataset: { plugin: p.id }, class: p.state === 'failed' || p.quarantined ? 'problem' : '' },
            h('th', { scope: 'row' }, p.id, p.description ? h('div', { class: 'muted small' }, p.description) : null),
            h('td', null, p.version),
            h('td', null, h('span', { class: 'state state-' + p.state }, p.state)),
            h('td', null, p.abi),
            h('td', null, p.file, p.content_sha256 ? h('div', { class: 'muted small mono', title: p.content_sha256 }, p.content_sha256.slice(0, 12)) : null),
            h('td', null, (p.provides || []).join(', ')),
            h('td', null, [p.reason, p.last_error].filter(Boolean).join(' · '),
              (p.missing || []).length ? h('div', null, 'missing: ' + p.missing.join(', ')) : null)));
          W.replace(box, W.table('Plugins', ['Plugin', 'Version', 'State', 'ABI', 'File', 'Provides', 'Failure, quarantine or waiting reason'], rows, { id: 'plugins-table' }));
          messageBox.hidden = true;
        } catch (e) {
          W.message(messageBox, 'error', 'Cannot load plugins: ' + W.errorText(e));
        }
      }
      const poll = W.poller(load, () => 5000);
      return () => poll.stop();
    },
  };

  // ---- config ----
  W.pages.config = {
    title: 'Configuration',
    render(container) {
      const messageBox = h('div', { hidden: true });
      const box = h('div', { id: 'config' });
      const rescan = h('button', { type: 'button', id: 'config-rescan', disabled: !(W.user && W.user.role === 'admin'),
        title: W.user && W.user.role === 'admin' ? 'Read every configuration file again now' : 'Needs the admin role',
        on: { click: async () => {
          try { await W.api('POST', '/api/config/rescan'); W.message(messageBox, 'info', 'Configuration read again.'); poll.now(); }
          catch (e) { W.message(messageBox, 'error', 'Rescan refused: ' + W.errorText(e)); }
        } } }, 'Rescan now');
      W.append(container, [W.heading('Configuration', rescan), messageBox, box]);
      async function load() {
        try {
          const r = await W.get('/api/config');
          const files = r.body.files || [];
          const refused = files.filter((f) => f.state === 'refused' || (f.errors || []).length);
          const rows = files.map((f) => h('tr', { dataset: { file: f.file }, class: refused.includes(f) ? 'problem' : '' },
            h('th', { scope: 'row', class: 'mono' }, f.file),
            h('td', null, f.schema + (f.instance ? ` (${f.instance})` : '')),
            h('td', null, h('span', { class: 'state state-' + f.state }, f.state)),
            h('td', null, f.applied_version ? `v${f.applied_version}` : '—', ' ', W.timeEl(f.applied_at)),
            h('td', null,
              (f.errors || []).length ? h('ul', { class: 'errors' }, f.errors.map((e) => h('li', { class: 'mono' }, e.text))) : null,
              f.reason ? h('div', null, f.reason) : null,
              f.refused_at ? h('div', { class: 'muted small' }, 'refused ', W.timeEl(f.refused_at)) : null)));
          W.replace(box,
            h('p', { id: 'config-summary' }, `${files.length} file(s); ${refused.length} with a refused edit (the last good version stays in force).`),
            W.table('Configuration files', ['File', 'Schema', 'State', 'In force', 'Last refusal (file:line:col: reason)'], rows, { id: 'config-table' }));
          messageBox.hidden = true;
        } catch (e) {
          W.message(messageBox, 'error', 'Cannot load the configuration status: ' + W.errorText(e));
        }
      }
      const poll = W.poller(load, () => 5000);
      return () => poll.stop();
    },
  };
})(window.Wharf);
