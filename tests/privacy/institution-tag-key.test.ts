import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mongo, type Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createInvitations, personalLink } from '../../server/invitations/invitation.service.ts';
import { RECORDS_MIGRATION } from '../../server/evidence/analytic-record.ts';
import { INSTITUTION_TAGS_MIGRATION, institutionTagger, InstitutionTagKeyError, openSecret, sealInstitutionSecrets, sealSecret } from '../../server/evidence/institution-tag.ts';
import { claimOnce } from '../../server/shared/claim.model.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { signIn, type SignedInAgent } from '../helpers/accounts.ts';
import { freePort } from '../helpers/free-port.ts';
import { respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';
import { searchEveryCollection } from './subject-data.ts';

const entry = fileURLToPath(new URL('../../server/index.ts', import.meta.url));

let platform: TestPlatform;
let coordinator: SignedInAgent;
beforeAll(async () => {
  platform = await startTestPlatform({ minCellInstitutions: 2, minCellRespondents: 1 });
  coordinator = await signIn(platform, 'coordinator');
});
afterAll(async () => platform.close());

/**
 * A campaign as the platform leaves it: two institutions, two respondents at
 * the first (one of them then forgotten, so an anonymous response carries the
 * institution's tag), one at the second.
 */
async function campaignWithResponses() {
  const first = await createInvitedContact(platform, { strands: ['S1', 'S4'] });
  const colleague = await platform.models.Contact.create({ institution: first.institution._id, name: 'Colleague', email: `colleague-${first.contact.email}`, language: 'en' });
  await createInvitations({ models: platform.models, tokenKey: platform.tokenKey, publicUrl: '' }, first.campaignId, [colleague]);
  const colleagueInvitation = (await platform.models.Invitation.findOne({ campaign: first.campaignId, contact: colleague._id }))!;
  const other = await createInvitedContact(platform, { campaignId: first.campaignId });
  await respondent(platform, first.path, first.invitation.tokenHash).submit({ data: completeAnswers({ S4_1: 1, S4_2: 1 }), baseRevision: 0, language: 'en' }).expect(201);
  await respondent(platform, personalLink({ tokenKey: platform.tokenKey, publicUrl: '' }, colleagueInvitation), colleagueInvitation.tokenHash)
    .submit({ data: completeAnswers({ S4_1: 4, S4_2: 4 }), baseRevision: 0, language: 'en' })
    .expect(201);
  await respondent(platform, other.path, other.invitation.tokenHash).submit({ data: completeAnswers({ P1: 'DE', S4_1: 3, S4_2: 3 }), baseRevision: 0, language: 'en' }).expect(201);
  await coordinator.agent.post('/admin/privacy/erase').type('form').send({ _csrf: coordinator.csrf, email: first.contact.email, mode: 'forget', confirm: 'yes' }).expect(200);
  return { campaignId: first.campaignId, institutions: [first.institution._id, other.institution._id] };
}

/** The tag as institution-tag.ts defines it, computed here independently from a candidate secret. */
function tagFrom(secret: Buffer, institution: Types.ObjectId): string {
  return `t:${createHmac('sha256', secret).update(`institution:${institution}`).digest('base64url').slice(0, 22)}`;
}

async function storedTags(campaignId: Types.ObjectId): Promise<Set<string>> {
  return new Set((await platform.models.AnalyticRecord.find({ campaign: campaignId }, { institution: 1 }).lean()).map((r) => r.institution));
}

/** Bookkeeping the running test platform writes by itself (sign-ins, the evidence followers' leases, journal compaction). */
const BOOKKEEPING = ['sessions', 'evidence_followers', 'evidence_journal', 'rate_limit_windows'];

/** Every document of every collection, as stored; `withBookkeeping` false: only the collections that hold data. */
async function wholeDatabase(withBookkeeping = false): Promise<Record<string, unknown[]>> {
  const db = platform.models.Contact.db.db!;
  const all: Record<string, unknown[]> = {};
  for (const { name } of await db.listCollections().toArray()) {
    if (withBookkeeping || !BOOKKEEPING.includes(name)) all[name] = await db.collection(name).find({}).sort({ _id: 1 }).toArray();
  }
  return all;
}

/** Every string value of a stored document, at any depth. */
function stringsOf(value: unknown, into: string[] = []): string[] {
  if (typeof value === 'string') into.push(value);
  else if (value instanceof mongo.Binary) into.push(Buffer.from(value.buffer).toString('base64'));
  else if (Array.isArray(value)) for (const item of value) stringsOf(item, into);
  else if (value && typeof value === 'object' && !(value instanceof Date) && !(value instanceof mongo.ObjectId)) for (const item of Object.values(value)) stringsOf(item, into);
  return into;
}

async function published(campaignId: unknown) {
  const json = (await coordinator.agent.get(`/evidence/indicators.json?campaign=${campaignId}&by=country`).expect(200)).body;
  return { indicators: json.indicators, questions: json.questions.filter((q: { kind: string }) => q.kind !== 'text') };
}

/** `npm start` (server/index.ts) on the test platform's database, in a process of its own; resolves with its exit code and output. */
async function startPlatformProcess(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    env: { PATH: process.env.PATH, PORT: String(await freePort()), NO_DEMO: '1', MONGODB_URI: `${inject('mongoUri')}/${platform.models.Response.db.name}`, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
    // Had it started, it would have accepted the key: stop it, the test then fails on its exit code.
    if (output.includes('The platform is running')) child.kill('SIGTERM');
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, output };
}

describe('the institution tag secrets are sealed with a key that is not in the database', () => {
  it('after a campaign has responses, no collection holds its secret or the key in the clear, and no stored value recomputes a tag', async () => {
    const { campaignId, institutions } = await campaignWithResponses();
    const tags = await storedTags(campaignId);
    expect(tags.size).toBe(2);

    // With the key, the sealed value opens to the secret the records' tags were made with.
    const sealed = (await platform.models.InstitutionSecret.findById(campaignId).lean())!;
    expect(sealed).not.toHaveProperty('secret');
    const secret = openSecret(platform.tagKey, String(campaignId), sealed.sealed!);
    expect(new Set(institutions.map((institution) => tagFrom(secret, institution)))).toEqual(tags);

    // Neither the secret nor the key is stored anywhere, in any encoding.
    const needles = [secret, platform.tagKey].flatMap((bytes) => [bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex')]);
    expect(await searchEveryCollection(platform, needles)).toEqual([]);

    // A copy of the database alone: no stored value, taken as a secret, gives an institution's tag.
    for (const [collection, documents] of Object.entries(await wholeDatabase(true))) {
      for (const value of stringsOf(documents)) {
        for (const candidate of [Buffer.from(value, 'base64'), Buffer.from(value, 'hex'), Buffer.from(value)]) {
          for (const institution of institutions) expect(tags.has(tagFrom(candidate, institution)), `${collection}: ${value}`).toBe(false);
        }
      }
    }

    // The sealed value opens with the key only, and only for its own campaign.
    expect(() => openSecret(randomBytes(32), String(campaignId), sealed.sealed!)).toThrow(InstitutionTagKeyError);
    const { campaignId: otherCampaign } = await campaignWithResponses();
    expect(() => openSecret(platform.tagKey, String(otherCampaign), sealed.sealed!)).toThrow(InstitutionTagKeyError);
  });

  it('a database whose secrets are stored in the clear gets them sealed at start, once: the same tags, and the evidence unchanged', async () => {
    const a = await campaignWithResponses();
    const b = await campaignWithResponses();
    const before = { a: await published(a.campaignId), b: await published(b.campaignId) };
    // Back to how the earlier version stored them: the secret in the clear.
    for (const { campaignId } of [a, b]) {
      const secret = openSecret(platform.tagKey, String(campaignId), (await platform.models.InstitutionSecret.findById(campaignId).lean())!.sealed!);
      await platform.models.InstitutionSecret.collection.replaceOne({ _id: campaignId }, { secret: secret.toString('base64') });
    }
    const stored = await wholeDatabase();
    const unchanged = (database: Record<string, unknown[]>) => Object.fromEntries(Object.entries(database).filter(([name]) => name !== 'institution_secrets'));

    // A start cut short after sealing the first: the next start seals the second only.
    const secretA = Buffer.from((await platform.models.InstitutionSecret.findById(a.campaignId).lean())!.secret!, 'base64');
    await platform.models.InstitutionSecret.collection.replaceOne({ _id: a.campaignId }, { sealed: sealSecret(platform.tagKey, String(a.campaignId), secretA) });
    expect(await sealInstitutionSecrets(platform.models, platform.tagKey)).toBe(1);
    const sealedOnce = await platform.models.InstitutionSecret.find({ _id: { $in: [a.campaignId, b.campaignId] } }).lean();
    expect(sealedOnce).toHaveLength(2);
    for (const doc of sealedOnce) expect(Object.keys(doc).sort()).toEqual(['_id', 'sealed']);
    // Again: nothing left to seal, nothing changes.
    expect(await sealInstitutionSecrets(platform.models, platform.tagKey)).toBe(0);
    expect(await platform.models.InstitutionSecret.find({ _id: { $in: [a.campaignId, b.campaignId] } }).lean()).toEqual(sealedOnce);

    // Nothing else changed; the tags made now are the stored ones, and a fresh instance publishes the same evidence.
    expect(unchanged(await wholeDatabase())).toEqual(unchanged(stored));
    const tagOf = institutionTagger(platform.models, platform.tagKey);
    for (const { campaignId, institutions } of [a, b]) {
      expect(new Set(await Promise.all(institutions.map((institution) => tagOf(campaignId, institution))))).toEqual(await storedTags(campaignId));
    }
    const fresh = await signIn({ ...platform, app: platform.anotherInstance() }, 'coordinator');
    for (const [name, { campaignId }] of Object.entries({ a, b })) {
      const json = (await fresh.agent.get(`/evidence/indicators.json?campaign=${campaignId}&by=country`).expect(200)).body;
      expect({ indicators: json.indicators, questions: json.questions.filter((q: { kind: string }) => q.kind !== 'text') }).toEqual(before[name as 'a' | 'b']);
    }
  });

  it('with another key, nothing is sealed, tagged or made: sealing and tagging refuse, and the stored secrets stay as they were', async () => {
    const { campaignId, institutions } = await campaignWithResponses();
    const stored = await wholeDatabase();
    const otherKey = randomBytes(32);
    await expect(sealInstitutionSecrets(platform.models, otherKey)).rejects.toThrow(InstitutionTagKeyError);
    await expect(institutionTagger(platform.models, otherKey)(campaignId, institutions[0])).rejects.toThrow(/not the key they were sealed with/);
    expect(await wholeDatabase()).toEqual(stored);
  });

  it('a second instance given another key refuses at start even before any campaign has a secret', async () => {
    const fresh = await startTestPlatform();
    try {
      expect(await sealInstitutionSecrets(fresh.models, fresh.tagKey)).toBe(0);
      await expect(sealInstitutionSecrets(fresh.models, randomBytes(32))).rejects.toThrow(/does not open the institution secrets of this database \(its key check\)/);
      expect(await sealInstitutionSecrets(fresh.models, fresh.tagKey)).toBe(0);
    } finally {
      await fresh.close();
    }
  });

  it('the platform refuses to start on a database whose secrets another key sealed, or when its key file was lost, and says what to do', async () => {
    await campaignWithResponses();
    // A database the platform has started on before: its start-up migrations are done, so only the key check stands between a wrong key and a running platform.
    for (const migration of [RECORDS_MIGRATION, INSTITUTION_TAGS_MIGRATION]) await claimOnce(platform.models, migration, platform.clock.now());
    const stored = await wholeDatabase();
    const production = {
      NODE_ENV: 'production',
      LOG_FORMAT: 'json',
      PUBLIC_URL: 'http://survey.example.org',
      MAIL_CATCHER: '1',
      SESSION_SECRET: randomBytes(32).toString('base64url'),
      TOKEN_KEY: platform.tokenKey.toString('hex'),
    };
    const dataDir = mkdtempSync(join(tmpdir(), 'tag-key-'));
    try {
      const wrongKey = await startPlatformProcess({ ...production, DATA_DIR: dataDir, INSTITUTION_TAG_KEY: randomBytes(32).toString('hex') });
      expect(wrongKey.code, wrongKey.output).toBe(1);
      expect(wrongKey.output).toMatch(/The institution tag key does not open the institution secrets of this database/);
      expect(wrongKey.output).toMatch(/INSTITUTION_TAG_KEY/);
      // Development: no key given, and DATA_DIR holds no key (lost) — a new one is made, and refused on this database.
      const lostKey = await startPlatformProcess({ NODE_ENV: 'development', LOG_FORMAT: 'json', DATA_DIR: dataDir });
      expect(lostKey.code, lostKey.output).toBe(1);
      expect(lostKey.output).toMatch(/The institution tag key does not open the institution secrets of this database/);
      expect(lostKey.output).toMatch(/DATA_DIR\/secrets\.json/);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
    expect(await wholeDatabase()).toEqual(stored);
  });
});
