// Login, header and hash routing: #/jobs, #/jobs/<id>, #/inbox, #/content,
// #/queues, #/plugins, #/config (e-mail notifications link to #/jobs/<id>).
'use strict';

(function (W) {
  const h = W.h;
  const login = document.getElementById('login');
  const loginForm = document.getElementById('login-form');
  const loginError = document.getElementById('login-error');
  const tokenInput = document.getElementById('token');
  const top = document.getElementById('top');
  const page = document.getElementById('page');
  const who = document.getElementById('who');
  let cleanup = null;
  let inboxPoll = null;

  function showLogin(message) {
    if (cleanup) { cleanup(); cleanup = null; }
    if (inboxPoll) { inboxPoll.stop(); inboxPoll = null; }
    W.user = null;
    W.operations = null;
    top.hidden = true;
    W.clear(page);
    login.hidden = false;
    loginError.textContent = message || '';
    document.title = 'Wharf · Log in';
    tokenInput.focus();
  }

  async function enter() {
    try {
      W.user = (await W.get('/api/me', { noLogout: true })).body;
    } catch (e) {
      W.setToken(null);
      showLogin(e.status === 401 ? 'That token is not valid.' : 'Cannot reach the server: ' + W.errorText(e));
      return;
    }
    login.hidden = true;
    top.hidden = false;
    W.replace(who, h('span', { id: 'who-user' }, W.user.user), ' ', h('span', { class: 'role', id: 'who-role' }, W.user.role));
    inboxPoll = W.poller(W.refreshInboxCount, () => 15000);
    route();
  }

  W.onUnauthorized = () => {
    W.setToken(null);
    showLogin('Your token is no longer valid: log in again.');
  };

  loginForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const token = tokenInput.value.trim();
    if (!token) { loginError.textContent = 'Enter a token.'; return; }
    W.setToken(token);
    tokenInput.value = '';
    enter();
  });

  document.getElementById('logout').addEventListener('click', () => {
    W.setToken(null);
    showLogin('Logged out.');
  });

  function route() {
    if (!W.user) return;
    const hash = location.hash || '#/jobs';
    const [pathPart, queryPart] = hash.slice(1).split('?');
    const params = new URLSearchParams(queryPart || '');
    const parts = pathPart.split('/').filter(Boolean);
    let name = parts[0] || 'jobs';
    let arg;
    if (name === 'jobs' && parts[1]) { name = 'job'; arg = decodeURIComponent(parts[1]); }
    const pageDef = W.pages[name];
    if (cleanup) { cleanup(); cleanup = null; }
    W.clear(page);
    for (const a of document.querySelectorAll('[data-nav]')) {
      const current = a.dataset.nav === (name === 'job' ? 'jobs' : name);
      if (current) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    if (!pageDef) {
      W.append(page, [W.heading('Not found'), h('p', null, 'There is no page ', h('code', null, hash), '. ', h('a', { href: '#/jobs' }, 'Go to the jobs.'))]);
      return;
    }
    document.title = `Wharf · ${pageDef.title}${arg ? ' ' + arg : ''}`;
    cleanup = pageDef.render(page, params, arg) || null;
    if (name !== 'job') {
      const title = page.querySelector('h1');
      if (title && document.activeElement === document.body) title.focus();
    }
  }

  window.addEventListener('hashchange', () => {
    route();
    const title = page.querySelector('h1');
    if (title) title.focus();
  });

  if (W.token()) enter(); else showLogin('');
})(window.Wharf);
