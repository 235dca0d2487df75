// The Content page (#/content?path=/content/dam): a small repository browser
// and the forms that start each operation on what is selected in it.
'use strict';

(function (W) {
  const h = W.h;
  const kChildrenPage = 100;
  const kThumbnails = 40;

  // Operations that may not be installed yet: their forms are still offered and
  // the server's answer (404 unknown_operation) is shown as it comes.
  const kFallbackOperations = [
    { name: 'remote-fetch', title: 'Fetch remote assets', request_schema: [
      { name: 'remote', type: 'string', required: true, description: 'name of a remote in operations/remote-fetch.yaml (remotes:), e.g. dam-eu' },
      { name: 'paths', type: 'list', required: true, item: { type: 'string' }, description: 'remote assets and folders (folders with everything under them), one per line' },
      { name: 'destination', type: 'string', required: true, description: 'local folder the fetched assets and folders go into (created if missing)' },
      { name: 'conflict', type: 'string', one_of: ['fail', 'rename', 'overwrite'], default: 'fail', description: 'when a local node has the name: fail the asset, rename it (name-1.jpg) or overwrite the local asset' }] },
    { name: 'live-copy', title: 'Create live copy', request_schema: [
      { name: 'blueprint', type: 'string', required: true, description: 'the blueprint page' },
      { name: 'destination', type: 'string', required: true, description: 'where the live copy goes' }] },
    { name: 'rollout', title: 'Roll out', request_schema: [
      { name: 'blueprint', type: 'string', required: true, description: 'the blueprint page' },
      { name: 'live_copies', type: 'list', item: { type: 'string' }, description: 'live copies, one per line (empty: all)' }] },
  ];

  // Fields the selection fills in.
  const kPathFields = ['paths', 'sources', 'path', 'folder', 'root'];

  // A small text badge (no icon font or emoji: neither is sure to exist).
  function kindIcon(type) {
    return h('span', { class: 'kind kind-' + type, 'aria-hidden': 'true' }, { folder: 'DIR', asset: 'FILE', page: 'PAGE' }[type] || '?');
  }

  function isImage(node) { return node.type === 'asset' && /^image\/(png|jpeg|gif|webp|svg\+xml|bmp)$/.test(node.mime || ''); }

  function liveMarks(node) {
    const marks = [];
    if (node.live_copy || node.is_live_copy || (node.live_relationship && node.live_relationship.blueprint)) marks.push(h('span', { class: 'flag' }, 'live copy'));
    if (node.blueprint === true || node.is_blueprint || (node.live_copies && node.live_copies.length)) marks.push(h('span', { class: 'flag' }, 'blueprint'));
    return marks;
  }

  W.pages.content = {
    title: 'Content',
    render(container, params) {
      const path = params.get('path') || '/';
      const selected = new Set();
      let children = [];
      let nextCursor = null;
      const thumbUrls = [];

      const crumbs = h('nav', { class: 'crumbs', 'aria-label': 'Repository path' });
      const nodeInfo = h('div', { id: 'node-info' });
      const messageBox = h('div', { id: 'content-message', hidden: true });
      const tbody = h('tbody');
      const moreBtn = h('button', { type: 'button', id: 'children-more', hidden: true, on: { click: () => loadChildren(true) } }, 'Show more');
      const selectionText = h('p', { id: 'content-selection', class: 'muted' }, 'Nothing selected.');
      const forms = h('div', { id: 'operation-forms', class: 'op-forms' });

      const segments = path.split('/').filter(Boolean);
      const crumbLinks = [h('a', { href: '#/content?path=/' }, 'root')];
      segments.forEach((seg, i) => {
        const p = '/' + segments.slice(0, i + 1).join('/');
        crumbLinks.push(' / ', i === segments.length - 1 ? h('span', { 'aria-current': 'page' }, seg) : h('a', { href: '#/content?path=' + encodeURIComponent(p) }, seg));
      });
      W.append(crumbs, crumbLinks);

      const goForm = h('form', { class: 'filters', on: { submit: (e) => { e.preventDefault(); location.hash = '#/content?path=' + encodeURIComponent(goInput.value.trim() || '/'); } } });
      const goInput = h('input', { id: 'go-path', type: 'text', value: path, spellcheck: 'false' });
      W.append(goForm, [h('div', { class: 'field grow' }, h('label', { for: 'go-path' }, 'Path'), goInput), h('button', { type: 'submit' }, 'Go')]);

      W.append(container, [
        W.heading('Content'), goForm, crumbs, nodeInfo, messageBox,
        h('section', { 'aria-labelledby': 'children-title' },
          h('h2', { id: 'children-title' }, 'Children'),
          h('div', { class: 'table-wrap' }, h('table', { id: 'children-table' },
            h('caption', { class: 'sr-only' }, 'Children of ' + path),
            h('thead', null, h('tr', null, ['Select', '', 'Name', 'Type', 'Size', 'MIME type', 'Modified'].map((t, i) =>
              h('th', { scope: 'col', class: i === 1 ? 'thumb-col' : (i >= 5 ? 'wide-only' : '') }, i === 1 ? h('span', { class: 'sr-only' }, 'Preview') : t)))),
            tbody)),
          moreBtn, selectionText),
        h('section', { 'aria-labelledby': 'ops-title' },
          h('h2', { id: 'ops-title' }, 'Start an operation'),
          h('p', { class: 'muted' }, 'Selected paths fill the path fields. Below its threshold an operation runs at once; above it, it becomes a job you can follow.'),
          forms),
      ]);

      async function loadNode() {
        try {
          const r = await W.get('/api/repo/nodes' + W.query({ path, limit: kChildrenPage }));
          renderNode(r.body.node);
          children = r.body.children || [];
          nextCursor = r.body.next_cursor || null;
          renderChildren();
        } catch (e) {
          if (e.status === 404 && e.code !== 'not_found') {
            W.message(messageBox, 'error', 'This server does not offer repository reads yet: ' + W.errorText(e));
          } else {
            W.message(messageBox, 'error', `Cannot read ${path}: ` + W.errorText(e));
          }
        }
      }

      async function loadChildren() {
        if (!nextCursor) return;
        try {
          const r = await W.get('/api/repo/nodes' + W.query({ path, limit: kChildrenPage, cursor: nextCursor }));
          children = children.concat(r.body.children || []);
          nextCursor = r.body.next_cursor || null;
          renderChildren();
        } catch (e) {
          W.message(messageBox, 'error', 'Cannot read more children: ' + W.errorText(e));
        }
      }

      function renderNode(node) {
        if (!node) return;
        const props = Object.entries(node.properties || {});
        W.replace(nodeInfo,
          h('p', null, kindIcon(node.type), ' ', h('strong', { id: 'node-path' }, node.path), ' · ', node.type, ' ', liveMarks(node),
            node.size !== undefined && node.type === 'asset' ? ` · ${W.bytes(node.size)}` : '',
            node.mime ? ` · ${node.mime}` : ''),
          props.length ? h('details', null, h('summary', null, `Properties (${props.length})`),
            W.table('Properties', ['Name', 'Value'], props.map(([k, v]) =>
              h('tr', null, h('th', { scope: 'row' }, k), h('td', null, typeof v === 'object' ? JSON.stringify(v) : String(v)))), { class: 'kv' })) : null,
          isImage(node) ? h('p', null, thumbnail(node, 'preview')) : null);
      }

      function thumbnail(node, cls) {
        const img = h('img', { class: cls || 'thumb', alt: 'Preview of ' + node.name, width: cls ? undefined : 48, height: cls ? undefined : 48 });
        W.fetchApi('GET', '/api/repo/binary' + W.query({ path: node.path }))
          .then((res) => res.blob())
          .then((blob) => { const url = URL.createObjectURL(blob); thumbUrls.push(url); img.src = url; })
          .catch(() => { img.alt = 'no preview'; });
        return img;
      }

      function renderChildren() {
        let thumbs = 0;
        const rows = children.map((c) => {
          const link = c.type === 'folder' || c.type === 'page' || c.type === 'asset';
          const box = h('input', { type: 'checkbox', checked: selected.has(c.path), 'aria-label': 'Select ' + c.path,
            dataset: { focusKey: 'sel-' + c.path },
            on: { change: (e) => { if (e.target.checked) selected.add(c.path); else selected.delete(c.path); updateSelection(); } } });
          const thumb = isImage(c) && thumbs++ < kThumbnails ? thumbnail(c) : kindIcon(c.type);
          return h('tr', { dataset: { path: c.path } },
            h('td', { class: 'select' }, box),
            h('td', { class: 'thumb-col' }, thumb),
            h('td', null, link ? h('a', { href: '#/content?path=' + encodeURIComponent(c.path) }, c.name) : c.name, ' ', liveMarks(c)),
            h('td', null, c.type),
            h('td', null, c.type === 'asset' ? W.bytes(c.size) : ''),
            h('td', { class: 'wide-only' }, c.mime || ''),
            h('td', { class: 'wide-only' }, W.timeEl(c.modified)));
        });
        if (!rows.length) rows.push(h('tr', null, h('td', { colspan: 7, class: 'muted' }, 'No children.')));
        W.replace(tbody, rows);
        moreBtn.hidden = !nextCursor;
      }

      function updateSelection() {
        const list = [...selected];
        selectionText.textContent = list.length ? `Selected: ${list.join(', ')}` : 'Nothing selected.';
        for (const input of forms.querySelectorAll('[data-path-field]')) {
          if (input.dataset.touched) continue;
          input.value = input.tagName === 'TEXTAREA' ? list.join('\n') : (list[0] || '');
        }
      }

      function fieldInput(op, field, idPrefix) {
        const id = `${idPrefix}-${field.name}`;
        const describe = field.description ? id + '-help' : undefined;
        let input;
        const isPath = kPathFields.includes(field.name);
        if (field.type === 'boolean') {
          input = h('input', { id, name: field.name, type: 'checkbox', checked: field.default === 'true', 'aria-describedby': describe });
          return h('div', { class: 'field check' }, input, h('label', { for: id }, field.name),
            describe ? h('span', { id: describe, class: 'help' }, field.description) : null);
        }
        if (field.one_of && field.one_of.length) {
          input = h('select', { id, name: field.name, 'aria-describedby': describe },
            field.required ? null : h('option', { value: '' }, '(default)'),
            field.one_of.map((v) => h('option', { value: v, selected: v === field.default }, v)));
        } else if (field.type === 'list') {
          input = h('textarea', { id, name: field.name, rows: 3, spellcheck: 'false', 'aria-describedby': describe, placeholder: 'one per line' });
        } else if (field.type === 'object' || field.type === 'map') {
          input = h('textarea', { id, name: field.name, rows: 3, spellcheck: 'false', 'aria-describedby': describe, placeholder: 'JSON object' });
        } else {
          input = h('input', { id, name: field.name, type: field.type === 'integer' || field.type === 'number' ? 'number' : 'text',
            spellcheck: 'false', 'aria-describedby': describe, placeholder: field.default || '' });
        }
        input.dataset.type = field.type;
        if (field.item && field.item.type) input.dataset.itemType = field.item.type;
        if (isPath) {
          input.dataset.pathField = '1';
          input.addEventListener('input', () => { input.dataset.touched = '1'; });
        } else if (field.name === 'destination' && !input.value) {
          input.value = path;
        }
        return h('div', { class: 'field' }, h('label', { for: id }, field.name + (field.required ? ' (required)' : '')), input,
          describe ? h('span', { id: describe, class: 'help' }, field.description) : null);
      }

      function requestFrom(form) {
        const request = {};
        for (const input of form.querySelectorAll('input[name], select[name], textarea[name]')) {
          if (input.type === 'file') continue;
          const t = input.dataset.type;
          const name = input.name;
          if (input.type === 'checkbox') { if (input.checked) request[name] = true; continue; }
          const text = input.value.trim();
          if (!text) continue;
          if (t === 'list') {
            const items = text.split('\n').map((s) => s.trim()).filter(Boolean);
            request[name] = input.dataset.itemType === 'integer' || input.dataset.itemType === 'number' ? items.map(Number) : items;
          } else if (t === 'integer' || t === 'number') {
            request[name] = Number(text);
          } else if (t === 'object' || t === 'map') {
            try { request[name] = JSON.parse(text); } catch (e) { throw new W.ApiError(0, 'invalid_request', `'${name}' is not a JSON object`, name); }
          } else {
            request[name] = text;
          }
        }
        return request;
      }

      function showOutcome(box, form, r) {
        const b = r.body;
        if (r.status === 202 || b.mode === 'job') {
          W.message(box, 'info', h('p', null, `Became job ${b.id} (${b.status}): ${b.count} item(s), above the threshold of ${b.threshold ?? 'none'}. `,
            h('a', { href: '#/jobs/' + b.id, class: 'job-link' }, `Follow job ${b.id}`)));
          W.announce(`${b.operation} became job ${b.id}`);
          return;
        }
        const kind = b.outcome === 'succeeded' ? 'success' : 'error';
        const report = b.report || [];
        W.message(box, kind,
          h('p', null, `Ran at once: ${b.outcome}. ${b.message || ''} (${b.count} item(s), threshold ${b.threshold ?? 'none'})`),
          report.length > 1 ? W.table('Report', report[0], report.slice(1, 51).map((row) => h('tr', null, row.map((c) => h('td', null, c)))), { class: 'small' }) : null);
        W.announce(`${b.operation} ran at once: ${b.outcome}`);
        loadNode();
      }

      function operationForm(op, installed) {
        const idPrefix = 'op-' + op.name;
        const resultBox = h('div', { id: idPrefix + '-result', hidden: true });
        const fields = (op.request_schema || []).map((f) => fieldInput(op, f, idPrefix));
        // An operation with a `csv` field (metadata import) also takes the file itself.
        const upload = (op.request_schema || []).some((f) => f.name === 'csv')
          ? h('div', { class: 'field' }, h('label', { for: idPrefix + '-file' }, 'CSV file to upload (instead of a csv path)'),
            h('input', { id: idPrefix + '-file', type: 'file', accept: '.csv,text/csv', name: 'file' }))
          : null;
        const submit = h('button', { type: 'submit', class: 'primary', disabled: !W.canOperate(),
          title: W.canOperate() ? undefined : 'Starting operations needs the operator role' }, 'Start ' + (op.title || op.name));
        const form = h('form', { id: idPrefix, novalidate: true, on: { submit: async (e) => {
          e.preventDefault();
          for (const bad of form.querySelectorAll('[aria-invalid]')) bad.removeAttribute('aria-invalid');
          submit.disabled = true;
          try {
            const file = upload ? upload.querySelector('input').files[0] : null;
            const request = requestFrom(form);
            const r = file ? await W.submitUpload(op, request, file) : await W.api('POST', '/api/operations/' + encodeURIComponent(op.name), request);
            showOutcome(resultBox, form, r);
          } catch (err) {
            let text = W.errorText(err);
            if (err.code === 'unknown_operation') text = `The "${op.name}" operation is not installed on this server: ${text}`;
            W.message(resultBox, 'error', text);
            if (err.field) {
              const bad = form.querySelector(`[name="${CSS.escape(err.field)}"]`);
              if (bad) { bad.setAttribute('aria-invalid', 'true'); bad.focus(); }
            }
          } finally {
            submit.disabled = !W.canOperate();
          }
        } } }, fields, upload, h('div', { class: 'actions' }, submit), resultBox);
        return h('details', { class: 'op', open: op.name === 'asset-delete' },
          h('summary', null, op.title || op.name, installed ? '' : ' (not installed)',
            op.threshold !== undefined && op.threshold !== null ? h('span', { class: 'muted small' }, ` · threshold ${op.threshold} ${op.unit || ''}`) : null),
          form);
      }

      async function renderForms() {
        let ops = {};
        try { ops = await W.loadOperations(); } catch (e) { W.message(messageBox, 'error', 'Cannot list operations: ' + W.errorText(e)); }
        const list = Object.values(ops).map((op) => operationForm(op, true));
        for (const fallback of kFallbackOperations)
          if (!ops[fallback.name]) list.push(operationForm(fallback, false));
        W.replace(forms, list);
        updateSelection();
      }

      loadNode();
      renderForms();
      return () => { for (const u of thumbUrls) URL.revokeObjectURL(u); };
    },
  };

  // Uploads (metadata import): the CSV is the text/csv request body, the other
  // fields go in the query string; the server stores it and fills in `csv`.
  W.submitUpload = async function (op, request, file) {
    const q = {};
    for (const [k, v] of Object.entries(request)) if (k !== 'csv') q[k] = Array.isArray(v) ? v.join(',') : v;
    const res = await W.fetchApi('POST', '/api/operations/' + encodeURIComponent(op.name) + W.query(q),
      { body: file, headers: { 'Content-Type': 'text/csv' } });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : {} };
  };
})(window.Wharf);
