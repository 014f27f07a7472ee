/**
 * npm run soak [-- --minutes 3 --workers 24 --respondents 150 --burst 200]
 *
 * Runs the real platform (server/index.ts, its own process) on a fresh
 * embedded database with the local mail catcher, and drives it over loopback
 * with many concurrent, mixed requests for a bounded time: personal links
 * opened, drafts saved and read back, questionnaires submitted, coordinators
 * and reviewers signing in, fieldwork, reminder and evidence pages, and the
 * invitations of a campaign being sent meanwhile. Every reply is checked
 * against what the soak itself did (a draft reads back what was saved, a page
 * names its own campaign, a revision follows the last one, every contact gets
 * exactly one invitation). Then a burst of concurrent 250 KB submissions while
 * the home page is timed.
 *
 * Prints requests, unexpected errors (target 0), wrong answers (target 0), the
 * server's logged errors and the home page's latency during the burst (target:
 * p95 < 300 ms); exits 1 when an error or a wrong answer was seen.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Types } from 'mongoose';
import { completeAnswers } from '../tests/fixtures/complete-answers.ts';
import { connect } from '../server/db/connection.ts';
import { defineModels } from '../server/db/models.ts';
import { createUser } from '../server/accounts/user.service.ts';
import { createInvitations, personalLink } from '../server/invitations/invitation.service.ts';
import { loadSecrets } from '../server/shared/secrets.ts';
import { noteContactsChange } from '../server/shared/contact-changes.ts';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '3' },
    workers: { type: 'string', default: '24' },
    respondents: { type: 'string', default: '150' },
    burst: { type: 'string', default: '200' },
    keep: { type: 'boolean', default: false },
  },
});
const minutes = Number(args.minutes);
const workers = Number(args.workers);
const respondentCount = Number(args.respondents);
const burstCount = Number(args.burst);

// ---------------------------------------------------------------- tallies

const tally = { requests: 0, unexpected: 0, wrong: 0 };
const byKind = new Map<string, { n: number; ms: number[] }>();
const problems: string[] = [];

function count(kind: string, ms: number) {
  tally.requests += 1;
  const entry = byKind.get(kind) ?? { n: 0, ms: [] };
  entry.n += 1;
  entry.ms.push(ms);
  byKind.set(kind, entry);
}
function unexpected(what: string) {
  tally.unexpected += 1;
  if (problems.length < 40) problems.push(`error: ${what}`);
}
function wrong(what: string) {
  tally.wrong += 1;
  if (problems.length < 40) problems.push(`wrong: ${what}`);
}

// ---------------------------------------------------------------- HTTP

let base = '';

interface Reply {
  status: number;
  text: string;
  headers: Headers;
}

async function http(kind: string, path: string, init: RequestInit & { cookie?: string } = {}): Promise<Reply | undefined> {
  const started = performance.now();
  try {
    const headers = new Headers(init.headers);
    if (init.cookie) headers.set('cookie', init.cookie);
    const response = await fetch(base + path, { ...init, headers, redirect: 'manual' });
    const text = await response.text();
    count(kind, performance.now() - started);
    return { status: response.status, text, headers: response.headers };
  } catch (error) {
    count(kind, performance.now() - started);
    unexpected(`${kind} ${path}: ${(error as Error).message}`);
    return undefined;
  }
}

function expectStatus(kind: string, reply: Reply | undefined, ...statuses: number[]): reply is Reply {
  if (!reply) return false;
  if (statuses.includes(reply.status)) return true;
  unexpected(`${kind} answered ${reply.status}: ${reply.text.slice(0, 160).replace(/\s+/g, ' ')}`);
  return false;
}

/** Text that a correct page never contains: signs of a half-built or mixed-up answer. */
function checkPage(kind: string, html: string, mustContain: string[]) {
  for (const needle of mustContain) if (!html.includes(needle)) wrong(`${kind}: the page lacks "${needle}"`);
  const bad = /\bundefined\b|\bNaN\b|\[object Object\]/.exec(html.replace(/<script[\s\S]*?<\/script>/g, ''));
  if (bad) wrong(`${kind}: the page shows "${bad[0]}"`);
}

const cookieOf = (reply: Reply) => /vet\.sid=[^;]+/.exec(reply.headers.get('set-cookie') ?? '')?.[0];
const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
const form = (fields: Record<string, string>) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(fields).toString(),
});

async function signIn(kind: string, email: string, password: string, name: string): Promise<string | undefined> {
  const page = await http(`${kind}: login page`, '/login');
  if (!expectStatus('login page', page, 200)) return undefined;
  const cookie = cookieOf(page);
  const csrf = csrfOf(page.text);
  if (!cookie || !csrf) return void wrong('login page without a session cookie or CSRF token');
  const posted = await http(`${kind}: sign in`, '/login', { ...form({ email, password, _csrf: csrf }), cookie });
  if (!expectStatus(`${kind}: sign in`, posted, 303)) return undefined;
  const session = cookieOf(posted) ?? cookie;
  const admin = await http(`${kind}: dashboard`, '/admin', { cookie: session });
  if (expectStatus(`${kind}: dashboard`, admin, 200)) checkPage(`${kind}: dashboard`, admin.text, [name]);
  return session;
}

// ---------------------------------------------------------------- the platform

interface Platform {
  child: ChildProcess;
  uri: string;
  dataDir: string;
  logErrors: string[];
  stop(): Promise<void>;
}

async function startPlatform(dataDir: string): Promise<Platform> {
  // A fresh embedded engine and the local mail catcher, whatever this shell has set.
  const { MONGODB_URI: _uri, SMTP_URL: _smtp, ...env } = process.env;
  const child = spawn(process.execPath, ['scripts/run-built.mjs', 'server/index.ts'], {
    env: { ...env, DATA_DIR: dataDir, PORT: '0', NO_DEMO: '1', TOKEN_RATE_LIMIT: '1000000', NODE_ENV: 'development' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logErrors: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => logErrors.push(line));
  let uri = '';
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      const running = /running at (http:\/\/[^\s"]+)/.exec(line);
      if (running) base = running[1]!;
      const cli = /MONGODB_URI=([^\s"]+)/.exec(line);
      if (cli) uri = cli[1]!;
      if (base && uri) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the platform exited with ${code}:\n${logErrors.join('\n')}`)));
  });
  return {
    child,
    uri,
    dataDir,
    logErrors,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

// ---------------------------------------------------------------- data

interface Invited {
  path: string;
  email: string;
  /** What the soak last stored for this invitation; a worker owns it while it works on it. */
  marker?: string;
  revision: number;
}

async function seed(platform: Platform) {
  const connection = await connect(platform.uri);
  const models = defineModels(connection);
  const now = () => new Date();
  const { tokenKey } = loadSecrets({ dataDir: platform.dataDir });

  const users = {
    coordinator: { email: 'coordinator@soak.example', password: 'soak coordinator password 1', name: 'Soak Coordinator' },
    reviewer: { email: 'reviewer@soak.example', password: 'soak reviewer password 1', name: 'Soak Reviewer' },
  };
  await createUser({ models, now }, { ...users.coordinator, role: 'coordinator' }, 'soak');
  await createUser({ models, now }, { ...users.reviewer, role: 'reviewer' }, 'soak');

  const countries = ['AT', 'DE', 'FR', 'IT', 'PL'];
  const makeCampaign = async (name: string, size: number) => {
    const campaign = await models.Campaign.create({
      name,
      strands: ['S1', 'S2', 'S3', 'S4'],
      opensAt: new Date(Date.now() - 86_400_000),
      closesAt: new Date(Date.now() + 30 * 86_400_000),
    });
    const institutions = await models.Institution.insertMany(
      Array.from({ length: Math.ceil(size / 2) }, (_, i) => {
        const name = `${campaign.name} school ${i}`;
        return { name, country: countries[i % countries.length], type: 'ivet_school', key: `${campaign._id}-${i}` };
      }),
    );
    const contacts = Array.from({ length: size }, (_, i) => ({
      _id: new Types.ObjectId(),
      institution: institutions[i % institutions.length]!._id,
      name: `Leader ${i}`,
      email: `${name.toLowerCase().replace(/\W+/g, '-')}-${i}@soak.example`,
      language: (['en', 'fr', 'de'] as const)[i % 3],
    }));
    await models.Contact.insertMany(contacts);
    await noteContactsChange(models);
    await createInvitations({ models, tokenKey, publicUrl: '' }, campaign._id, contacts);
    const invitations = await models.Invitation.find({ campaign: campaign._id }).lean();
    const emailOf = new Map(contacts.map((c) => [String(c._id), c.email]));
    return {
      id: String(campaign._id),
      name,
      invited: invitations.map((invitation): Invited => ({
        path: personalLink({ tokenKey, publicUrl: '' }, invitation),
        email: emailOf.get(String(invitation.contact))!,
        revision: 0,
      })),
    };
  };
  const fieldwork = await makeCampaign('Soak wave', respondentCount);
  const burst = await makeCampaign('Burst wave', burstCount);
  await connection.close();
  return { users, fieldwork, burst };
}

// ---------------------------------------------------------------- the respondent's path

const fullAnswers = completeAnswers();

/** One visit of a personal link; what the page shows must be this invitation's own state (revision, last draft). */
async function respondentVisit(invited: Invited) {
  const page = await http('link: open', invited.path + '?edit=1');
  if (!expectStatus('link: open', page, 200)) return;
  const boot = bootOf(page.text);
  if (!boot) return void wrong('link: open: no boot data');
  checkPage('link: open', page.text.replace(/<script type="application\/json" id="boot">[\s\S]*?<\/script>/, ''), []);
  if (boot.revision !== invited.revision) wrong(`link: open: revision ${boot.revision}, expected ${invited.revision}`);
  if (invited.marker && boot.data.S1_6 !== invited.marker) {
    wrong(`link: open: the draft read back is not the one saved (${JSON.stringify(boot.data).slice(0, 80)})`);
  }
  const headers = { 'content-type': 'application/json', 'x-csrf-token': boot.csrf };
  if (Math.random() < 0.7) {
    const marker = `draft ${Math.random().toString(36).slice(2)}`;
    const saved = await http('link: save draft', `${invited.path}/draft`, {
      method: 'PUT',
      headers,
      body: JSON.stringify({ data: { ...boot.data, S1_6: marker }, pageNo: 1, baseRevision: invited.revision, language: boot.language }),
    });
    if (expectStatus('link: save draft', saved, 200)) invited.marker = marker;
  } else {
    const marker = `submitted ${Math.random().toString(36).slice(2)}`;
    const submitted = await http('link: submit', `${invited.path}/submit`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ data: { ...fullAnswers, S1_6: marker }, baseRevision: invited.revision, language: boot.language }),
    });
    if (expectStatus('link: submit', submitted, 201)) {
      const result = JSON.parse(submitted.text) as { revision?: number };
      if (result.revision !== invited.revision + 1) wrong(`link: submit: revision ${result.revision}, expected ${invited.revision + 1}`);
      invited.revision = result.revision ?? invited.revision + 1;
      invited.marker = marker;
      const confirmation = await http('link: confirmation', invited.path);
      if (expectStatus('link: confirmation', confirmation, 200) && !confirmation.text.includes('id="confirmation"')) {
        wrong('link: after a submission the link does not show the confirmation');
      }
    }
  }
}

function bootOf(html: string): { revision: number; data: Record<string, unknown>; csrf: string; language: string } | undefined {
  const match = /<script type="application\/json" id="boot">([\s\S]*?)<\/script>/.exec(html);
  return match ? JSON.parse(match[1]!) : undefined;
}

// ---------------------------------------------------------------- main

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'soak-'));
  console.log(`soak: ${minutes} min, ${workers} workers, ${respondentCount} respondents, burst of ${burstCount}; data in ${dataDir}`);
  const platform = await startPlatform(dataDir);
  console.log(`platform at ${base}, database ${platform.uri}`);
  const { users, fieldwork, burst } = await seed(platform);
  let submittedTotal = 0;

  // The coordinator sends the fieldwork wave's invitations; the platform's sender works during the soak.
  const coordinatorSession = await signIn('coordinator', users.coordinator.email, users.coordinator.password, users.coordinator.name);
  if (!coordinatorSession) throw new Error('the coordinator cannot sign in: nothing to soak');
  // The confirmation page says how many emails will go; the form sends that number back.
  const confirmPage = await http('coordinator: confirm sending', `/admin/campaigns/${fieldwork.id}/send`, { cookie: coordinatorSession });
  const csrf = confirmPage && csrfOf(confirmPage.text);
  const expected = confirmPage && /name="expected" value="(\d+)"/.exec(confirmPage.text)?.[1];
  if (expected !== String(fieldwork.invited.length)) wrong(`the confirmation page announces ${expected} emails for ${fieldwork.invited.length} invitations`);
  // And which send this is (a second click of the same form queues nothing more).
  const sendNo = confirmPage && /name="sendNo" value="(\d+)"/.exec(confirmPage.text)?.[1];
  const send = await http('coordinator: send invitations', `/admin/campaigns/${fieldwork.id}/send`, { ...form({ _csrf: csrf ?? '', expected: expected ?? '', sendNo: sendNo ?? '' }), cookie: coordinatorSession });
  expectStatus('coordinator: send invitations', send, 303);

  const idle = [...fieldwork.invited];
  const deadline = Date.now() + minutes * 60_000;
  const started = Date.now();
  let lastReport = started;

  async function worker(index: number) {
    while (Date.now() < deadline) {
      const roll = Math.random();
      if (roll < 0.7) {
        const invited = idle.splice(Math.floor(Math.random() * idle.length), 1)[0];
        if (!invited) continue;
        const before = invited.revision;
        await respondentVisit(invited);
        if (invited.revision > before) submittedTotal += 1;
        idle.push(invited);
      } else if (roll < 0.8) {
        const session = await signIn('coordinator', users.coordinator.email, users.coordinator.password, users.coordinator.name);
        if (!session) continue;
        const page = Math.random() < 0.5 ? 'reminders' : 'fieldwork';
        const reply = await http(`coordinator: ${page}`, `/admin/campaigns/${fieldwork.id}/${page}`, { cookie: session });
        if (expectStatus(`coordinator: ${page}`, reply, 200)) {
          checkPage(`coordinator: ${page}`, reply.text, [fieldwork.name]);
          if (page === 'reminders') {
            const total = Number(/id="dry-run-total">(\d+)</.exec(reply.text)?.[1] ?? -1);
            if (total < 0 || total > fieldwork.invited.length) wrong(`reminders: a dry run of ${total} for ${fieldwork.invited.length} invitations`);
          }
        }
      } else {
        const session = await signIn('reviewer', users.reviewer.email, users.reviewer.password, users.reviewer.name);
        if (!session) continue;
        const path = (['/evidence', '/evidence/questions', '/evidence/barriers'] as const)[index % 3];
        const submittedBefore = submittedTotal;
        const reply = await http(`reviewer: ${path}`, `${path}?campaign=${fieldwork.id}`, { cookie: session });
        if (expectStatus(`reviewer: ${path}`, reply, 200)) {
          checkPage(`reviewer: ${path}`, reply.text, [fieldwork.name]);
          const shown = /<strong>(\d+)<\/strong> responses/.exec(reply.text)?.[1];
          // Counts may lag (they are cached) but can never exceed what was submitted.
          if (shown !== undefined && Number(shown) > Math.max(submittedBefore, submittedTotal) + workers) {
            wrong(`evidence shows ${shown} responses; at most ${submittedTotal} were submitted`);
          }
        }
      }
      if (Date.now() - lastReport > 30_000) {
        lastReport = Date.now();
        console.log(`  ${Math.round((Date.now() - started) / 1000)} s: ${tally.requests} requests, ${tally.unexpected} unexpected errors, ${tally.wrong} wrong answers`);
      }
    }
  }
  await Promise.all(Array.from({ length: workers }, (_, i) => worker(i)));
  const mixedSeconds = (Date.now() - started) / 1000;

  // Every contact of the wave got exactly one invitation (the sender had the whole soak).
  const mailIndex = join(dataDir, 'mail', 'index.jsonl');
  const waitUntil = Date.now() + 120_000;
  const caught = () =>
    existsSync(mailIndex)
      ? readFileSync(mailIndex, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as { to: string[] })
      : [];
  while (caught().length < fieldwork.invited.length && Date.now() < waitUntil) await new Promise((r) => setTimeout(r, 500));
  const perRecipient = new Map<string, number>();
  for (const message of caught()) for (const to of message.to) perRecipient.set(to, (perRecipient.get(to) ?? 0) + 1);
  const caughtCount = caught().length;
  const missing = fieldwork.invited.filter((i) => !perRecipient.has(i.email)).length;
  const twice = [...perRecipient.values()].filter((n) => n > 1).length;
  if (missing > 0) unexpected(`${missing} contacts received no invitation within two minutes`);
  if (twice > 0) wrong(`${twice} contacts received more than one invitation`);

  // Burst: concurrent 250 KB submissions while the home page is timed.
  const padding = 'x'.repeat(240 * 1024);
  const homeLatencies: number[] = [];
  let bursting = true;
  const prober = (async () => {
    while (bursting) {
      const t0 = performance.now();
      const home = await http('home during burst', '/');
      homeLatencies.push(performance.now() - t0);
      expectStatus('home during burst', home, 200);
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  const burstStarted = performance.now();
  const burstStatuses = await Promise.all(
    burst.invited.map(async (invited) => {
      const page = await http('burst: open', invited.path);
      const boot = page && bootOf(page.text);
      if (!boot) return 0;
      const reply = await http('burst: submit 250 KB', `${invited.path}/submit`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': boot.csrf },
        body: JSON.stringify({ data: { ...fullAnswers, soak_padding: padding }, baseRevision: 0, language: boot.language }),
      });
      expectStatus('burst: submit 250 KB', reply, 201);
      return reply?.status ?? 0;
    }),
  );
  const burstSeconds = (performance.now() - burstStarted) / 1000;
  bursting = false;
  await prober;

  await platform.stop();
  const serverErrors = platform.logErrors.filter((line) => /error|unexpected|out of order|SQLITE_BUSY|cursor/i.test(line));
  for (const line of serverErrors.slice(0, 10)) problems.push(`server log: ${line.slice(0, 200)}`);
  if (!args.keep) rmSync(dataDir, { recursive: true, force: true });

  // ------------------------------------------------------------ report
  const pct = (values: number[], p: number) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN;
  };
  console.log(`\nmixed phase: ${mixedSeconds.toFixed(0)} s, ${workers} concurrent workers`);
  console.log(`${'request'.padEnd(34)} ${'count'.padStart(7)} ${'p50 ms'.padStart(8)} ${'p95 ms'.padStart(8)}`);
  for (const [kind, entry] of [...byKind.entries()].sort()) {
    console.log(`${kind.padEnd(34)} ${String(entry.n).padStart(7)} ${pct(entry.ms, 50).toFixed(1).padStart(8)} ${pct(entry.ms, 95).toFixed(1).padStart(8)}`);
  }
  console.log(`\nsubmissions in the mixed phase: ${submittedTotal}; invitations caught: ${caughtCount} for ${fieldwork.invited.length} contacts (missing ${missing}, duplicated ${twice})`);
  console.log(`burst: ${burstCount} concurrent 250 KB submissions in ${burstSeconds.toFixed(1)} s, ${burstStatuses.filter((s) => s === 201).length} stored`);
  console.log(`home page during the burst: ${homeLatencies.length} requests, p50 ${pct(homeLatencies, 50).toFixed(0)} ms, p95 ${pct(homeLatencies, 95).toFixed(0)} ms, max ${Math.max(...homeLatencies).toFixed(0)} ms (target p95 < 300 ms)`);
  console.log(`\nrequests ${tally.requests}   unexpected errors ${tally.unexpected} (target 0)   wrong answers ${tally.wrong} (target 0)   server log errors ${serverErrors.length}`);
  for (const problem of problems) console.log(`  ${problem}`);
  process.exitCode = tally.unexpected + tally.wrong + serverErrors.length > 0 ? 1 : 0;
}

await main();
