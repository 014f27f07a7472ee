import { createHmac } from 'node:crypto';
import { Types, type PipelineStage } from 'mongoose';
import { recordAudit } from '../accounts/audit.service.ts';
import type { Models } from '../db/models.ts';
import { anonymousSource, journalHead, recordOf, removeRecords, writeRecord, type RecordChange } from '../evidence/analytic-record.ts';
import { eraseFromEvidence } from '../evidence/record-snapshot.ts';
import { dropInstitutionSecret, institutionTagger } from '../evidence/institution-tag.ts';
import { dropUnconfirmedPreviews } from '../institutions/import.service.ts';
import { forgetEmailChanges } from '../mail/email-changes.ts';
import { forgetProgressChanges } from '../respond/progress-changes.ts';
import { forgetDue, insertIgnoringDuplicates } from '../mail/outbox.service.ts';
import { countSentEmails, removeSentEmails } from '../mail/sent-email.store.ts';
import { changingLinks } from '../invitations/invitation.service.ts';
import { DEFAULT_RETENTION_MONTHS } from './privacy-notice.ts';
import { anonymousRecord } from './privacy.service.ts';
import { claimAttempt, markDone, runKey, runState } from './retention.store.ts';
import { normaliseEmail, suppressionHash } from './subject.store.ts';
import { KeptValues, noteChange, stampOf, type ChangeKind } from '../shared/change-stamp.ts';
import { forgetJournalledContacts, noteContactsChange } from '../shared/contact-changes.ts';
import { closedEarlyAt } from '../campaigns/campaign.model.ts';

export interface RetentionDeps {
  models: Models;
  tokenKey: Buffer;
  /** Opens the campaigns' institution tag secrets: an anonymous record keeps its institution's tag. */
  tagKey: Buffer;
  now: () => Date;
  textQuestions: ReadonlySet<string>;
  /** Names this process in the scheduler's claims. */
  workerId: string;
  /** Called when responses were anonymised, with what that did to their analytic records. */
  onResponsesChanged?: (change: RecordChange) => void;
}

/** A claimed purge with no end recorded after this long is taken over. */
export const RETENTION_LEASE_MS = 30 * 60_000;

/** The moment a campaign's personal data is due for purging: N months after it closed. */
export function retentionDueAt(campaign: { closesAt: Date; closedAt?: Date | null; retentionMonths?: number | null }): Date {
  const closed = closedEarlyAt(campaign) ?? campaign.closesAt;
  const due = new Date(closed);
  due.setUTCMonth(due.getUTCMonth() + (campaign.retentionMonths ?? DEFAULT_RETENTION_MONTHS));
  return due;
}

export interface RetentionPlan {
  campaign: Types.ObjectId;
  name: string;
  retentionMonths: number;
  dueAt: Date;
  due: boolean;
  purgedAt?: Date;
  /** What a purge would remove now (the dry run). */
  counts: { invitations: number; drafts: number; responsesToAnonymise: number; revisions: number; emails: number; sentEmails: number; consents: number; contacts: number };
}

/** Every campaign with its due date and what its purge would remove now: the coordinator's view and dry run. */
export async function retentionOverview(deps: Pick<RetentionDeps, 'models' | 'now'>): Promise<RetentionPlan[]> {
  const campaigns = await deps.models.Campaign.find().sort({ closesAt: 1 }).lean();
  const held = await heldByCampaign(deps.models, campaigns);
  return Promise.all(campaigns.map((campaign) => retentionPlan(deps, campaign, held)));
}

/** What one campaign holds now, as a purge would find it (PersonalDataHeld.of). */
export async function retentionPlan(
  deps: Pick<RetentionDeps, 'models' | 'now'>,
  campaign: { _id: Types.ObjectId; name: string; closesAt: Date; closedAt?: Date | null; retentionMonths?: number | null },
  held: PersonalDataHeld,
): Promise<RetentionPlan> {
  const dueAt = retentionDueAt(campaign);
  const done = await deps.models.RetentionRun.findById(`${runKey(campaign._id, dueAt)}:done`).lean();
  const { identifiedResponses, anonymousResponses: _anonymous, ...counts } = held.of(campaign._id);
  return {
    campaign: campaign._id,
    name: campaign.name,
    retentionMonths: campaign.retentionMonths ?? DEFAULT_RETENTION_MONTHS,
    dueAt,
    due: dueAt <= deps.now(),
    purgedAt: done?.finishedAt ?? undefined,
    counts: { ...counts, responsesToAnonymise: identifiedResponses },
  };
}

type HeldCounts = Omit<RetentionPlan['counts'], 'responsesToAnonymise'> & { identifiedResponses: number; anonymousResponses: number };

export interface PersonalDataHeld {
  /** A campaign's counts (all 0 for a campaign that holds nothing). */
  of(campaign: Types.ObjectId): HeldCounts;
}

/**
 * What every campaign holds, counted in one grouped read of each collection
 * (a filter on the campaign reads the whole collection on the embedded
 * engine, so counting campaign by campaign read every response, link and
 * email once for each campaign on the list), and kept until it can have
 * changed: with four campaigns of 3,000 links and emails the reads cost
 * 1.3-1.6 s on two cores (bench:fieldwork --page privacy --earlier 3). Every writer of what is counted moves one of the campaigns' change
 * stamps (links, drafts and consents, completions, rounds, email outcomes,
 * test sends) or the evidence journal (a revision, an erasure, a purge), and
 * a load with none moved reads those stamps and the journal's head by _id.
 * A writer that crashed before its stamp shows after KEPT_MAX_AGE_MS.
 */
export async function heldByCampaign(models: Models, campaigns: ReadonlyArray<{ _id: Types.ObjectId }>): Promise<PersonalDataHeld> {
  const basis = await heldBasis(models, campaigns);
  return keptHeld.get(models, 'all', basis, () => countHeld(models));
}

const keptHeld = new KeptValues<PersonalDataHeld>();
/** What moves when a count of heldByCampaign can change (the evidence journal apart). */
const HELD_KINDS: readonly ChangeKind[] = ['links', 'responses', 'completions', 'rounds', 'emails', 'tests'];
/** The evidence journal's head last seen per connection: the next look for it starts there. */
const seenHeads = new WeakMap<object, number>();

/** Read before the collections: a change written meanwhile moves something this basis does not have. */
async function heldBasis(models: Models, listed: ReadonlyArray<{ _id: Types.ObjectId }>): Promise<string> {
  const head = await journalHead(models, seenHeads.get(models) ?? 0);
  seenHeads.set(models, head);
  // In one order whatever the page's (the retention page lists campaigns by close, the records by opening): both use the same counts.
  const campaigns = listed.map((campaign) => String(campaign._id)).sort();
  const stamps = await Promise.all(campaigns.flatMap((campaign) => HELD_KINDS.map((kind) => stampOf(models, kind, campaign))));
  return [head, ...campaigns, ...stamps].join('|');
}

async function countHeld(models: Models): Promise<PersonalDataHeld> {
  const byCampaign: PipelineStage[] = [{ $group: { _id: '$campaign', n: { $sum: 1 } } }];
  type Count = { _id: Types.ObjectId; n: number };
  const [invitations, responses, revisions, emails, olderSentEmails, sentEmails, consents] = await Promise.all([
    // One read for the links, their drafts and their contacts (the engine reads each whole link whatever the projection).
    models.Invitation.find({}, { campaign: 1, contact: 1, draft: 1 }).lean(),
    models.Response.aggregate<{ _id: { campaign: Types.ObjectId; anonymous?: boolean | null }; n: number }>([{ $group: { _id: { campaign: '$campaign', anonymous: '$anonymous' }, n: { $sum: 1 } } }]),
    models.ResponseRevision.aggregate<Count>(byCampaign),
    models.Outbox.aggregate<Count>(byCampaign),
    // The emails as sent: older versions kept them apart, newer ones in the outcome the relay accepted.
    models.SentEmail.aggregate<Count>(byCampaign),
    models.OutboxOutcome.aggregate<Count>([{ $match: { sentEmail: { $exists: true } } }, ...byCampaign]),
    models.Consent.aggregate<Count>(byCampaign),
  ]);
  const tally = (rows: ReadonlyArray<{ _id: unknown; n?: number }>, key: (row: { _id: unknown }) => unknown = (row) => row._id) => {
    const counts = new Map<string, number>();
    for (const row of rows) counts.set(String(key(row)), (counts.get(String(key(row))) ?? 0) + (row.n ?? 1));
    return counts;
  };
  const identified = tally(responses.filter((r) => !r._id.anonymous), (row) => (row._id as { campaign: unknown }).campaign);
  const anonymous = tally(responses.filter((r) => r._id.anonymous), (row) => (row._id as { campaign: unknown }).campaign);
  const links = new Map<string, { links: number; drafts: number; contacts: Set<string> }>();
  for (const invitation of invitations) {
    const key = String(invitation.campaign);
    const campaign = links.get(key) ?? links.set(key, { links: 0, drafts: 0, contacts: new Set() }).get(key)!;
    campaign.links += 1;
    if (invitation.draft?.savedAt) campaign.drafts += 1;
    campaign.contacts.add(String(invitation.contact));
  }
  const counted = { revisions: tally(revisions), emails: tally(emails), sentEmails: tally([...olderSentEmails, ...sentEmails]), consents: tally(consents) };
  return {
    of(campaign) {
      const key = String(campaign);
      const get = (counts: Map<string, number>) => counts.get(key) ?? 0;
      const own = links.get(key);
      return {
        invitations: own?.links ?? 0,
        drafts: own?.drafts ?? 0,
        identifiedResponses: get(identified),
        anonymousResponses: get(anonymous),
        revisions: get(counted.revisions),
        emails: get(counted.emails),
        sentEmails: get(counted.sentEmails),
        consents: get(counted.consents),
        contacts: own?.contacts.size ?? 0,
      };
    },
  };
}

/**
 * Purges every campaign whose retention has run out, once: the first
 * instance to insert the attempt's claim does it, the others skip it
 * (the scheduler and a coordinator's "purge now" alike). `actor` names who
 * ran it in the audit log. Uploaded contact files unconfirmed for a day go
 * too. Returns the campaigns this call purged.
 */
export async function runRetention(deps: RetentionDeps, actor = 'retention'): Promise<Types.ObjectId[]> {
  const now = deps.now();
  await dropUnconfirmedPreviews(deps);
  const purged: Types.ObjectId[] = [];
  for (const campaign of await deps.models.Campaign.find({}, { closesAt: 1, closedAt: 1, retentionMonths: 1, name: 1 }).lean()) {
    const dueAt = retentionDueAt(campaign);
    if (dueAt > now) continue;
    const key = runKey(campaign._id, dueAt);
    const state = await runState(deps.models, key);
    if (state.done) continue;
    if (state.lastStartedAt && now.getTime() - state.lastStartedAt.getTime() < RETENTION_LEASE_MS) continue;
    if (!(await claimAttempt(deps.models, key, state.attempts + 1, { campaign: campaign._id, dueAt, worker: deps.workerId, at: now }))) continue;
    const people = await purgeCampaign(deps, campaign._id);
    await markDone(deps.models, key, { campaign: campaign._id, dueAt, worker: deps.workerId, at: deps.now(), people });
    await recordAudit(deps.models, { actor, action: 'privacy.retention-purge', target: `campaign:${campaign._id}`, details: { dueAt, contacts: people, attempt: state.attempts + 1 }, at: deps.now() });
    purged.push(campaign._id);
  }
  return purged;
}

/**
 * Removes a campaign's personal data as "forget the person" does, for all
 * its contacts at once: the answers become anonymous records (free text
 * removed), and revisions, consents, drafts, personal links, email records
 * (the emails as sent too) and the markers naming the links go; a contact
 * goes when no other campaign still holds an invitation of theirs, audit
 * entries naming them are blanked and their suppression entries become keyed
 * hashes; last, the campaign's institution secret (institution-tag.ts).
 * Repeatable: the anonymous record's id is derived from the invitation's
 * with a keyed hash, so a re-run after a crash makes no second one.
 */
export async function purgeCampaign(deps: RetentionDeps, campaign: Types.ObjectId): Promise<number> {
  const { models } = deps;
  const invitations = await models.Invitation.find({ campaign }, { contact: 1 }).lean();
  const isText = (name: string) => deps.textQuestions.has(name) || name.endsWith('-Comment');
  const responses = await models.Response.find({ campaign }).lean<Array<Record<string, any>>>();
  const change: RecordChange = { written: [], removed: [] };
  const tagOf = institutionTagger(models, deps.tagKey);
  // The free text copied for quotes first: an anonymous response keeps none.
  await models.QuoteText.deleteMany({ campaign });
  for (const response of responses) {
    if (response.anonymous) continue;
    const anonymous = anonymousRecord(deps, response, anonymousId(deps.tokenKey, String(response._id)), await tagOf(campaign, response.institution));
    await insertIgnoringDuplicates(models.Response.collection, [anonymous]);
    // The original's record goes before the original: a re-run after a crash finds it by the response.
    change.written.push(await writeRecord(models, recordOf(anonymousSource(response, anonymous), isText)));
    await removeRecords(models, [response._id]);
    change.removed.push(String(response._id));
    await models.Response.deleteOne({ _id: response._id });
  }
  if (change.written.length + change.removed.length > 0) deps.onResponsesChanged?.(change);
  // The snapshot and the journal named the records by invitation ids; followers have the removals or resynchronise.
  // By the campaign's invitations, which a re-run after a crash still finds.
  await eraseFromEvidence(models, invitations.map((i) => i._id));
  await models.ResponseRevision.deleteMany({ campaign });
  await models.Completion.deleteMany({ campaign });
  await noteChange(models, 'completions', [campaign]);
  await models.Consent.deleteMany({ campaign });
  // The emails older versions kept apart are found by their outbox ids (an _id look-up), so they go before the outbox; the others go with the outcomes.
  const messageIds = (await models.Outbox.find({ campaign }, { _id: 1 }).lean()).map((m) => m._id);
  await forgetDue(models, messageIds);
  await removeSentEmails(models, messageIds);
  await models.OutboxOutcome.deleteMany({ campaign });
  await models.OutboxClaim.deleteMany({ campaign });
  await models.Outbox.deleteMany({ campaign });
  await forgetEmailChanges(models, campaign);
  await noteChange(models, 'emails', [campaign]);
  await noteChange(models, 'tests', [campaign]);
  const invitationIds = invitations.map((i) => String(i._id));
  const claims = (await models.Claim.find({}, { _id: 1 }).lean()).filter((c) => invitationIds.some((id) => String(c._id).includes(id)));
  if (claims.length) await models.Claim.deleteMany({ _id: { $in: claims.map((c) => c._id) } });
  // The free text is gone, and with it what the coordinators' quote decisions were about.
  await models.QuoteReview.deleteMany({ campaign });

  // Contacts with no invitation in any other campaign go, with their names in the audit log.
  const contactIds = [...new Set(invitations.map((i) => String(i.contact)))];
  const stillInvited = new Set(
    (await models.Invitation.find({ contact: { $in: contactIds.map((id) => new Types.ObjectId(id)) }, campaign: { $ne: campaign } }, { contact: 1 }).lean()).map((i) => String(i.contact)),
  );
  const leaving = await models.Contact.find({ _id: { $in: contactIds.filter((id) => !stillInvited.has(id)).map((id) => new Types.ObjectId(id)) } }, { name: 1, email: 1 }).lean();
  const identifiers = [...invitationIds, ...leaving.flatMap((c) => [String(c._id), c.name, c.email])].filter((s) => s && s.length >= 3);
  if (identifiers.length) {
    for (const entry of await models.AuditEntry.find({}).lean()) {
      const mentions = (text?: string | null) => typeof text === 'string' && identifiers.some((id) => text.includes(id));
      if (!mentions(entry.target) && !mentions(entry.details)) continue;
      const redact = (text?: string | null) => (typeof text === 'string' ? identifiers.reduce((out, id) => out.split(id).join('[erased]'), text) : undefined);
      await models.AuditEntry.updateOne({ _id: entry._id }, { $set: { target: redact(entry.target), details: redact(entry.details) } });
    }
  }
  // Their unsubscribed or refused addresses stay on the suppression list only as keyed hashes (as after an erasure),
  // so they are still never mailed; the refusal's text, which may quote the address, goes.
  const leavingAddresses = new Set(leaving.map((c) => normaliseEmail(c.email)));
  const plain = (await models.Suppression.find({}, { email: 1 }).lean()).filter((entry) => leavingAddresses.has(entry.email));
  if (plain.length) {
    await insertIgnoringDuplicates(models.Suppression.collection, plain.map((entry) => ({ email: suppressionHash(deps.tokenKey, entry.email), reason: 'retention', at: deps.now() })));
    await models.Suppression.deleteMany({ _id: { $in: plain.map((entry) => entry._id) } });
  }
  if (leaving.length) {
    const ids = new Set(leaving.map((c) => String(c._id)));
    const naming = (await models.ContactChange.find({}, { c: 1 }).lean()).filter((e) => e.c?.some((id) => ids.has(String(id))));
    await forgetJournalledContacts(models, naming.map((e) => e._id));
    await models.Contact.deleteMany({ _id: { $in: leaving.map((c) => c._id) } });
  }
  await noteContactsChange(models);
  // The invitations go last: a purge that stopped before this point finds its contacts again through them.
  await changingLinks(models, [campaign], async () => {
    await models.Invitation.deleteMany({ campaign });
    return new Map([[String(campaign), { removedAll: true }]]);
  });
  // The progress journal named the links: its entries go after them (a re-run finds the campaign again).
  await forgetProgressChanges(models, campaign);
  // Every response is anonymous now: without the secret, no institution tag of the campaign leads to an institution any more.
  await dropInstitutionSecret(models, campaign);
  return contactIds.length;
}

function anonymousId(tokenKey: Buffer, invitationId: string): Types.ObjectId {
  return new Types.ObjectId(createHmac('sha256', tokenKey).update(`anonymous:${invitationId}`).digest().subarray(0, 12));
}

/** The scheduler: checks at start and then every `intervalMs`; a failed check is logged and retried at the next. */
export function startRetentionScheduler(deps: RetentionDeps, options: { intervalMs?: number; onError?: (error: unknown) => void } = {}) {
  const onError = options.onError ?? ((error: unknown) => console.error('The retention purge failed, retrying at the next check:', error));
  let running: Promise<unknown> | undefined;
  const check = () => {
    running ??= runRetention(deps).catch(onError).finally(() => (running = undefined));
  };
  check();
  const timer = setInterval(check, options.intervalMs ?? 3600_000);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
