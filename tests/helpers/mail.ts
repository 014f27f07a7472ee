import { randomBytes } from 'node:crypto';
import type { Types } from 'mongoose';
import type { Models } from '../../server/db/models.ts';
import { institutionKey } from '../../server/institutions/institution.model.ts';
import { noteContactsChange } from '../../server/shared/contact-changes.ts';
import { createInvitations } from '../../server/invitations/invitation.service.ts';
import { createMailTransport, type SmtpTimeouts } from '../../server/mail/mail-transport.ts';
import { DEFAULT_POLICY, type SenderDeps, type SenderPolicy } from '../../server/mail/outbox-sender.service.ts';
import { messageStatuses } from '../../server/mail/outbox.service.ts';
import { otherConnection } from './other-connection.ts';
import type { TestPlatform } from './test-platform.ts';

export const PUBLIC_URL = 'http://survey.test';

export interface CampaignOptions {
  contacts: number;
  /** Countries and institution types are spread over the contacts in turn. */
  countries?: string[];
  types?: string[];
  closesInDays?: number;
  /** The institution (by index) of contact i: its own unless this says otherwise. */
  institutionOf?: (contact: number) => number;
}

/**
 * A campaign with one contact per institution (unless institutionOf puts two at one) and a personal link for each,
 * written in bulk so that thousands take a second. Addresses are
 * c<i>-<run>@school.example, unique across tests.
 */
export async function createCampaignWithContacts(
  platform: Pick<TestPlatform, 'models' | 'clock' | 'tokenKey'>,
  options: CampaignOptions,
) {
  const { models, clock } = platform;
  const run = randomBytes(3).toString('hex');
  const countries = options.countries ?? ['DE'];
  const types = options.types ?? ['ivet_school'];
  const campaign = await models.Campaign.create({
    name: `Wave ${run}`,
    strands: ['S1'],
    opensAt: new Date(clock.current.getTime() - 86_400_000),
    closesAt: new Date(clock.current.getTime() + (options.closesInDays ?? 30) * 86_400_000),
  });
  const institutions = await models.Institution.insertMany(
    Array.from({ length: options.contacts }, (_, i) => {
      const name = `School ${run} ${i}`;
      const country = countries[i % countries.length]!;
      return { name, country, type: types[Math.floor(i / countries.length) % types.length]!, key: institutionKey({ name, country }) };
    }),
  );
  const contacts = await models.Contact.insertMany(
    institutions.map((_, i) => ({ institution: institutions[options.institutionOf?.(i) ?? i]!._id, name: `Leader ${i}`, email: `c${i}-${run}@school.example`, language: 'en' })),
  );
  // As every writer of the contact list does (an import, an edit): pages that keep the contact list read it again.
  await noteContactsChange(models);
  await createInvitations({ models, tokenKey: platform.tokenKey, publicUrl: PUBLIC_URL }, campaign._id, contacts);
  return { campaignId: campaign._id as Types.ObjectId, contacts, institutions, emails: contacts.map((c) => c.email) };
}

/** A sender wired to the sink through a real pooled nodemailer transport. */
export function senderFor(platform: Pick<TestPlatform, 'models' | 'clock' | 'tokenKey'>, smtpUrl: string, workerId = 'test-worker', timeouts?: SmtpTimeouts) {
  const transport = createMailTransport({ url: smtpUrl, ratePerSecond: 5000, maxConnections: 3, timeouts });
  const deps: SenderDeps = {
    models: platform.models,
    transport,
    tokenKey: platform.tokenKey,
    publicUrl: PUBLIC_URL,
    from: 'Survey <survey@platform.test>',
    now: platform.clock.now,
    workerId,
  };
  const policy: SenderPolicy = { ...DEFAULT_POLICY, maxAttempts: 4, backoffMs: 60_000 };
  return { deps, policy, close: () => transport.close() };
}

/** A sender on a connection of its own (otherConnection), which notes the collections it reads by anything but one _id (the whole collection, on the embedded engine). */
export async function watchedSender(platform: Pick<TestPlatform, 'models' | 'clock' | 'tokenKey'>, smtpUrl: string) {
  const other = await otherConnection(platform);
  const { deps, policy, close } = senderFor({ ...platform, models: other.models }, smtpUrl);
  return { deps, policy, wholeReads: other.wholeReads, close: async () => (close(), await other.close()) };
}

/** Runs sender steps until nothing is due at the current clock time. */
export async function drainOutbox(run: () => Promise<unknown[]>): Promise<void> {
  for (let step = 0; step < 10_000; step++) if ((await run()).length === 0) return;
  throw new Error('the outbox did not drain');
}

/** The derived state of every message of the campaign. */
export async function statusesOf(models: Models, campaignId: Types.ObjectId) {
  return messageStatuses({ models }, { campaign: campaignId });
}

/** The derived state of the campaign's message to one address. */
export async function statusOf(models: Models, campaignId: Types.ObjectId, to: string) {
  const [status] = await messageStatuses({ models }, { campaign: campaignId, to });
  if (!status) throw new Error(`no message to ${to}`);
  return { state: status.state, attempts: status.attempts, error: status.last?.error, messageId: status.last?.messageId, permanent: status.last?.permanent, dueAt: status.dueAt };
}
