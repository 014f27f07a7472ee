import { Types } from 'mongoose';
import { recordAudit } from '../accounts/audit.service.ts';
import type { Models } from '../db/models.ts';
import { KeptValues, noteChange, stampOf } from '../shared/change-stamp.ts';
import { claimOnce } from '../shared/claim.model.ts';
import { HttpError } from '../shared/http-error.ts';
import { LANGUAGES, type Language } from '../shared/languages.ts';
import type { EmailWording } from '../campaigns/campaign-email.service.ts';
import { insertMessages, messageStatuses } from './outbox.service.ts';

export interface TestSendDeps {
  models: Models;
  now: () => Date;
}

/**
 * Tests of one campaign are numbered; a test's messages have rounds testNo × 10
 * + the language's position, + 3 for the second branch of a reminder test.
 */
const PER_TEST = 10;
const SECOND_BRANCH = 3;

/** What a test sends: the invitation, or the reminder in both its wordings (not started, started). */
export type TestOf = 'invitation' | 'reminder';
const WORDINGS_OF: Record<TestOf, EmailWording[]> = { invitation: ['invitation'], reminder: ['reminder', 'reminder-started'] };
const WORDING_NAMES: Record<EmailWording, string> = { invitation: 'Invitation', reminder: 'Reminder, not started', 'reminder-started': 'Reminder, started' };

type TestSends = Awaited<ReturnType<typeof readTestSends>>;

const keptTestSends = new KeptValues<TestSends>();

/**
 * The campaign's tests so far (newest first, each with its messages' states)
 * and the number the next one gets: the form carries it, so a double click
 * sends one test, not two.
 *
 * Reading them reads every outbox message, claim and outcome (the embedded
 * engine answers a filter other than _id by a full read: most of a second at
 * thousands of emails), so nothing is read for a campaign that never had a
 * test, and they are kept per campaign and read again only
 * when the campaign's "tests" stamp moved (change-stamp.ts: set by a test
 * send, by the sender when it claims a test message or records its outcome,
 * and by a coordinator's resolution), and after ten minutes in any case.
 */
export async function listTestSends(deps: Pick<TestSendDeps, 'models'>, campaignId: Types.ObjectId): Promise<TestSends> {
  const stamp = await stampOf(deps.models, 'tests', campaignId);
  // A campaign whose stamp was never set has had no test: queueTestSend sets it before writing one too.
  if (stamp === '') return { nextTestNo: 1, tests: [] };
  return keptTestSends.get(deps.models, String(campaignId), stamp, () => readTestSends(deps, campaignId));
}

async function readTestSends(deps: Pick<TestSendDeps, 'models'>, campaignId: Types.ObjectId) {
  const statuses = await messageStatuses(deps, { campaign: campaignId, kind: 'test' });
  const tests = new Map<number, Array<{ to: string; language: string; wording: string; state: string; error?: string }>>();
  for (const status of statuses) {
    const testNo = Math.floor(status.message.round / PER_TEST);
    const wording = WORDING_NAMES[(status.message.testWording ?? 'invitation') as EmailWording];
    tests.set(testNo, [...(tests.get(testNo) ?? []), { to: status.message.to, language: status.message.language ?? 'en', wording, state: status.state, error: status.last?.error ?? undefined }]);
  }
  const numbers = [...tests.keys()].sort((a, b) => b - a);
  return {
    nextTestNo: (numbers[0] ?? 0) + 1,
    tests: numbers.map((testNo) => ({ testNo, messages: tests.get(testNo)!.sort((a, b) => a.language.localeCompare(b.language) || a.wording.localeCompare(b.wording)) })),
  };
}

/**
 * Queues the campaign's invitation (or its reminder, in both wordings) in each
 * of its languages to the signed-in coordinator, through the outbox and the same sender and transport as the
 * real emails. A test is marked as such (subject and header), has no personal
 * link, creates no invitation and is never counted with the campaign's emails.
 * Test `testNo` happens once (a unique claim): returns false for a repeat.
 */
export async function queueTestSend(
  deps: TestSendDeps,
  campaignId: Types.ObjectId,
  user: { _id: Types.ObjectId; email: string; name: string },
  testNo: number,
  testOf: TestOf = 'invitation',
): Promise<{ queued: number; languages: Language[]; repeated: boolean }> {
  const campaign = await deps.models.Campaign.findById(campaignId, { languages: 1, closesAt: 1, closedAt: 1 }).lean();
  if (!campaign) throw new HttpError(404, 'This campaign does not exist.');
  if (campaign.closedAt || campaign.closesAt <= deps.now()) throw new HttpError(409, 'This campaign is closed: its emails can no longer be sent, not even as a test.');
  const languages = (campaign.languages?.length ? campaign.languages : [...LANGUAGES]) as Language[];
  const at = deps.now();
  if (!(await claimOnce(deps.models, `test-send:${campaignId}:${testNo}`, at))) return { queued: 0, languages, repeated: true };
  const docs = languages.flatMap((language) =>
    WORDINGS_OF[testOf].map((testWording, branch) => ({
      _id: new Types.ObjectId(),
      campaign: campaignId,
      contact: user._id,
      kind: 'test' as const,
      testWording,
      round: testNo * PER_TEST + LANGUAGES.indexOf(language) + branch * SECOND_BRANCH,
      to: user.email.toLowerCase(),
      language,
      recipientName: user.name,
      nextAttemptAt: at,
      createdAt: at,
      updatedAt: at,
    })),
  );
  // Before the messages as well as after them: listTestSends reads nothing for a campaign whose stamp was never set.
  await noteChange(deps.models, 'tests', [campaignId]);
  const queued = await insertMessages(deps, docs);
  await noteChange(deps.models, 'tests', [campaignId]);
  await recordAudit(deps.models, { actor: user.email, action: 'mail.test-send', target: `campaign:${campaignId}`, details: { testNo, testOf, languages, to: user.email }, at });
  return { queued, languages, repeated: false };
}
