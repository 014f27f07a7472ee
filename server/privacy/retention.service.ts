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
import { removeSentEmails } from '../mail/sent-email.store.ts';
import { changingLinks } from '../invitations/invitation.service.ts';
import { readCampaignLinkEntries } from '../invitations/link-copy.store.ts';
import { heldAnswers } from './answers-held.ts';
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
 * What every campaign holds, in parts, each counted in one grouped read of
 * its collections (a filter on the campaign reads the whole collection on
 * the embedded engine, so counting campaign by campaign read every response,
 * link and email once for each campaign on the list) and kept until what it
 * counts can have changed: its own change stamps of the campaigns, and for
 * the answers the evidence journal's head. So an email outcome recounts the
 * emails as sent only, a consent the drafts and consents, a submission the
 * answers (and the drafts and consents only when it removed a draft), and a
 * first opening nothing: with two
 * campaigns of 5,000 links and emails, counting everything again cost
 * 1.7-2.1 s on two cores after any of them (bench:fieldwork --page privacy
 * --earlier 1).
 * The links and their contacts come from each campaign's compact copy of its
 * links (link-copy.store.ts), never from the invitations, which hold drafts.
 * A load with nothing moved reads the stamps and the journal's head by _id.
 * A writer that crashed before its stamp shows after KEPT_MAX_AGE_MS.
 */
export async function heldByCampaign(models: Models, campaigns: ReadonlyArray<{ _id: Types.ObjectId }>): Promise<PersonalDataHeld> {
  // In one order whatever the page's (the retention page lists campaigns by close, the records by opening): both use the same counts.
  const ids = campaigns.map((campaign) => String(campaign._id)).sort();
  const basisOf = await heldBasis(models, ids);
  const parts = await Promise.all(
    (Object.keys(HELD_PARTS) as HeldPart[]).map((part) =>
      keptHeld.get(models, part, basisOf(part), async () => {
        tallyRecount(models, part);
        return HELD_PARTS[part].count(models, ids);
      }),
    ),
  );
  return {
    of(campaign) {
      const key = String(campaign);
      const counts: HeldCounts = { invitations: 0, drafts: 0, identifiedResponses: 0, anonymousResponses: 0, revisions: 0, emails: 0, sentEmails: 0, consents: 0, contacts: 0 };
      for (const part of parts) Object.assign(counts, part.get(key));
      return counts;
    },
  };
}

type Counted = Map<string, Partial<HeldCounts>>;

/**
 * The parts of what a campaign holds: the stamps that move when a count of
 * the part can change (change-stamp.ts), whether the evidence journal moves
 * it too (a submission, a revision, an erasure, a purge), and its count.
 */
const HELD_PARTS = {
  /** Personal links, revoked ones too, and the contacts they go to: made, revoked, removed with their links (an erasure, a purge, demo data). */
  links: { kinds: ['links'], journal: false, count: countLinks },
  /** Drafts: a link's first draft, or one a submission removed ('responses'), or drafts removed with their links. */
  drafts: { kinds: ['links', 'responses'], journal: false, count: countDrafts },
  /** Current responses, identified and anonymous, and their revisions: written and removed with an entry of the evidence journal, which answers-held.ts follows. */
  responses: { kinds: [], journal: true, count: countResponses },
  /** Emails queued ('rounds', 'tests'; outbox.service.ts queues them all), or removed by an erasure, a purge or the removal of demo data ('erasures'). */
  emails: { kinds: ['rounds', 'tests', 'erasures'], journal: false, count: countEmails },
  /** The emails as sent, kept with their outcomes ('emails', 'tests'), or removed as the emails are. */
  sentEmails: { kinds: ['emails', 'tests', 'erasures'], journal: false, count: countEmailsAsSent },
  /** Consents: given or removed by an erasure or a purge ('responses'), or gone with their links. */
  consents: { kinds: ['links', 'responses'], journal: false, count: countConsents },
} satisfies Record<string, { kinds: readonly ChangeKind[]; journal: boolean; count: (models: Models, campaigns: readonly string[]) => Promise<Counted> }>;
type HeldPart = keyof typeof HELD_PARTS;

const keptHeld = new KeptValues<Counted>();
/** The evidence journal's head last seen per connection: the next look for it starts there. */
const seenHeads = new WeakMap<object, number>();
const recounts = new WeakMap<object, Partial<Record<HeldPart, number>>>();

/** How often this connection counted each part of what the campaigns hold (the tests' view of what a load read again). */
export function heldRecounts(models: object): Partial<Record<HeldPart, number>> {
  return { ...recounts.get(models) };
}

function tallyRecount(models: object, part: HeldPart) {
  const own = recounts.get(models) ?? {};
  own[part] = (own[part] ?? 0) + 1;
  recounts.set(models, own);
}

/** Each part's basis. Read before the collections: a change written meanwhile moves something this basis does not have. */
async function heldBasis(models: Models, campaigns: readonly string[]): Promise<(part: HeldPart) => string> {
  const head = await journalHead(models, seenHeads.get(models) ?? 0);
  seenHeads.set(models, head);
  const kinds = [...new Set(Object.values(HELD_PARTS).flatMap((part) => part.kinds))];
  const stamps = new Map<string, string>();
  await Promise.all(campaigns.flatMap((campaign) => kinds.map(async (kind) => stamps.set(`${kind}:${campaign}`, await stampOf(models, kind, campaign)))));
  return (part) => {
    const { kinds: own, journal } = HELD_PARTS[part];
    return [journal ? head : '', ...campaigns.flatMap((campaign) => [campaign, ...own.map((kind) => stamps.get(`${kind}:${campaign}`))])].join('|');
  };
}

type Count = { _id: Types.ObjectId; n: number };
const byCampaign: PipelineStage[] = [{ $group: { _id: '$campaign', n: { $sum: 1 } } }];

/** Counts by campaign as one of the parts' figures. */
function counted(field: keyof HeldCounts, ...lists: ReadonlyArray<ReadonlyArray<{ _id: unknown; n: number }>>): Counted {
  const out: Counted = new Map();
  for (const rows of lists) {
    for (const row of rows) {
      const key = String(row._id);
      const own = out.get(key) ?? out.set(key, {}).get(key)!;
      own[field] = (own[field] ?? 0) + row.n;
    }
  }
  return out;
}

/** Every part's figures of a campaign in one map. */
function merged(...parts: Counted[]): Counted {
  const out: Counted = new Map();
  for (const part of parts) for (const [key, counts] of part) out.set(key, { ...out.get(key), ...counts });
  return out;
}

async function countLinks(models: Models, campaigns: readonly string[]): Promise<Counted> {
  const links = await Promise.all(campaigns.map((campaign) => readCampaignLinkEntries(models, campaign)));
  return new Map(campaigns.map((campaign, i) => [campaign, { invitations: links[i]!.length, contacts: new Set(links[i]!.map((link) => String(link.contact))).size }]));
}

async function countDrafts(models: Models): Promise<Counted> {
  // The engine reads each whole link whatever the filter or projection: this part is counted only when a draft can have changed.
  const drafts = await models.Invitation.find({ 'draft.savedAt': { $exists: true } }, { campaign: 1, draft: 1 }).lean();
  return counted('drafts', drafts.filter((invitation) => invitation.draft?.savedAt).map((invitation) => ({ _id: invitation.campaign, n: 1 })));
}

async function countResponses(models: Models): Promise<Counted> {
  const held = await heldAnswers(models);
  return new Map(
    [...held].map(([campaign, counts]) => [campaign, { identifiedResponses: counts.identifiedResponses, anonymousResponses: counts.anonymousResponses, revisions: counts.revisions }]),
  );
}

async function countEmails(models: Models): Promise<Counted> {
  return counted('emails', await models.Outbox.aggregate<Count>(byCampaign));
}

async function countEmailsAsSent(models: Models): Promise<Counted> {
  const [older, newer] = await Promise.all([
    // The emails as sent: older versions kept them apart, newer ones in the outcome the relay accepted.
    models.SentEmail.aggregate<Count>(byCampaign),
    models.OutboxOutcome.aggregate<Count>([{ $match: { sentEmail: { $exists: true } } }, ...byCampaign]),
  ]);
  return counted('sentEmails', older, newer);
}

async function countConsents(models: Models): Promise<Counted> {
  return counted('consents', await models.Consent.aggregate<Count>(byCampaign));
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
  await noteChange(models, 'responses', [campaign]);
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
