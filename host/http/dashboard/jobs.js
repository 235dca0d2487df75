// The Async Job Status page (#/jobs) and the job details page (#/jobs/<id>).
'use strict';

(function (W) {
  const h = W.h;
  const kLabels = ['Active', 'Queued', 'Scheduled', 'Success', 'Fail', 'Error', 'Stopped'];
  const kPageSize = 25;
  const kDeleteRefused = 'Active and Queued jobs cannot be deleted: stop the job first, or wait until it ends.';

  function progressCell(job) {
    const p = job.progress || {};
    if (job.state === 'active' && p.total > 0) {
      const percent = Math.floor(p.percent || 0);
      const eta = job.eta ? 'ETA ' + W.time(job.eta) : 'ETA unknown';
      return h('div', { class: 'progress' },
        h('progress', { max: p.total, value: p.done, 'aria-label': `Job ${job.id} progress` }),
        h('span', { class: 'progress-text' }, `${percent}% (${W.number(p.done)} of ${W.number(p.total)}) · ${eta}`));
    }
    if (job.state === 'active') return h('span', { class: 'muted' }, 'running');
    if (p.total > 0) return h('span', { class: 'muted' }, `${W.number(p.done)} of ${W.number(p.total)}`);
    return h('span', { class: 'muted' }, '—');
  }

  function flags(job) {
    const out = [];
    if (job.stop_requested && !job.final) out.push(h('span', { class: 'flag' }, 'stopping'));
    if (job.stuck) out.push(h('span', { class: 'flag flag-warn', title: 'no progress, log or checkpoint for 5 minutes' }, 'stuck'));
    if (job.overdue) out.push(h('span', { class: 'flag flag-warn', title: 'still running 30 s after a stop' }, 'overdue'));
    return out;
  }

  // ---- #/jobs ----
  W.pages.jobs = {
    title: 'Jobs',
    render(container, params) {
      const filter = {
        state: params.get('status') || '',
        topic: params.get('operation') || '',
        text: params.get('text') || '',
      };
      const cursors = [null];  // cursors[n] opens page n
      let page = 0;
      let jobs = [];
      let nextCursor = null;
      const selected = new Set();
      const lastStatus = new Map();

      const statusSelect = h('select', { id: 'f-status', name: 'status' },
        h('option', { value: '' }, 'Any status'),
        kLabels.map((l) => h('option', { value: l, selected: l === filter.state }, l)));
      const opSelect = h('select', { id: 'f-operation', name: 'operation' },
        h('option', { value: '' }, 'Any operation'));
      const textInput = h('input', { id: 'f-text', name: 'text', type: 'search', value: filter.text,
        placeholder: 'path, description, user…' });
      const filterForm = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter jobs',
        on: { submit: (e) => { e.preventDefault(); applyFilter(); } } },
        h('div', { class: 'field' }, h('label', { for: 'f-status' }, 'Status'), statusSelect),
        h('div', { class: 'field' }, h('label', { for: 'f-operation' }, 'Operation'), opSelect),
        h('div', { class: 'field grow' }, h('label', { for: 'f-text' }, 'Text'), textInput),
        h('button', { type: 'submit' }, 'Apply'));

      const stopBtn = h('button', { type: 'button', id: 'act-stop', on: { click: stopSelected } }, 'Stop');
      const openBtn = h('button', { type: 'button', id: 'act-open', on: { click: openSelected } }, 'Open');
      const deleteHint = h('span', { id: 'delete-hint', class: 'hint', hidden: true }, kDeleteRefused);
      const deleteBtn = h('button', { type: 'button', id: 'act-delete', 'aria-describedby': 'delete-hint',
        on: { click: deleteSelected } }, 'Delete');
      const downloadBtn = h('button', { type: 'button', id: 'act-download', on: { click: downloadSelected } }, 'Download CSV');
      const selectionText = h('span', { id: 'selection', class: 'muted' });
      const toolbar = h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Actions on the selected jobs' },
        stopBtn, openBtn, deleteBtn, downloadBtn, selectionText, deleteHint);
      const messageBox = h('div', { id: 'jobs-message', hidden: true });

      const selectAll = h('input', { type: 'checkbox', id: 'select-all', 'aria-label': 'Select all jobs on this page',
        on: { change: () => { for (const j of jobs) { if (selectAll.checked) selected.add(j.id); else selected.delete(j.id); } renderRows(); } } });
      const tbody = h('tbody');
      const table = h('div', { class: 'table-wrap' },
        h('table', { id: 'jobs-table', class: 'jobs' },
          h('caption', { class: 'sr-only' }, 'Jobs, newest first'),
          h('thead', null, h('tr', null,
            h('th', { scope: 'col', class: 'select' }, selectAll),
            ['Operation', 'Description', 'Status', 'Progress', 'Submitted by', 'Created', 'Started', 'Finished']
              .map((t, i) => h('th', { scope: 'col', class: i >= 6 ? 'wide-only' : '' }, t)))),
          tbody));
      const emptyText = h('p', { id: 'jobs-empty', class: 'muted', hidden: true }, 'No jobs match.');
      const prevBtn = h('button', { type: 'button', id: 'page-prev', on: { click: () => goPage(page - 1) } }, '← Newer');
      const nextBtn = h('button', { type: 'button', id: 'page-next', on: { click: () => goPage(page + 1) } }, 'Older →');
      const pageText = h('span', { id: 'page-number', class: 'muted' });
      const pager = h('nav', { class: 'pager', 'aria-label': 'Pages of jobs' }, prevBtn, pageText, nextBtn);
      const updated = h('span', { class: 'muted small', id: 'jobs-updated' });

      W.append(container, [W.heading('Async Job Status', updated), filterForm, toolbar, messageBox, table, emptyText, pager]);

      W.loadOperations().then((ops) => {
        for (const op of Object.values(ops))
          opSelect.appendChild(h('option', { value: op.topic, selected: op.topic === filter.topic }, op.title || op.name));
      }).catch(() => {});

      function applyFilter() {
        const q = new URLSearchParams();
        if (statusSelect.value) q.set('status', statusSelect.value);
        if (opSelect.value) q.set('operation', opSelect.value);
        if (textInput.value.trim()) q.set('text', textInput.value.trim());
        const hash = '#/jobs' + (q.toString() ? '?' + q : '');
        if (location.hash === hash) poll.now(); else location.hash = hash;
      }

      function goPage(n) {
        if (n < 0 || n >= cursors.length) return;
        page = n;
        selected.clear();
        poll.now();
        table.querySelector('table').focus?.();
      }

      async function load() {
        const q = { limit: kPageSize, cursor: cursors[page], state: filter.state, topic: filter.topic, text: filter.text };
        let r;
        try {
          r = await W.get('/api/jobs' + W.query(q));
        } catch (e) {
          W.message(messageBox, 'error', 'Cannot load jobs: ' + W.errorText(e));
          messageBox.dataset.loadError = '1';
          return;
        }
        // A load error goes away with the next good load; action results stay.
        if (messageBox.dataset.loadError) { messageBox.hidden = true; delete messageBox.dataset.loadError; }
        jobs = r.body.jobs || [];
        nextCursor = r.body.next_cursor;
        cursors.length = page + 1;
        if (nextCursor) cursors.push(nextCursor);
        for (const job of jobs) {
          const before = lastStatus.get(job.id);
          if (before && before !== job.status) W.announce(`Job ${job.id} is now ${job.status}`);
          lastStatus.set(job.id, job.status);
        }
        const onPage = new Set(jobs.map((j) => j.id));
        for (const id of [...selected]) if (!onPage.has(id)) selected.delete(id);
        updated.textContent = 'Updated ' + new Date().toLocaleTimeString();
        renderRows();
      }

      function renderRows() {
        const rows = jobs.map((job) => {
          const box = h('input', { type: 'checkbox', checked: selected.has(job.id),
            'aria-label': `Select job ${job.id}: ${job.description}`, dataset: { focusKey: 'sel-' + job.id },
            on: { change: (e) => { if (e.target.checked) selected.add(job.id); else selected.delete(job.id); updateToolbar(); } } });
          return h('tr', { dataset: { jobId: String(job.id), status: job.status }, class: selected.has(job.id) ? 'selected' : '' },
            h('td', { class: 'select' }, box),
            h('td', null, W.operationTitle(job.topic)),
            h('td', null, h('a', { href: '#/jobs/' + job.id, dataset: { focusKey: 'open-' + job.id } }, job.description), ' ', flags(job)),
            h('td', { class: 'status-cell' }, W.statusBadge(job.status)),
            h('td', { class: 'progress-cell' }, progressCell(job)),
            h('td', null, job.submitted_by),
            h('td', null, W.timeEl(job.created)),
            h('td', { class: 'wide-only' }, W.timeEl(job.started)),
            h('td', { class: 'wide-only' }, W.timeEl(job.finished)));
        });
        W.replace(tbody, rows);
        emptyText.hidden = jobs.length > 0;
        selectAll.checked = jobs.length > 0 && jobs.every((j) => selected.has(j.id));
        prevBtn.disabled = page === 0;
        nextBtn.disabled = !nextCursor;
        pageText.textContent = `Page ${page + 1}`;
        updateToolbar();
      }

      function selectedJobs() { return jobs.filter((j) => selected.has(j.id)); }

      function updateToolbar() {
        const sel = selectedJobs();
        const canOperate = W.canOperate();
        for (const tr of tbody.children) tr.classList.toggle('selected', selected.has(Number(tr.dataset.jobId)));
        selectionText.textContent = sel.length ? `${sel.length} selected` : 'Nothing selected: Download takes every listed job';
        stopBtn.disabled = !canOperate || sel.length === 0 || !sel.some((j) => j.stoppable);
        openBtn.disabled = sel.length !== 1;
        const undeletable = sel.filter((j) => !j.deletable);
        deleteBtn.disabled = !canOperate || sel.length === 0 || undeletable.length > 0;
        if (undeletable.length) {
          deleteBtn.title = kDeleteRefused;
          deleteHint.hidden = false;
        } else {
          deleteBtn.title = canOperate ? 'Delete the selected jobs' : 'Deleting needs the operator role';
          deleteHint.hidden = true;
        }
        stopBtn.title = canOperate ? 'Stop the selected active or waiting jobs' : 'Stopping needs the operator role';
      }

      async function stopSelected() {
        const sel = selectedJobs().filter((j) => j.stoppable);
        const done = [], failed = [];
        for (const job of sel) {
          try { await W.api('POST', `/api/jobs/${job.id}/stop`); done.push(job.id); }
          catch (e) { failed.push(`job ${job.id}: ${W.errorText(e)}`); }
        }
        report('Stop requested for job', done, failed);
        poll.now();
      }

      function openSelected() {
        const sel = selectedJobs();
        if (sel.length === 1) location.hash = '#/jobs/' + sel[0].id;
      }

      async function deleteSelected() {
        const sel = selectedJobs();
        if (!sel.length) return;
        if (!confirm(`Delete ${sel.length} job(s) with their logs and reports?`)) return;
        const done = [], failed = [];
        for (const job of sel) {
          try { await W.api('DELETE', `/api/jobs/${job.id}`); done.push(job.id); selected.delete(job.id); }
          catch (e) { failed.push(`job ${job.id}: ${W.errorText(e)}`); }
        }
        report('Deleted job', done, failed);
        poll.now();
      }

      // The CSV of the list as the API gives it (GET /api/jobs.csv with the
      // filters); with a selection, only the selected jobs' records.
      async function downloadSelected() {
        const q = { state: filter.state, topic: filter.topic, text: filter.text };
        try {
          if (!selected.size) {
            const name = await W.download('/api/jobs.csv' + W.query(q), 'jobs.csv');
            W.message(messageBox, 'info', `Downloaded ${name}.`);
            return;
          }
          const res = await W.fetchApi('GET', '/api/jobs.csv' + W.query(q));
          const records = W.parseCsv(await res.text());
          const wanted = new Set([...selected].map(String));
          const kept = records.filter((r, i) => i === 0 || wanted.has(r.cells[0]));
          W.saveBlob(new Blob(kept.map((r) => r.text), { type: 'text/csv' }), 'jobs-selected.csv');
          W.message(messageBox, 'info', `Downloaded jobs-selected.csv with ${kept.length - 1} job(s).`);
        } catch (e) {
          W.message(messageBox, 'error', 'Download failed: ' + W.errorText(e));
        }
      }

      function report(verb, done, failed) {
        const parts = [];
        if (done.length) parts.push(`${verb}${done.length > 1 ? 's' : ''} ${done.join(', ')}.`);
        if (failed.length) {
          W.message(messageBox, 'error', h('p', null, parts.join(' ')),
            h('p', null, 'Refused by the server:'), h('ul', null, failed.map((f) => h('li', null, f))));
        } else if (parts.length) {
          W.message(messageBox, 'info', parts.join(' '));
        }
        W.announce(parts.concat(failed).join(' '));
      }

      // Poll fast while something on the page can still change.
      const poll = W.poller(load, () => (jobs.some((j) => !j.final) ? 1500 : 5000));
      return () => poll.stop();
    },
  };

  // ---- #/jobs/<id> ----
  function payloadSummary(payload) {
    const rows = [];
    for (const [key, value] of Object.entries(payload || {})) {
      if (key === 'description') continue;
      let shown;
      if (Array.isArray(value)) {
        const first = value.slice(0, 5).map((v) => (typeof v === 'object' ? JSON.stringify(v) : String(v)));
        shown = first.join(', ') + (value.length > 5 ? ` … and ${value.length - 5} more` : '');
      } else if (value && typeof value === 'object') {
        shown = JSON.stringify(value);
        if (shown.length > 300) shown = shown.slice(0, 300) + '…';
      } else {
        shown = String(value);
      }
      rows.push(h('tr', null, h('th', { scope: 'row' }, key), h('td', null, shown)));
    }
    return rows.length ? W.table('Payload', ['Field', 'Value'], rows, { class: 'kv' }) : h('p', { class: 'muted' }, 'No payload.');
  }

  function dl(pairs) {
    return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
  }

  W.pages.job = {
    title: 'Job',
    render(container, params, id) {
      const head = h('div');
      const messageBox = h('div', { id: 'job-message', hidden: true });
      const facts = h('div', { id: 'job-facts' });
      const payloadBox = h('div', { id: 'job-payload' });
      const logList = h('ol', { id: 'job-log', class: 'log', role: 'log', 'aria-label': 'Job log', tabindex: '0' });
      const logState = h('p', { class: 'muted small', id: 'job-log-state' });
      const reportBox = h('div', { id: 'job-report' });
      const resultBox = h('div', { id: 'job-result' });
      const stopBtn = h('button', { type: 'button', id: 'job-stop', on: { click: stop } }, 'Stop');
      const deleteHint = h('span', { id: 'job-delete-hint', class: 'hint', hidden: true }, kDeleteRefused);
      const deleteBtn = h('button', { type: 'button', id: 'job-delete', 'aria-describedby': 'job-delete-hint', on: { click: remove } }, 'Delete');
      const reportBtn = h('button', { type: 'button', id: 'job-report-download', on: { click: () => dl_(`/api/jobs/${id}/report.csv`, `job-${id}-report.csv`) } }, 'Download report (CSV)');

      W.append(container, [
        h('p', null, h('a', { href: '#/jobs' }, '← All jobs')),
        head,
        h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Job actions' }, stopBtn, deleteBtn, reportBtn, deleteHint),
        messageBox,
        h('div', { class: 'columns' },
          h('section', { 'aria-labelledby': 'facts-title' }, h('h2', { id: 'facts-title' }, 'Details'), facts),
          h('section', { 'aria-labelledby': 'payload-title' }, h('h2', { id: 'payload-title' }, 'Request'), payloadBox, resultBox)),
        h('section', { 'aria-labelledby': 'log-title' }, h('h2', { id: 'log-title' }, 'Log'), logState, logList),
        h('section', { 'aria-labelledby': 'report-title' }, h('h2', { id: 'report-title' }, 'Report'), reportBox),
      ]);

      let job = null;
      let logAfter = 0;
      let logComplete = false;
      let reportShownFor = -1;
      let resultChecked = false;
      let firstRender = true;

      async function dl_(path, name) {
        try { const n = await W.download(path, name); W.message(messageBox, 'info', `Downloaded ${n}.`); }
        catch (e) { W.message(messageBox, 'error', 'Download failed: ' + W.errorText(e)); }
      }

      async function stop() {
        try { await W.api('POST', `/api/jobs/${id}/stop`); W.message(messageBox, 'info', `Stop requested for job ${id}.`); W.announce(`Stop requested for job ${id}`); }
        catch (e) { W.message(messageBox, 'error', 'Stop refused: ' + W.errorText(e)); }
        poll.now();
      }

      async function remove() {
        if (!confirm(`Delete job ${id} with its log and report?`)) return;
        try {
          await W.api('DELETE', `/api/jobs/${id}`);
          W.announce(`Job ${id} deleted`);
          location.hash = '#/jobs';
        } catch (e) {
          W.message(messageBox, 'error', 'Delete refused: ' + W.errorText(e));
        }
      }

      function renderHead() {
        const title = W.operationTitle(job.topic);
        W.replace(head,
          W.heading(`${title} · job ${job.id}`, W.statusBadge(job.status), flags(job)),
          h('p', { class: 'lead', id: 'job-description' }, job.description));
        if (firstRender) { head.querySelector('h1').focus(); firstRender = false; }
      }

      function renderFacts() {
        const started = job.started ? new Date(job.started) : null;
        const ended = job.finished ? new Date(job.finished) : (started ? new Date() : null);
        const p = job.progress || {};
        W.replace(facts, dl([
          ['Status', h('span', { id: 'job-status' }, job.status + ` (${job.state})`)],
          ['Operation', `${W.operationTitle(job.topic)} (${job.topic})`],
          ['Queue', job.queue || '—'],
          ['Submitted by', job.submitted_by || '—'],
          ['Created', W.timeEl(job.created)],
          job.scheduled ? ['Scheduled for', W.timeEl(job.scheduled)] : null,
          job.cron ? ['Cron', job.cron] : null,
          ['Started', W.timeEl(job.started)],
          ['Finished', W.timeEl(job.finished)],
          started ? ['Duration', W.duration(ended - started) + (job.finished ? '' : ' so far')] : null,
          ['Progress', h('div', { id: 'job-progress' }, progressCell(job))],
          job.eta && !job.final ? ['ETA', W.timeEl(job.eta)] : null,
          ['Retries', `${job.retry_count} of ${job.max_retries < 0 ? 'unlimited' : job.max_retries}`],
          ['Result', h('span', { id: 'job-result-message' }, job.result_message || '—')],
          ['Report rows', W.number(job.report_rows)],
        ]));
        W.replace(payloadBox, payloadSummary(job.payload));
        const canOperate = W.canOperate();
        stopBtn.disabled = !canOperate || !job.stoppable;
        deleteBtn.disabled = !canOperate || !job.deletable;
        deleteHint.hidden = job.deletable;
        deleteBtn.title = job.deletable ? 'Delete this job' : kDeleteRefused;
        reportBtn.disabled = !job.report_rows;
      }

      async function loadLog() {
        if (logComplete) return;
        for (let pages = 0; pages < 20; ++pages) {
          const r = await W.get(`/api/jobs/${id}/log` + W.query({ after: logAfter, limit: 500 }));
          for (const line of r.body.lines)
            logList.appendChild(h('li', null, h('time', { datetime: line.at }, W.time(line.at)), ' ', line.line));
          logAfter = r.body.next_after;
          logComplete = r.body.complete;
          if (r.body.lines.length < 500) break;
        }
        logState.textContent = logComplete
          ? `${logList.children.length} line(s); the job has ended.`
          : `${logList.children.length} line(s) so far; new lines appear as the job writes them.`;
        if (!logList.children.length && logComplete) logState.textContent = 'The job wrote no log lines.';
      }

      async function loadReport() {
        if (reportShownFor === job.report_rows && job.final) return;
        if (!job.report_rows) { W.replace(reportBox, h('p', { class: 'muted' }, 'No report rows (yet).')); reportShownFor = 0; return; }
        if (reportShownFor === job.report_rows) return;
        const res = await W.fetchApi('GET', `/api/jobs/${id}/report.csv`);
        const records = W.parseCsv(await res.text()).slice(0, 101);
        const width = Math.max(...records.map((r) => r.cells.length));
        const first = records[0] ? records[0].cells : [];
        // Reports written by operations start with a header row (path,outcome,message).
        const looksLikeHeader = first.length && first.every((c) => /^[a-z_ ]+$/i.test(c));
        const headers = looksLikeHeader ? first : Array.from({ length: width }, (_, i) => 'Column ' + (i + 1));
        const body = (looksLikeHeader ? records.slice(1) : records).slice(0, 100);
        W.replace(reportBox,
          h('p', { class: 'muted' }, `${W.number(job.report_rows)} row(s)` + (job.report_rows > body.length ? `; the first ${body.length} are shown, the download has all.` : '.')),
          W.table('Report rows', headers, body.map((r) => h('tr', null, r.cells.map((c) => h('td', null, c)))), { id: 'report-table' }));
        reportShownFor = job.report_rows;
      }

      // An operation's result file (e.g. a metadata export), when it has one.
      async function checkResult() {
        if (resultChecked || !job.final) return;
        resultChecked = true;
        const path = (job.links && job.links.result) || `/api/jobs/${id}/result`;
        let res;
        try {
          res = await fetch(path, { method: 'HEAD', headers: { Authorization: 'Bearer ' + W.token() }, cache: 'no-store' });
        } catch (e) { return; }
        if (!res.ok) return;
        W.replace(resultBox, h('h3', null, 'Result'),
          h('button', { type: 'button', id: 'job-result-download', on: { click: () => dl_(path, `job-${id}-result`) } }, 'Download result file'));
      }

      async function load() {
        try {
          job = (await W.get(`/api/jobs/${id}`)).body;
        } catch (e) {
          if (e.status === 404) {
            W.replace(head, W.heading('Job ' + id));
            W.message(messageBox, 'error', `There is no job ${id}: it may have been deleted or purged.`);
            poll.stop();
            return;
          }
          W.message(messageBox, 'error', 'Cannot load the job: ' + W.errorText(e));
          return;
        }
        await W.loadOperations().catch(() => {});
        renderHead();
        renderFacts();
        try { await loadLog(); } catch (e) { logState.textContent = 'Cannot load the log: ' + W.errorText(e); }
        try { await loadReport(); } catch (e) { W.replace(reportBox, h('p', { class: 'error' }, 'Cannot load the report: ' + W.errorText(e))); }
        await checkResult();
      }

      const poll = W.poller(load, () => (job && job.final ? 10000 : 1000));
      return () => poll.stop();
    },
  };
})(window.Wharf);
