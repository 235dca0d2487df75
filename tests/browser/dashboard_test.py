#!/usr/bin/python3
"""Browser tests of the Async Job Status dashboard.

Starts a real wharfd (the built binary) on 127.0.0.1 with a free port, a
temporary configuration and data directory (users.yaml with a token's SHA-256,
a low delete threshold, a generated repository) and drives Debian's headless
Chromium through Debian's python3-selenium and chromium-driver the way a user
would: log in, start a bulk delete from the Content page and watch it run,
open it, stop a long job, check that Delete is refused for an active job,
download the CSV and compare it with the API, read the inbox.

Every wait is a condition with a deadline. wharfd is stopped by its PID when
the tests end, whatever happens. Screenshots of the main pages are written to
--artifacts (and, with --update-screenshots DIR, copied there for the README).

Exit code 77 (ctest SKIP_RETURN_CODE) when Chromium, chromedriver or selenium
are not installed: tools/deps.sh test installs them.
"""

import argparse
import csv
import hashlib
import io
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
import zlib

CHROMIUM = '/usr/bin/chromium'
CHROMEDRIVER = '/usr/bin/chromedriver'
SKIP = 77

ARGS = None
TOKEN = 'dashboard-test-token-5f1c2a'
VIEWER_TOKEN = 'dashboard-viewer-token-77aa'


def missing_browser():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append('python3-selenium (module selenium for /usr/bin/python3)')
    return missing


def png(width, height, rgb):
    """A small solid-colour PNG, written by hand (no imaging library needed)."""
    raw = b''.join(b'\x00' + bytes(rgb) * width for _ in range(height))

    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data +
                struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))

    return (b'\x89PNG\r\n\x1a\n' +
            chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)) +
            chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))


class Host:
    """A wharfd child process on a temporary configuration."""

    def __init__(self, root):
        self.root = root
        self.proc = None
        self.address = None
        self.log_path = os.path.join(root, 'wharfd.log')

    def prepare(self):
        configs = os.path.join(self.root, 'configs')
        os.makedirs(os.path.join(configs, 'operations'))
        plugins = os.path.join(self.root, 'plugins')
        os.makedirs(plugins)
        with open(os.path.join(configs, 'wharf.yaml'), 'w') as f:
            f.write('data_dir: ../var\nplugins_dir: ../plugins\nlisten: 127.0.0.1:0\nlog_level: info\n')
        sha = hashlib.sha256(TOKEN.encode()).hexdigest()
        viewer_sha = hashlib.sha256(VIEWER_TOKEN.encode()).hexdigest()
        with open(os.path.join(configs, 'users.yaml'), 'w') as f:
            f.write('users:\n'
                    f'  - name: ada\n    role: admin\n    token_sha256: {sha}\n'
                    f'  - name: vic\n    role: viewer\n    token_sha256: {viewer_sha}\n')
        # Low threshold and one node per batch: a delete of /content/dam/bulk
        # becomes a job that runs for several seconds, its progress moving.
        with open(os.path.join(configs, 'operations', 'delete.yaml'), 'w') as f:
            f.write('threshold: 5\nbatch_size: 1\n')
        for name in ('delete.so', 'move.so'):
            src = os.path.join(ARGS.plugins, name)
            if os.path.exists(src):
                shutil.copy(src, os.path.join(plugins, name))
        shutil.copy(os.path.join(ARGS.fixtures, 'jobs_sleeper.so'), os.path.join(plugins, 'jobs_sleeper.so'))

        repository = os.path.join(self.root, 'var', 'repository')
        os.makedirs(repository)
        self.cli('repo', 'generate', '--repository', repository, '--assets', '30',
                 '--assets-root', '/content/dam/generated', '--pages', '20', '--pages-root', '/content/site/en',
                 '--refs-per-page', '0', '--live-copies', '2', '--live-root', '/content/site')
        self.cli('repo', 'generate', '--repository', repository, '--assets', '20', '--seed', '2',
                 '--assets-root', '/content/dam/small', '--pages', '0', '--pages-root', '/content/site/x')
        # 30,060 empty folders: quick to import (no binaries to write), and
        # deleting them one per batch takes seconds.
        bulk = os.path.join(self.root, 'bulk')
        for group in range(60):
            for folder in range(500):
                os.makedirs(os.path.join(bulk, f'g{group:02d}', f'f{folder:03d}'))
        self.cli('repo', 'import', '--repository', repository, bulk, '/content/dam/bulk')
        photos = os.path.join(self.root, 'photos')
        os.makedirs(photos)
        for name, rgb in (('harbour.png', (30, 90, 160)), ('sunset.png', (220, 120, 40)), ('forest.png', (40, 140, 70))):
            with open(os.path.join(photos, name), 'wb') as f:
                f.write(png(64, 48, rgb))
        self.cli('repo', 'import', '--repository', repository, photos, '/content/dam/photos')

    def cli(self, *args):
        subprocess.run([ARGS.cli, *args], check=True, stdout=subprocess.DEVNULL, timeout=120)

    def start(self):
        self.log = open(self.log_path, 'wb')
        self.proc = subprocess.Popen([ARGS.wharfd, '--config', os.path.join(self.root, 'configs')],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = self.output()
            if 'wharfd ready' in text and 'plugin active id=delete' in text:
                at = text.index('http listening address=') + len('http listening address=')
                self.address = text[at:].split()[0]
                return
            if self.proc.poll() is not None:
                raise RuntimeError('wharfd exited early:\n' + text)
            time.sleep(0.05)
        raise RuntimeError('wharfd did not become ready in 30 s:\n' + self.output())

    def output(self):
        with open(self.log_path, 'r', errors='replace') as f:
            return f.read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if getattr(self, 'log', None):
            self.log.close()

    @property
    def url(self):
        return 'http://' + self.address

    def request(self, method, path, body=None, token=TOKEN):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header('Authorization', 'Bearer ' + token)
        if data is not None:
            req.add_header('Content-Type', 'application/json')
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                return res.status, res.read(), res.headers
        except urllib.error.HTTPError as e:
            return e.code, e.read(), e.headers

    def json(self, method, path, body=None):
        status, data, _ = self.request(method, path, body)
        return status, (json.loads(data) if data else None)


class DashboardTest(unittest.TestCase):
    host = None
    driver = None

    @classmethod
    def setUpClass(cls):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        cls.tmp = tempfile.mkdtemp(prefix='wharf-browser-')
        cls.downloads = os.path.join(cls.tmp, 'downloads')
        os.makedirs(cls.downloads)
        os.makedirs(ARGS.artifacts, exist_ok=True)
        cls.host = Host(cls.tmp)
        try:
            cls.host.prepare()
            cls.host.start()
            options = webdriver.ChromeOptions()
            options.binary_location = CHROMIUM
            for arg in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
                        '--window-size=1280,900', '--lang=en-US', '--no-first-run',
                        '--user-data-dir=' + os.path.join(cls.tmp, 'chromium-profile')):
                options.add_argument(arg)
            options.add_experimental_option('prefs', {
                'download.default_directory': cls.downloads,
                'download.prompt_for_download': False,
            })
            cls.driver = webdriver.Chrome(service=Service(CHROMEDRIVER, log_output=os.path.join(cls.tmp, 'chromedriver.log')),
                                          options=options)
            cls.driver.execute_cdp_cmd('Browser.setDownloadBehavior',
                                       {'behavior': 'allow', 'downloadPath': cls.downloads})
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.driver:
            try:
                cls.driver.quit()
            except Exception:
                pass
            cls.driver = None
        if cls.host:
            cls.host.stop()
            shutil.copy(cls.host.log_path, os.path.join(ARGS.artifacts, 'wharfd.log'))
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---- helpers ----
    def wait(self, condition, timeout=20, message=''):
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait
        # Rows are re-rendered as the page polls: a stale element means "look again".
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1,
                             ignored_exceptions=[StaleElementReferenceException]).until(condition, message)

    def find(self, css, timeout=20):
        from selenium.webdriver.common.by import By
        return self.wait(lambda d: d.find_element(By.CSS_SELECTOR, css) if d.find_elements(By.CSS_SELECTOR, css) else False,
                         timeout, f'no element {css}')

    def finds(self, css):
        from selenium.webdriver.common.by import By
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text_of(self, css):
        els = self.finds(css)
        return els[0].text if els else ''

    def go(self, hash_route):
        # Through about:blank, so the page really loads (a changed hash alone
        # would keep the previous page's state, e.g. its selection).
        self.driver.get('about:blank')
        self.driver.get(self.host.url + '/' + hash_route)
        self.ensure_logged_in()

    def ensure_logged_in(self):
        d = self.driver
        self.wait(lambda d: d.find_element('id', 'login').is_displayed() or d.find_element('id', 'top').is_displayed())
        if d.find_element('id', 'login').is_displayed():
            d.find_element('id', 'token').send_keys(TOKEN)
            d.find_element('css selector', '#login-form button[type=submit]').click()
            self.wait(lambda d: d.find_element('id', 'top').is_displayed(), message='login did not finish')

    def shot(self, name):
        path = os.path.join(ARGS.artifacts, name + '.png')
        self.driver.save_screenshot(path)
        if ARGS.update_screenshots:
            os.makedirs(ARGS.update_screenshots, exist_ok=True)
            shutil.copy(path, os.path.join(ARGS.update_screenshots, name + '.png'))

    def job_row(self, job_id):
        rows = self.finds(f'#jobs-table tr[data-job-id="{job_id}"]')
        return rows[0] if rows else None

    def row_status(self, job_id):
        row = self.job_row(job_id)
        return row.get_attribute('data-status') if row else None

    def select_only(self, job_id):
        def only(d):
            # The table re-renders as it polls: find and click in one go, retried.
            for box in self.finds('#jobs-table tbody input[type=checkbox]:checked'):
                box.click()
            row = self.job_row(job_id)
            if not row:
                return False
            box = row.find_element('css selector', 'input[type=checkbox]')
            if not box.is_selected():
                box.click()
            row = self.job_row(job_id)
            return (row and 'selected' in (row.get_attribute('class') or '') and
                    len(self.finds('#jobs-table tbody input[type=checkbox]:checked')) == 1)
        self.wait(only, message=f'cannot select job {job_id} alone')

    def watch_progress(self, job_id, strict):
        """Waits until the job's progress bar shows two different values with
        an ETA. Not strict: also returns when the job ends first."""
        seen = []

        def progressed(d):
            row = self.job_row(job_id)
            if not row:
                return False
            bars = row.find_elements('css selector', 'progress')
            if not bars:
                ended = row.get_attribute('data-status') != 'Active'
                if strict:
                    self.assertFalse(ended, f'job ended before its progress was seen moving (saw {seen})')
                return ended
            value = int(bars[0].get_attribute('value') or 0)
            if not seen or seen[-1] != value:
                seen.append(value)
                if len(seen) == 2:
                    self.assertIn('ETA', row.text)
            return len(seen) >= 2
        self.wait(progressed, 60, 'the progress bar did not move')
        if len(seen) >= 2:
            self.assertLess(seen[0], seen[1], 'progress went backwards')

    def enqueue_sleeper(self, ms, description):
        status, body = self.host.json('POST', '/api/jobs', {'topic': 'test/sleep', 'payload': {'ms': str(ms), 'wharf:description': description}})
        self.assertEqual(status, 201, body)
        return body['id']

    def wait_downloaded(self, name, timeout=20):
        path = os.path.join(self.downloads, name)
        self.wait(lambda d: os.path.exists(path) and not os.path.exists(path + '.crdownload') and os.path.getsize(path) > 0,
                  timeout, f'{name} was not downloaded (downloads: {os.listdir(self.downloads)}, '
                  f'page says: {self.text_of("[id$=-message]")!r})')
        with open(path, 'rb') as f:
            data = f.read()
        os.remove(path)
        return data

    # ---- tests, in the order a user meets them ----
    def test_01_login_refuses_a_bad_token_and_shows_the_user(self):
        d = self.driver
        d.get(self.host.url + '/')
        self.find('#token').send_keys('not-a-token')
        d.find_element('css selector', '#login-form button[type=submit]').click()
        self.wait(lambda d: 'not valid' in d.find_element('id', 'login-error').text)
        self.assertFalse(d.find_element('id', 'top').is_displayed())
        self.find('#token').send_keys(TOKEN)
        d.find_element('css selector', '#login-form button[type=submit]').click()
        self.wait(lambda d: d.find_element('id', 'top').is_displayed())
        self.assertEqual(self.text_of('#who-user'), 'ada')
        self.assertEqual(self.text_of('#who-role'), 'admin')
        self.find('#jobs-table')
        # The token lives in session storage, never in a cookie.
        self.assertEqual(d.get_cookies(), [])
        self.assertEqual(d.execute_script("return sessionStorage.getItem('wharf.token')"), TOKEN)

    def test_02_the_dashboard_is_served_with_a_strict_policy(self):
        status, body, headers = self.host.request('GET', '/', token='')
        self.assertEqual(status, 200)
        self.assertIn('text/html', headers['Content-Type'])
        csp = headers['Content-Security-Policy']
        self.assertIn("script-src 'self'", csp)
        self.assertIn("frame-ancestors 'none'", csp)
        self.assertNotIn('unsafe-inline', csp)
        self.assertEqual(headers['Cache-Control'], 'no-cache')
        status, _, headers = self.host.request('GET', '/dashboard/core.js', token='')
        self.assertEqual(status, 200)
        self.assertIn('text/javascript', headers['Content-Type'])
        status, _, _ = self.host.request('GET', '/dashboard/missing.js', token='')
        self.assertEqual(status, 404)
        # The browser saw no CSP violation or script error while loading.
        self.go('#/jobs')
        self.find('#jobs-table')
        # (Network entries are the API's own 4xx answers, e.g. test_01's bad token.)
        errors = [e for e in self.driver.get_log('browser')
                  if e['level'] == 'SEVERE' and e.get('source') != 'network']
        self.assertEqual(errors, [])

    def test_03_a_delete_above_its_threshold_becomes_a_job_that_runs_to_success(self):
        d = self.driver
        self.go('#/content?path=' + '/content/dam')
        self.find('#children-table')
        self.wait(lambda d: len(self.finds('#children-table tbody tr[data-path]')) >= 3, message='no children listed')
        self.go('#/content?path=/content/dam/photos')
        self.wait(lambda d: any(img.get_attribute('src').startswith('blob:') for img in self.finds('#children-table img.thumb')),
                  message='no thumbnail loaded')
        self.shot('content')

        self.go('#/content?path=/content/dam')
        form = self.find('#op-asset-delete')
        paths = form.find_element('css selector', 'textarea[name=paths]')
        paths.clear()
        paths.send_keys('/content/dam/bulk')
        form.find_element('css selector', 'button[type=submit]').click()
        link = self.find('#op-asset-delete-result a.job-link')
        self.assertIn('Became job', self.text_of('#op-asset-delete-result'))
        job_id = int(link.get_attribute('href').rsplit('/', 1)[1])
        type(self).delete_job = job_id

        link.click()
        self.wait(lambda d: d.current_url.endswith(f'#/jobs/{job_id}'))
        self.find('#job-status')
        self.go('#/jobs')
        self.wait(lambda d: self.row_status(job_id) == 'Active', message='delete never shown Active')
        # How long the delete runs depends on the machine: its bar is checked
        # while it lasts; the moving bar is asserted on the long job below.
        self.watch_progress(job_id, strict=False)
        self.wait(lambda d: self.row_status(job_id) == 'Success', 120, 'delete did not end as Success')
        row = self.job_row(job_id)
        self.assertIn('Delete', row.text)
        # The description column says what the delete plugin described.
        self.assertRegex(row.text, r'Delete [0-9,]+ assets and folders under /content/dam/bulk')
        self.assertIn('ada', row.text)

    def test_04_open_shows_details_log_and_report(self):
        job_id = self.delete_job
        self.go('#/jobs')
        self.select_only(job_id)
        self.driver.find_element('id', 'act-open').click()
        self.wait(lambda d: d.current_url.endswith(f'#/jobs/{job_id}'))
        self.wait(lambda d: 'Success' in self.text_of('#job-status'))
        facts = self.text_of('#job-facts')
        for word in ('Queue', 'default', 'Submitted by', 'ada', 'Retries', 'Started', 'Finished'):
            self.assertIn(word, facts)
        self.assertIn('/content/dam/bulk', self.text_of('#job-payload'))
        self.wait(lambda d: len(self.finds('#job-log li')) > 0, message='log is empty')
        self.wait(lambda d: 'deleted' in self.text_of('#report-table'), message='report rows not shown')
        self.shot('job-details')

    def test_05_stop_a_long_job_and_delete_is_refused_while_it_is_active(self):
        job_id = self.enqueue_sleeper(120000, 'Sleep for two minutes (stop test)')
        self.go('#/jobs')
        self.wait(lambda d: self.row_status(job_id) == 'Active', 30, 'sleeper never Active')
        self.watch_progress(job_id, strict=True)
        self.shot('jobs')
        self.select_only(job_id)
        delete = self.driver.find_element('id', 'act-delete')
        self.assertFalse(delete.is_enabled())
        self.assertIn('cannot be deleted', delete.get_attribute('title'))
        self.assertTrue(self.driver.find_element('id', 'delete-hint').is_displayed())
        self.assertTrue(self.driver.find_element('id', 'act-stop').is_enabled())
        # The server refuses too, and says why.
        status, body = self.host.json('DELETE', f'/api/jobs/{job_id}')
        self.assertEqual(status, 409)
        self.assertIn('Active', body['error']['message'])

        self.driver.find_element('id', 'act-stop').click()
        self.wait(lambda d: 'Stop requested' in self.text_of('#jobs-message'))
        self.wait(lambda d: self.row_status(job_id) == 'Stopped', 30, 'job did not end as Stopped')
        self.wait(lambda d: self.driver.find_element('id', 'act-delete').is_enabled(), message='Delete stays disabled after the stop')
        type(self).stopped_job = job_id

    def test_06_download_csv_matches_the_api(self):
        self.go('#/jobs')
        self.wait(lambda d: self.job_row(self.delete_job) is not None)
        # Only final jobs and the purge schedule: the list does not change meanwhile.
        self.driver.find_element('id', 'act-download').click()
        downloaded = self.wait_downloaded('jobs.csv')
        status, api_csv, _ = self.host.request('GET', '/api/jobs.csv')
        self.assertEqual(status, 200)
        self.assertEqual(downloaded, api_csv)

        self.select_only(self.delete_job)
        self.driver.find_element('id', 'act-download').click()
        selected = list(csv.reader(io.StringIO(self.wait_downloaded('jobs-selected.csv').decode())))
        api_rows = list(csv.reader(io.StringIO(api_csv.decode())))
        self.assertEqual(selected[0], api_rows[0])
        self.assertEqual(selected[1:], [r for r in api_rows[1:] if r[0] == str(self.delete_job)])

    def test_07_filters_narrow_the_list(self):
        self.go('#/jobs?status=Stopped')
        self.wait(lambda d: self.job_row(self.stopped_job) is not None)
        self.assertIsNone(self.job_row(self.delete_job))
        text = self.find('#f-text')
        text.clear()
        text.send_keys('no job has this text')
        self.driver.find_element('css selector', 'form.filters button[type=submit]').click()
        self.wait(lambda d: self.driver.find_element('id', 'jobs-empty').is_displayed())

    def test_08_an_operation_that_is_not_installed_is_reported_cleanly(self):
        self.go('#/content?path=/content/site')
        form = self.find('#op-rollout')
        self.driver.execute_script('arguments[0].closest("details").open = true', form)
        blueprint = form.find_element('css selector', 'input[name=blueprint]')
        blueprint.send_keys('/content/site/en')
        form.find_element('css selector', 'button[type=submit]').click()
        self.wait(lambda d: 'not installed' in self.text_of('#op-rollout-result'))
        self.assertIn('unknown_operation', self.text_of('#op-rollout-result'))

    def test_09_inbox_shows_the_notification_with_a_link_to_the_job(self):
        status, _, _ = self.host.request('GET', '/api/inbox?limit=1')
        if status == 404:
            self.skipTest('this wharfd has no /api/inbox')
        self.go('#/inbox')
        item = self.wait(lambda d: next((e for e in self.finds('.inbox-item') if e.get_attribute('data-job-id') == str(self.delete_job)), False),
                         30, 'no inbox entry for the delete job')
        self.assertTrue(self.driver.find_element('id', 'inbox-count').is_displayed())
        before = int(self.text_of('#inbox-count'))
        self.shot('inbox')
        item.find_element('css selector', 'button').click()
        self.wait(lambda d: (self.text_of('#inbox-count') or '0') != str(before) or not self.driver.find_element('id', 'inbox-count').is_displayed())
        item = next(e for e in self.finds('.inbox-item') if e.get_attribute('data-job-id') == str(self.delete_job))
        item.find_element('css selector', 'a.inbox-job').click()
        self.wait(lambda d: d.current_url.endswith(f'#/jobs/{self.delete_job}'))

    def test_10_queues_plugins_and_config_pages(self):
        self.go('#/queues')
        self.wait(lambda d: 'default' in self.text_of('#queues-table'))
        # One host on SQLite: the instance table lists it, live, as this instance.
        self.wait(lambda d: 'this instance' in self.text_of('#instances-table')
                  and 'live' in self.text_of('#instances-table'))
        self.shot('queues')
        self.go('#/plugins')
        self.wait(lambda d: 'delete' in self.text_of('#plugins-table') and 'active' in self.text_of('#plugins-table'))
        self.shot('plugins')
        # A refused edit shows with file:line:col.
        os.makedirs(os.path.join(self.host.root, 'configs', 'queues'), exist_ok=True)
        with open(os.path.join(self.host.root, 'configs', 'queues', 'default.yaml'), 'w') as f:
            f.write('max_parallel: 1.5\n')
        self.go('#/config')
        self.wait(lambda d: 'queues/default.yaml:1:' in self.text_of('#config-table'), 30, 'refusal not shown')
        self.shot('config')

    def test_11_keyboard_and_narrow_screen(self):
        d = self.driver
        self.go('#/jobs')
        self.find('#jobs-table')
        # Tab from the page title reaches the filters before the toolbar.
        order = []
        d.find_element('id', 'page-title').click()
        active = d.switch_to.active_element
        for _ in range(8):
            active.send_keys('\ue004')  # Tab
            active = d.switch_to.active_element
            order.append(active.get_attribute('id'))
        self.assertLess(order.index('f-status'), order.index('act-stop') if 'act-stop' in order else 99)
        d.set_window_size(390, 844)
        try:
            self.wait(lambda d: d.execute_script('return document.documentElement.scrollWidth <= window.innerWidth + 1'),
                      message='the page scrolls sideways on a narrow screen')
            self.shot('jobs-narrow')
        finally:
            d.set_window_size(1280, 900)

    def test_12_a_viewer_cannot_stop_or_delete(self):
        d = self.driver
        d.get(self.host.url + '/')
        d.execute_script("sessionStorage.clear()")
        d.get(self.host.url + '/#/jobs')
        self.find('#token').send_keys(VIEWER_TOKEN)
        d.find_element('css selector', '#login-form button[type=submit]').click()
        self.wait(lambda d: self.text_of('#who-role') == 'viewer')
        self.select_only(self.delete_job)
        self.assertFalse(d.find_element('id', 'act-delete').is_enabled())
        self.assertTrue(d.find_element('id', 'act-open').is_enabled())
        d.find_element('id', 'logout').click()
        self.wait(lambda d: d.find_element('id', 'login').is_displayed())

    def test_13_firefox_shows_the_same_dashboard(self):
        # Debian 12 has no geckodriver: Firefox is driven over Marionette by a
        # Perl script (firefox-esr and libfirefox-marionette-perl, installed by
        # tools/deps.sh test).
        missing = missing_firefox()
        if missing:
            self.skipTest('Firefox not driven: missing ' + ', '.join(missing))
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'firefox_smoke.pl')
        run = subprocess.run(['/usr/bin/perl', script, self.host.url, TOKEN, str(self.delete_job),
                              r'Delete [0-9,]+ assets and folders under /content/dam/bulk', 'Success'],
                             capture_output=True, text=True, timeout=240,
                             env=dict(os.environ, MOZ_HEADLESS='1'))
        sys.stderr.write(run.stdout)
        self.assertEqual(run.returncode, 0, run.stderr[-3000:])
        self.assertIn('firefox: ok', run.stdout)


def missing_firefox():
    missing = [p for p in ('/usr/bin/firefox-esr', '/usr/bin/perl') if not os.access(p, os.X_OK)]
    if subprocess.run(['/usr/bin/perl', '-MFirefox::Marionette', '-e', '1'],
                      capture_output=True).returncode != 0:
        missing.append('libfirefox-marionette-perl')
    return missing


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument('--wharfd', required=True)
    parser.add_argument('--cli', required=True)
    parser.add_argument('--plugins', required=True, help='folder with delete.so and move.so')
    parser.add_argument('--fixtures', required=True, help='folder with jobs_sleeper.so')
    parser.add_argument('--artifacts', required=True, help='where screenshots and logs go')
    parser.add_argument('--update-screenshots', help='also copy the screenshots here')
    ARGS, rest = parser.parse_known_args()
    missing = missing_browser()
    if missing:
        print('SKIPPED: the browser tests need ' + ', '.join(missing) +
              ' (install them with: tools/deps.sh test)')
        return SKIP
    result = unittest.main(argv=[sys.argv[0], '-v', *rest], exit=False).result
    return 0 if result.wasSuccessful() else 1


if __name__ == '__main__':
    sys.exit(main())
