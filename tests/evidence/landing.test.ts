import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { prepareEvidenceLanding } from '../../server/evidence/evidence.routes.ts';
import type { EvidenceService } from '../../server/evidence/indicator.service.ts';
import { completeAnswers } from '../fixtures/complete-answers.ts';
import { signIn } from '../helpers/accounts.ts';
import { freePort } from '../helpers/free-port.ts';
import { respondent } from '../helpers/respondent.ts';
import { createInvitedContact, startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

const entry = fileURLToPath(new URL('../../server/index.ts', import.meta.url));

let platform: TestPlatform;
let campaignId: string;
beforeAll(async () => {
  platform = await startTestPlatform({ minCellInstitutions: 1, minCellRespondents: 1 });
  const first = await createInvitedContact(platform);
  await respondent(platform, first.path, first.invitation.tokenHash).submit({ data: completeAnswers({ P1: 'AT' }), baseRevision: 0, language: 'en' }).expect(201);
  campaignId = String(first.campaignId);
});
afterAll(async () => platform.close());

/**
 * After a start, the decision the evidence page opens on is taken before any
 * reviewer asks for it: at 50,000 responses it costs seconds, which the first
 * reviewer after every start waited for.
 */
describe('the evidence page a start prepares', () => {
  it("a new instance decides the landing campaign's overview ahead, and the first reviewer's page then takes no decision", async () => {
    const app = platform.anotherInstance();
    const evidence = app.locals.evidence as EvidenceService;
    try {
      expect(evidence.decisionsTaken).toBe(0);
      const prepared = await prepareEvidenceLanding({ models: platform.models, evidence, now: platform.clock.now });
      expect(prepared.campaign).toBe(campaignId);
      const decided = evidence.decisionsTaken;
      expect(decided).toBeGreaterThan(0);

      const reviewer = await signIn({ ...platform, app }, 'reviewer');
      const page = await reviewer.agent.get('/evidence').expect(200);
      expect(page.text).toContain(`value="${campaignId}" selected`);
      await reviewer.agent.get('/evidence/questions?by=country').expect(200);
      expect(evidence.decisionsTaken).toBe(decided);
    } finally {
      await evidence.close();
    }
  });

  it('npm start (server/index.ts) says, once the records are loaded, which campaign it prepared', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'landing-'));
    const child = spawn(process.execPath, ['--import', 'tsx', entry], {
      env: {
        PATH: process.env.PATH,
        PORT: String(await freePort()),
        NO_DEMO: '1',
        LOG_FORMAT: 'json',
        DATA_DIR: dataDir,
        MONGODB_URI: `${inject('mongoUri')}/${platform.models.Response.db.name}`,
        TOKEN_KEY: platform.tokenKey.toString('hex'),
        INSTITUTION_TAG_KEY: platform.tagKey.toString('hex'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    try {
      const prepared = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const onLine = (line: string) => {
          output.push(line);
          if (line.includes('evidence page ready')) resolve(JSON.parse(line));
        };
        createInterface({ input: child.stdout! }).on('line', onLine);
        createInterface({ input: child.stderr! }).on('line', onLine);
        child.once('exit', (code) => reject(new Error(`the platform exited (${code}) before preparing the evidence page:\n${output.join('\n')}`)));
      });
      expect(prepared.campaign).toBe(campaignId);
      expect(prepared.ms).toEqual(expect.any(Number));
    } finally {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
