import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createUser } from '../../server/accounts/user.service.ts';
import { connect } from '../../server/db/connection.ts';
import { csrfOf } from '../helpers/accounts.ts';
import { BrowserBehindProxy, cookieAttributes } from '../helpers/browser-behind-proxy.ts';
import { freePort } from '../helpers/free-port.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

const entry = fileURLToPath(new URL('../../server/index.ts', import.meta.url));
const PUBLIC_URL = 'https://survey.example.org';
/** What a TLS-terminating proxy on this machine (Caddy, nginx) adds to every request it forwards. */
const FROM_THE_PROXY = { from: '127.0.0.1', headers: { 'X-Forwarded-Proto': 'https', 'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Host': 'survey.example.org' } };

interface RunningPlatform {
  child: ChildProcess;
  output: string[];
  /** Resolves with the first stdout line that matches, rejects when the process exits first. */
  waitForLine(pattern: RegExp): Promise<RegExpExecArray>;
  exited: Promise<number | null>;
}

/** `npm start` (server/index.ts) in production mode, in a process of its own, on a database of its own. */
function startPlatform(env: Record<string, string>): RunningPlatform {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    env: { PATH: process.env.PATH, NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const waiters: Array<{ pattern: RegExp; resolve: (m: RegExpExecArray) => void; reject: (e: Error) => void }> = [];
  const onLine = (line: string) => {
    output.push(line);
    for (const waiter of [...waiters]) {
      const match = waiter.pattern.exec(line);
      if (match) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(match);
      }
    }
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', onLine);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      for (const waiter of waiters.splice(0)) waiter.reject(new Error(`the platform exited (${code}) before printing ${waiter.pattern}:\n${output.join('\n')}`));
      resolve(code);
    }),
  );
  return {
    child,
    output,
    exited,
    waitForLine: (pattern) => new Promise((resolve, reject) => waiters.push({ pattern, resolve, reject })),
  };
}

const secrets = () => ({ SESSION_SECRET: randomBytes(32).toString('base64url'), TOKEN_KEY: randomBytes(32).toString('hex') });

describe('the production platform behind a TLS-terminating reverse proxy on the same machine (TRUST_PROXY=loopback)', () => {
  const dbName = `test_${randomBytes(6).toString('hex')}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'behind-proxy-'));
  let platform: RunningPlatform;
  let baseUrl: string;
  let setupPath: string;

  beforeAll(async () => {
    const port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
    platform = startPlatform({
      ...secrets(),
      HOST: '127.0.0.1',
      PORT: String(port),
      PUBLIC_URL,
      TRUST_PROXY: 'loopback',
      MONGODB_URI: `${inject('mongoUri')}/${dbName}`,
      MAIL_CATCHER: '1',
      DATA_DIR: dataDir,
    });
    // The last thing printed before the platform takes requests for the first coordinator.
    const [, path] = await platform.waitForLine(/(\/setup\/[A-Za-z0-9_-]+)\s*$/);
    setupPath = path!;
  });
  afterAll(async () => {
    if (platform && platform.child.exitCode === null) {
      platform.child.kill('SIGTERM');
      await platform.exited;
    }
    const connection = await connect(`${inject('mongoUri')}/${dbName}`);
    await connection.dropDatabase();
    await connection.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('the first coordinator is created through the setup link over https, signs out and signs in again', async () => {
    const browser = new BrowserBehindProxy(baseUrl, FROM_THE_PROXY);
    const page = await browser.get(setupPath);
    expect(page.status).toBe(200);
    // The session cookie is Secure (and still HttpOnly, SameSite=Lax).
    expect(cookieAttributes(page, 'vet.sid')).toEqual(expect.arrayContaining(['secure', 'httponly', 'samesite=lax']));
    const password = 'tall ferns whisper over the quiet harbour';
    const created = await browser.postForm(setupPath, { name: 'First Coordinator', email: 'first@board.example', password, confirm: password, _csrf: csrfOf(page.text) });
    expect(created.status).toBe(303);
    expect(created.headers.location).toBe('/admin');
    expect(cookieAttributes(created, 'vet.sid')).toContain('secure');

    const dashboard = await browser.get('/admin');
    expect(dashboard.status).toBe(200);
    expect(dashboard.text).toContain('First Coordinator');
    const connection = await connect(`${inject('mongoUri')}/${dbName}`);
    try {
      expect(await connection.collection('users').findOne({ email: 'first@board.example' })).toMatchObject({ role: 'coordinator' });
    } finally {
      await connection.close();
    }

    expect((await browser.postForm('/logout', { _csrf: csrfOf(dashboard.text) })).status).toBe(303);
    expect((await browser.get('/admin')).status).toBe(303);

    const again = new BrowserBehindProxy(baseUrl, FROM_THE_PROXY);
    const login = await again.get('/login');
    expect(cookieAttributes(login, 'vet.sid')).toContain('secure');
    const signedIn = await again.postForm('/login', { email: 'first@board.example', password, _csrf: csrfOf(login.text) });
    expect(signedIn.status).toBe(303);
    expect(signedIn.headers.location).toBe('/admin');
    expect((await again.get('/admin')).text).toContain('First Coordinator');
  });

  it('every page says to browsers: https only, for a year (HSTS)', async () => {
    const home = await new BrowserBehindProxy(baseUrl, FROM_THE_PROXY).get('/');
    expect(home.headers['strict-transport-security']).toBe('max-age=31536000');
  });

  it('a request that reached the proxy over plain http gets no session cookie', async () => {
    const browser = new BrowserBehindProxy(baseUrl, { from: '127.0.0.1', headers: { 'X-Forwarded-Proto': 'http' } });
    const login = await browser.get('/login');
    expect(login.status).toBe(200);
    expect(cookieAttributes(login, 'vet.sid')).toBeUndefined();
  });
});

describe('a production platform that could not work', () => {
  it('with an https PUBLIC_URL, no TRUST_PROXY and no SMTP_URL, it refuses to start and says what to set', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'refused-'));
    const platform = startPlatform({
      ...secrets(),
      PORT: String(await freePort()),
      PUBLIC_URL,
      MONGODB_URI: `${inject('mongoUri')}/test_${randomBytes(6).toString('hex')}`,
      DATA_DIR: dataDir,
    });
    try {
      // It either stops before listening, or gets as far as listening: then it wrongly started.
      const started = await platform.waitForLine(/The platform is running/).then(() => true, () => false);
      if (started) platform.child.kill('SIGTERM');
      expect(await platform.exited).toBe(1);
      const output = platform.output.join('\n');
      expect(output).toMatch(/TRUST_PROXY: PUBLIC_URL is https/);
      expect(output).toMatch(/SMTP_URL: required in production/);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('X-Forwarded-Proto from anyone but the trusted proxy is ignored (Secure session cookie on)', () => {
  let platform: TestPlatform;
  let server: Server;
  let baseUrl: string;
  let trusting: TestPlatform;
  let trustingServer: Server;
  let trustingUrl: string;

  const listen = (app: TestPlatform['app']) =>
    new Promise<Server>((resolve) => {
      const listening: Server = createServer(app).listen(0, '127.0.0.1', () => resolve(listening));
    });
  const urlOf = (s: Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;

  beforeAll(async () => {
    // No proxy trusted.
    platform = await startTestPlatform({ https: { secureCookies: true } });
    server = await listen(platform.app);
    baseUrl = urlOf(server);
    // Only the proxy at 127.0.0.1 is trusted; 127.0.0.2 is a client on the network.
    trusting = await startTestPlatform({ https: { secureCookies: true, trustProxy: '127.0.0.1' } });
    trustingServer = await listen(trusting.app);
    trustingUrl = urlOf(trustingServer);
  });
  afterAll(async () => {
    server.closeAllConnections();
    trustingServer.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await new Promise((resolve) => trustingServer.close(resolve));
    await platform.close();
    await trusting.close();
  });

  const claimsHttps = { 'X-Forwarded-Proto': 'https' };

  it('when no proxy is trusted, a client claiming https gets no session cookie and cannot sign in', async () => {
    const password = 'tall ferns whisper over the quiet harbour';
    const user = await createUser({ models: platform.models, now: platform.clock.now }, { name: 'Claire Proxy', email: 'claire@board.example', role: 'coordinator', password }, 'test');
    const browser = new BrowserBehindProxy(baseUrl, { from: '127.0.0.1', headers: claimsHttps });
    const login = await browser.get('/login');
    expect(login.status).toBe(200);
    expect(cookieAttributes(login, 'vet.sid')).toBeUndefined();
    const attempt = await browser.postForm('/login', { email: 'claire@board.example', password, _csrf: csrfOf(login.text) });
    expect(attempt.status).toBe(403);
    expect(browser.cookie('vet.sid')).toBeUndefined();
    // No stored session belongs to the user.
    const sessions = await platform.models.User.db.collection('sessions').find({}).toArray();
    expect(JSON.stringify(sessions)).not.toContain(user.id);
  });

  it('when only the proxy at 127.0.0.1 is trusted, the same header from 127.0.0.2 gets no cookie, from the proxy a Secure one', async () => {
    const client = new BrowserBehindProxy(trustingUrl, { from: '127.0.0.2', headers: claimsHttps });
    const direct = await client.get('/login');
    expect(direct.status).toBe(200);
    expect(cookieAttributes(direct, 'vet.sid')).toBeUndefined();

    const proxied = await new BrowserBehindProxy(trustingUrl, { from: '127.0.0.1', headers: claimsHttps }).get('/login');
    expect(cookieAttributes(proxied, 'vet.sid')).toContain('secure');
  });
});
