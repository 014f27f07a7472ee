import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import type { Express } from 'express';
import { Types } from 'mongoose';
import { expect, inject } from 'vitest';
import { createApp, type AppDeps } from '../../server/app.ts';
import { connect } from '../../server/db/connection.ts';
import { defineModels, ensureIndexes, type Models } from '../../server/db/models.ts';
import { createInvitations, personalLink } from '../../server/invitations/invitation.service.ts';
import { institutionKey } from '../../server/institutions/institution.model.ts';
import { captureLog, type CapturedLog } from './log-capture.ts';
import { startInvitationQueue, type InvitationQueue } from '../../server/mail/invitation-send.service.ts';
import { QuestionnaireRegistry } from '../../server/surveys/questionnaire-registry.ts';
import { noteContactsChange } from '../../server/shared/contact-changes.ts';

/** A clock the tests move by hand. */
export class TestClock {
  constructor(public current = new Date('2026-03-02T09:00:00Z')) {}
  now = () => new Date(this.current);
  advance(ms: number) {
    this.current = new Date(this.current.getTime() + ms);
  }
}

export interface TestPlatform {
  app: Express;
  models: Models;
  clock: TestClock;
  tokenKey: Buffer;
  /** The institution tag key the platform seals its campaigns' secrets with (INSTITUTION_TAG_KEY). */
  tagKey: Buffer;
  sessionSecret: string;
  questionnaires: QuestionnaireRegistry;
  /** What the platform logged (a real pino logger writing into memory). */
  log: CapturedLog;
  /** The background queueing of "send the invitations" (idle() waits for it), as index.ts runs it. */
  invitationQueue: InvitationQueue;
  /** A second instance of the platform on the same database, as behind a load balancer. */
  anotherInstance(): Express;
  close(): Promise<void>;
}

const sharedRegistry = new QuestionnaireRegistry();

/** The real app on a fresh database of its own on the test database server. */
export async function startTestPlatform(
  options: {
    tokenRateLimit?: number;
    unknownTokenLimit?: number;
    /** Express "trust proxy", so that tests can send X-Forwarded-For as a reverse proxy would. */
    trustProxy?: boolean | number | string;
    minCellInstitutions?: number;
    minCellRespondents?: number;
    /** Extra dependencies, e.g. the mail catcher's view for /admin/mail. */
    appDeps?: Pick<AppDeps, 'mailCatcher' | 'wakeSender' | 'publicUrl' | 'validateSubmission' | 'queueInvitations'>;
    /** How the platform is reached: behind a proxy, over https (index.ts sets these from TRUST_PROXY and PUBLIC_URL). */
    https?: Pick<AppDeps['options'], 'trustProxy' | 'secureCookies' | 'strictTransportSecurity'>;
  } = {},
): Promise<TestPlatform> {
  const dbName = testDatabaseName();
  const connection = await connect(`${inject('mongoUri')}/${dbName}`);
  const models = defineModels(connection);
  await ensureIndexes(models);
  const clock = new TestClock();
  const tokenKey = randomBytes(32);
  const tagKey = randomBytes(32);
  const sessionSecret = randomBytes(32).toString('base64url');
  const log = captureLog();
  const invitationQueue = startInvitationQueue({ models, now: clock.now, onQueued: () => options.appDeps?.wakeSender?.() });
  const deps: AppDeps = {
    queueInvitations: () => invitationQueue.request(),
    ...options.appDeps,
    logger: log.logger,
    models,
    questionnaires: sharedRegistry,
    secrets: { tokenKey, sessionSecret, tagKey },
    now: clock.now,
    options: {
      bodyLimit: 256 * 1024,
      tokenRateLimit: options.tokenRateLimit ?? 10_000,
      unknownTokenLimit: options.unknownTokenLimit,
      trustProxy: options.trustProxy,
      cacheViews: true,
      minCellInstitutions: options.minCellInstitutions,
      minCellRespondents: options.minCellRespondents,
      ...options.https,
    },
  };
  const app = createApp(deps);
  return {
    app,
    models,
    clock,
    tokenKey,
    tagKey,
    sessionSecret,
    questionnaires: sharedRegistry,
    log,
    invitationQueue,
    anotherInstance: () => createApp(deps),
    async close() {
      await invitationQueue.stop();
      // Closed first: the app's evidence follower stops with it, and no late query of this test can reach the database once dropped.
      await connection.close();
      await dropTestDatabase(dbName);
    },
  };
}

/** A database name of its own, which names the test file (a database left behind at the end of a run says whose it is). */
export function testDatabaseName(): string {
  const file = basename(expect.getState().testPath ?? 'unknown').replace(/\.test\.ts$/, '');
  return `test_${file.replace(/[^a-zA-Z0-9]+/g, '-').slice(0, 40)}_${randomBytes(6).toString('hex')}`;
}

/**
 * Drops a test's database once the test's own connections are closed. On the
 * embedded engine a drop removes the database file while queries may still
 * run on it, and leaves its -wal and -shm files; a query that comes after the
 * drop creates the database again over them, and the whole engine dies of a
 * bus error (SIGBUS) when an old connection next reads the truncated -shm.
 * That is how a follower polling after its test had ended once took down
 * every test file after it. So the drop goes through a connection of its own,
 * when nothing of the test can come after it.
 */
export async function dropTestDatabase(dbName: string): Promise<void> {
  const connection = await connect(`${inject('mongoUri')}/${dbName}`);
  try {
    await connection.dropDatabase();
  } finally {
    await connection.close();
  }
}

let counter = 0;

/** Creates an institution, a contact, an open campaign and the contact's invitation; returns the link path. */
export async function createInvitedContact(
  platform: TestPlatform,
  options: { strands?: string[]; language?: 'en' | 'fr' | 'de'; campaignId?: Types.ObjectId; closesInDays?: number } = {},
) {
  const { models, clock } = platform;
  counter += 1;
  const campaign =
    options.campaignId ??
    (
      await models.Campaign.create({
        name: `Wave ${counter}`,
        strands: (options.strands ?? ['S1', 'S2', 'S3', 'S4']) as Array<'S1' | 'S2' | 'S3' | 'S4'>,
        opensAt: new Date(clock.current.getTime() - 86_400_000),
        closesAt: new Date(clock.current.getTime() + (options.closesInDays ?? 30) * 86_400_000),
      })
    )._id;
  const name = `Test school ${counter}`;
  const institution = await models.Institution.create({ name, country: 'DE', type: 'ivet_school', key: institutionKey({ name, country: 'DE' }) });
  const contact = await models.Contact.create({
    institution: institution._id,
    name: `Leader ${counter}`,
    email: `leader${counter}@school.example`,
    language: options.language ?? 'en',
  });
  await noteContactsChange(models);
  await createInvitations({ models, tokenKey: platform.tokenKey, publicUrl: '' }, campaign, [contact]);
  const invitation = (await models.Invitation.findOne({ campaign, contact: contact._id }))!;
  const path = personalLink({ tokenKey: platform.tokenKey, publicUrl: '' }, invitation);
  return { path, invitation, campaignId: campaign, contact, institution };
}
