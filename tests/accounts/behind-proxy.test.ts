import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
import { dropTestDatabase, startTestPlatform } from '../helpers/test-platform.ts';

const entry = fileURLToPath(new URL('../../server/index.ts', import.meta.url));
const PUBLIC_URL = 'https://survey.example.org';
/** What a TLS-terminating proxy on this machine (Caddy, nginx) adds to every request it forwards. */
const FROM_THE_PROXY = { from: '127.0.0.1', headers: { 'X-Forwarded-Proto': 'https', 'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Host': 'survey.example.org' } };

interface RunningPlatform {
  child: ChildProcess;
  output: string[];
  /** Resolves with the first output line (stdout or stderr) that matches, rejects when the process exits first. */
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

const secrets = () => ({ SESSION_SECRET: randomBytes(32).toString('base64url'), TOKEN_KEY: randomBytes(32).toString('hex'), INSTITUTION_TAG_KEY: randomBytes(32).toString('hex') });

/**
 * The documented production set-up (https PUBLIC_URL, a TLS-terminating proxy
 * on this machine) on a fresh database, up to the printed setup link for the
 * first coordinator.
 */
async function startBehindProxy(trustProxy: string) {
  const dbName = `test_${randomBytes(6).toString('hex')}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'behind-proxy-'));
  const port = await freePort();
  const platform = startPlatform({
    ...secrets(),
    HOST: '127.0.0.1',
    PORT: String(port),
    PUBLIC_URL,
    TRUST_PROXY: trustProxy,
    MONGODB_URI: `${inject('mongoUri')}/${dbName}`,
    MAIL_CATCHER: '1',
    DATA_DIR: dataDir,
  });
  // With JSON logs (production) the one-time setup link is not logged: the log names the private file that holds it.
  const [, file] = await platform.waitForLine(/"file":"([^"]+first-coordinator-link\.txt)"/);
  const setupPath = /(\/setup\/[A-Za-z0-9_-]+)\s*$/m.exec(readFileSync(file!, 'utf8'))?.[1];
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    setupPath: setupPath!,
    /** What it printed (stdout and stderr). */
    output: platform.output,
    /** The platform's database, as another client sees it. */
    async users() {
      const connection = await connect(`${inject('mongoUri')}/${dbName}`);
      try {
        return await connection.collection('users').find({}).toArray();
      } finally {
        await connection.close();
      }
    },
    async stop() {
      if (platform.child.exitCode === null) {
        platform.child.kill('SIGTERM');
        await platform.exited;
      }
      await dropTestDatabase(dbName);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

describe('the production platform behind a TLS-terminating reverse proxy on the same machine (TRUST_PROXY=loopback)', () => {
  let platform: Awaited<ReturnType<typeof startBehindProxy>>;
  let baseUrl: string;
  let setupPath: string;

  beforeAll(async () => {
    platform = await startBehindProxy('loopback');
    ({ baseUrl, setupPath } = platform);
  });
  afterAll(async () => {
    await platform?.stop();
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
    expect(await platform.users()).toEqual([expect.objectContaining({ email: 'first@board.example', role: 'coordinator' })]);

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

  it('at start it prints its public address and where the proxy reaches it, and no warning', () => {
    // Production logs are JSON lines.
    const lines = platform.output.flatMap((line) => {
      try {
        return [JSON.parse(line) as { level: number; msg: string }];
      } catch {
        return [];
      }
    });
    expect(lines.map((l) => l.msg)).toContain(`The platform is running at ${PUBLIC_URL} (listening on ${baseUrl})`);
    // The only warning is where the one-time setup link was written; none about the configuration.
    expect(lines.filter((l) => l.level >= 40 && !/first coordinator/.test(l.msg))).toEqual([]);
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
  const claimsHttps = { 'X-Forwarded-Proto': 'https' };

  it('with TRUST_PROXY=127.0.0.1, a client at 127.0.0.2 claiming https gets no cookie and cannot use the setup link; the proxy gets a Secure cookie', async () => {
    const platform = await startBehindProxy('127.0.0.1');
    try {
      const client = new BrowserBehindProxy(platform.baseUrl, { from: '127.0.0.2', headers: claimsHttps });
      const page = await client.get(platform.setupPath);
      expect(page.status).toBe(200);
      expect(cookieAttributes(page, 'vet.sid')).toBeUndefined();
      const password = 'tall ferns whisper over the quiet harbour';
      const attempt = await client.postForm(platform.setupPath, { name: 'Not Via Proxy', email: 'direct@board.example', password, confirm: password, _csrf: csrfOf(page.text) });
      expect(attempt.status).toBe(403);
      expect(await platform.users()).toEqual([]);

      const proxied = await new BrowserBehindProxy(platform.baseUrl, { from: '127.0.0.1', headers: claimsHttps }).get(platform.setupPath);
      expect(cookieAttributes(proxied, 'vet.sid')).toContain('secure');
    } finally {
      await platform.stop();
    }
  });

  it('when createApp trusts no proxy, a client claiming https gets no session cookie and cannot sign in', async () => {
    const platform = await startTestPlatform({ https: { secureCookies: true } });
    const server = await new Promise<Server>((resolve) => {
      const listening: Server = createServer(platform.app).listen(0, '127.0.0.1', () => resolve(listening));
    });
    try {
      const password = 'tall ferns whisper over the quiet harbour';
      const user = await createUser({ models: platform.models, now: platform.clock.now }, { name: 'Claire Proxy', email: 'claire@board.example', role: 'coordinator', password }, 'test');
      const browser = new BrowserBehindProxy(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { from: '127.0.0.1', headers: claimsHttps });
      const login = await browser.get('/login');
      expect(login.status).toBe(200);
      expect(cookieAttributes(login, 'vet.sid')).toBeUndefined();
      const attempt = await browser.postForm('/login', { email: 'claire@board.example', password, _csrf: csrfOf(login.text) });
      expect(attempt.status).toBe(403);
      expect(browser.cookie('vet.sid')).toBeUndefined();
      // No stored session belongs to the user.
      const sessions = await platform.models.User.db.collection('sessions').find({}).toArray();
      expect(JSON.stringify(sessions)).not.toContain(user.id);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await platform.close();
    }
  });
});
