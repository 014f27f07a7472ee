import type { HydratedDocument, Types } from 'mongoose';
import type { Campaign } from '../campaigns/campaign.model.ts';
import { campaignIsOpen } from '../campaigns/campaign.model.ts';
import type { Models } from '../db/models.ts';
import type { Invitation } from '../invitations/invitation.model.ts';
import { generationOf, hashToken, parseLinkToken, sameHash } from '../invitations/invitation-token.ts';
import { decodeRecord, taggedRecordOf, writeRecord } from '../evidence/analytic-record.ts';
import { writeQuoteText } from '../evidence/quote-text.ts';
import { institutionTagger } from '../evidence/institution-tag.ts';
import type { EvidenceRecord } from '../evidence/evidence-record.ts';
import { claimOnce } from '../shared/claim.model.ts';
import { findConsent, recordConsent } from '../privacy/consent.store.ts';
import { noticeFor, requiresConsent } from '../privacy/privacy-notice.ts';
import { HttpError } from '../shared/http-error.ts';
import { isLanguage, type Language } from '../shared/languages.ts';
import { pageText } from '../shared/page-text.ts';
import type { Questionnaire, QuestionnaireRegistry } from '../surveys/questionnaire-registry.ts';
import { answerMessage } from './answer-messages.ts';
import { revisionId, type Response } from './response.model.ts';
import type { ValidateSubmission } from './validation-pool.ts';
import { noteChange } from '../shared/change-stamp.ts';
import { journalProgress, journalProgressReset } from './progress-changes.ts';

export interface RespondDeps {
  models: Models;
  questionnaires: QuestionnaireRegistry;
  /** Derives the personal links: recognises a replaced link by its older generation. */
  tokenKey: Buffer;
  /** Opens the campaigns' institution tag secrets: a record names its institution by its tag. */
  tagKey: Buffer;
  now: () => Date;
  /** Called with the analytic record of a response just stored (the evidence counts it at once). */
  onResponseRecorded?: (record: EvidenceRecord) => void;
  /** Validates submissions off the event loop (validation-pool.ts); without it, in this thread. */
  validateSubmission?: ValidateSubmission;
}

type InvitationDoc = HydratedDocument<Invitation>;
type CampaignDoc = HydratedDocument<Campaign>;

export type LinkState =
  | { kind: 'unknown' }
  | { kind: 'revoked' | 'replaced'; language: Language }
  | { kind: 'not-open-yet' | 'closed'; language: Language; campaign: CampaignDoc }
  | { kind: 'open'; language: Language; campaign: CampaignDoc; invitation: InvitationDoc };

/** Profile questions copied into every response as breakdown dimensions. */
const PROFILE_DIMENSIONS = {
  country: 'P1',
  institutionType: 'P2',
  ownership: 'P3',
  size: 'P4a',
  staffSize: 'P4b',
  location: 'P5',
  erasmus: 'P8',
  role: 'P9',
} as const;

/** Largest draft kept, in characters of JSON; the body limit bounds it anyway. */
const MAX_DRAFT_CHARS = 200_000;

/** Finds the invitation behind a personal link and tells whether it can be answered now. */
export async function findLink(deps: RespondDeps, token: unknown): Promise<LinkState> {
  const parsed = parseLinkToken(token);
  if (!parsed) return { kind: 'unknown' };
  const invitation = await deps.models.Invitation.findById(parsed.invitationId);
  if (!invitation) return { kind: 'unknown' };
  const language = invitation.language as Language;
  if (!sameHash(invitation.tokenHash, hashToken(parsed.secret))) {
    // An older generation of this invitation's link: a coordinator replaced it.
    const generation = generationOf(deps.tokenKey, parsed.invitationId, parsed.secret, (invitation.tokenGeneration ?? 0) - 1);
    return generation === undefined ? { kind: 'unknown' } : { kind: 'replaced', language };
  }
  if (invitation.revokedAt) return { kind: 'revoked', language };
  const campaign = await deps.models.Campaign.findById(invitation.campaign);
  if (!campaign) return { kind: 'unknown' };
  const now = deps.now();
  if (!campaignIsOpen(campaign, now)) {
    return { kind: campaign.opensAt > now ? 'not-open-yet' : 'closed', language, campaign };
  }
  return { kind: 'open', language, campaign, invitation };
}

/** What the questionnaire page needs to show: where to resume, with which answers. */
export interface ResumeState {
  json: object;
  version: string;
  language: Language;
  /** Submitted revisions so far; a submission from this page creates revision + 1. */
  revision: number;
  submittedAt?: Date;
  /** Answers to start from: the draft if newer than the last submission, else the submitted ones. */
  data: Record<string, unknown>;
  pageNo: number;
  /** When the draft was saved, if the page resumes from one. */
  draftSavedAt?: Date;
}

/**
 * Records that the link was opened and returns the state to resume from.
 * Also repairs an invitation left behind by a crash between storing a
 * revision and updating the invitation (see submit), so a resumed page never
 * builds on a stale revision.
 */
export async function openQuestionnaire(deps: RespondDeps, campaign: CampaignDoc, invitation: InvitationDoc): Promise<ResumeState> {
  const { models } = deps;
  const questionnaire = deps.questionnaires.forStrands(campaign.strands as string[]);
  // $min sets the first opening only: a later one never moves it.
  await models.Invitation.updateOne({ _id: invitation._id }, { $min: { openedAt: deps.now() } });
  // Only the first opening changes what the fieldwork shows.
  if (!invitation.openedAt) {
    await journalProgress(models, invitation.campaign, invitation._id, 'opened');
  }

  // Every look-up here is by _id (see response.model.ts). A revision beyond
  // the invitation's count means a crash came between storing it and
  // recording it; a current response behind its revision means two writers
  // raced (FerretDB applies conditional updates as read-then-write).
  let latest = invitation.revision > 0 ? await findRevision(deps, invitation._id, invitation.revision) : null;
  for (let next = await findRevision(deps, invitation._id, invitation.revision + 1); next; next = await findRevision(deps, invitation._id, next.revision + 1)) {
    latest = next;
  }
  if (latest) {
    const current = await models.Response.findById(invitation._id, { revision: 1 }).lean();
    if (latest.revision > invitation.revision || current?.revision !== latest.revision) {
      deps.onResponseRecorded?.(await recordRevision(deps, latest, invitation));
      invitation.revision = latest.revision;
    }
  }

  const draft = invitation.draft;
  const draftIsCurrent = draft?.json && (draft.baseRevision ?? 0) >= invitation.revision;
  let data: Record<string, unknown> = {};
  if (draftIsCurrent) data = JSON.parse(draft.json!);
  else if (latest) data = latest.data as Record<string, unknown>;

  // The language the respondent last chose (in the draft, else in the submission), else the invitation's.
  const chosen = draftIsCurrent ? data.__language : latest?.language;
  const language = isLanguage(chosen) ? chosen : (invitation.language as Language);
  delete data.__language;
  // A fresh questionnaire starts from what the institution record already says;
  // a draft or a submission is the respondent's own word and is never overwritten.
  if (!draftIsCurrent && !latest) data = await institutionAnswers(deps, questionnaire, invitation);
  return {
    json: questionnaire.json,
    version: questionnaire.version,
    language,
    revision: invitation.revision,
    submittedAt: latest?.submittedAt ?? undefined,
    data,
    pageNo: draftIsCurrent ? (draft.pageNo ?? 0) : 0,
    draftSavedAt: draftIsCurrent ? (draft.savedAt ?? undefined) : undefined,
  };
}

/** Profile answers known from the contact's institution record, each kept only if it is one of its question's options. */
async function institutionAnswers(deps: RespondDeps, questionnaire: Questionnaire, invitation: InvitationDoc): Promise<Record<string, unknown>> {
  const institution = await deps.models.Institution.findById(invitation.institution, { country: 1, type: 1 }).lean();
  if (!institution) return {};
  const known: Record<string, unknown> = {};
  for (const [question, value] of [[PROFILE_DIMENSIONS.country, institution.country], [PROFILE_DIMENSIONS.institutionType, institution.type]] as const) {
    if (questionnaire.validator.validateDraft({ [question]: value }, 'en').ok) known[question] = value;
  }
  return known;
}

/** True when a draft holds an answer other than those pre-filled from the institution record. */
async function hasOwnAnswers(deps: RespondDeps, questionnaire: Questionnaire, invitation: InvitationDoc, data: Record<string, unknown>): Promise<boolean> {
  if (Object.keys(data).length === 0) return false;
  const prefilled = await institutionAnswers(deps, questionnaire, invitation);
  return Object.entries(data).some(([question, value]) => prefilled[question] !== value);
}

/**
 * Keeps unsubmitted progress. Every answer is checked for its shape against
 * the definition first (validateDraft: types, lengths, offered choices;
 * incompleteness allowed) and a draft with a malformed answer is refused
 * whole with per-question messages; only answers to questions of this
 * questionnaire are kept, as a JSON string (never as field names). A draft
 * that builds on a revision older than the latest one is refused: it comes
 * from a stale tab.
 */
export async function saveDraft(
  deps: RespondDeps,
  campaign: CampaignDoc,
  invitation: InvitationDoc,
  input: { data: Record<string, unknown>; pageNo: number; baseRevision: number; language: Language },
): Promise<{ savedAt: Date }> {
  if (input.baseRevision !== invitation.revision) {
    // A stale tab: the page keeps its answers and offers to reload or to carry on from the latest revision.
    throw new HttpError(409, answerMessage('staleDraft', input.language), { conflict: 'newer-submission', latestRevision: invitation.revision });
  }
  const questionnaire = deps.questionnaires.forStrands(campaign.strands as string[]);
  const checked = questionnaire.validator.validateDraft(input.data, input.language);
  if (!checked.ok) throw new HttpError(422, answerMessage('draftInvalid', input.language), { errors: checked.errors });
  const json = JSON.stringify({ __language: input.language, ...checked.data });
  if (json.length > MAX_DRAFT_CHARS) throw new HttpError(413, pageText(input.language).tooLarge);

  await consentGiven(deps, campaign, invitation, input.language);
  const savedAt = deps.now();
  // A draft saved because the language changed holds nothing of the respondent's own: not started.
  const started = Boolean(invitation.startedAt) || (await hasOwnAnswers(deps, questionnaire, invitation, checked.data));
  await deps.models.Invitation.updateOne(
    { _id: invitation._id },
    { $set: { draft: { json, pageNo: input.pageNo, savedAt, baseRevision: input.baseRevision } }, ...(started ? { $min: { startedAt: savedAt } } : {}) },
  );
  if (started && !invitation.startedAt) await journalProgress(deps.models, invitation.campaign, invitation._id, 'started');
  // A link's first draft (the first since its last submission) is counted on the personal-data page.
  if (!invitation.draft?.savedAt) await noteChange(deps.models, 'responses', [invitation.campaign]);
  return { savedAt };
}

export interface SubmitResult {
  revision: number;
  submittedAt: Date;
  /** True when this revision had been stored before with the same answers (a double click, a retry). */
  duplicate: boolean;
}

/**
 * Validates and stores a submission.
 *
 * Idempotent: the page says which revision it builds on, and revision
 * (invitation, base + 1) is unique, so a double click, a retry or a second tab
 * all land on the same stored revision. A later arrival with the same answers
 * gets it back unchanged (duplicate); one with different answers (a stale tab)
 * is never dropped silently: it gets 409 with the latest revision, so the page
 * can show the submitted answers or send its own as the next revision.
 * Without transactions (FerretDB v1), the steps are ordered so that a crash
 * between them loses nothing: the revision is written first and is the truth;
 * the current response and the invitation are brought forward from it, and
 * only forward, here or on the next open.
 */
export async function submit(
  deps: RespondDeps,
  campaign: CampaignDoc,
  invitation: InvitationDoc,
  input: { data: unknown; baseRevision: number; language: Language },
): Promise<SubmitResult> {
  const { models } = deps;
  const questionnaire = deps.questionnaires.forStrands(campaign.strands as string[]);
  const result = deps.validateSubmission
    ? await deps.validateSubmission(campaign.strands as string[], input.data, input.language)
    : questionnaire.validator.validate(input.data, input.language);
  if (!result.ok) {
    throw new HttpError(422, pageText(input.language).answersInvalid, { errors: result.errors });
  }
  if (input.baseRevision > invitation.revision) {
    throw new HttpError(409, pageText(input.language).outOfDate);
  }

  const consent = await consentGiven(deps, campaign, invitation, input.language);
  const revision = input.baseRevision + 1;
  const doc = {
    _id: revisionId(invitation._id, revision),
    campaign: campaign._id,
    invitation: invitation._id,
    institution: invitation.institution,
    revision,
    definitionVersion: questionnaire.version,
    strands: campaign.strands,
    language: input.language,
    submittedAt: deps.now(),
    data: result.data,
    // Only the free-text items, which the quotes read from here; the closed answers are counted from the analytic record.
    items: result.items.filter((item) => questionnaire.validator.isFreeText(item.question)),
    profile: profileOf(result.data),
    ...(consent ? { consent: { version: consent.version, language: consent.language, at: consent.at } } : {}),
  };

  let stored: StoredRevision = doc as unknown as StoredRevision;
  let duplicate = false;
  try {
    await models.ResponseRevision.create(doc);
  } catch (error) {
    if (!isDuplicateKey(error)) throw error;
    duplicate = true;
    stored = (await findRevision(deps, invitation._id, revision))!;
  }
  deps.onResponseRecorded?.(await recordRevision(deps, stored, invitation));
  if (duplicate && !sameAnswers(stored.data, result.data)) {
    let latest = stored;
    for (let next = await findRevision(deps, invitation._id, latest.revision + 1); next; next = await findRevision(deps, invitation._id, next.revision + 1)) latest = next;
    throw new HttpError(409, answerMessage('newerSubmission', input.language), {
      conflict: 'newer-submission',
      latestRevision: latest.revision,
      submittedAt: latest.submittedAt,
    });
  }
  return { revision, submittedAt: stored.submittedAt, duplicate };
}

type StoredRevision = Response & { _id: string };

function findRevision(deps: RespondDeps, invitationId: unknown, revision: number): Promise<StoredRevision | null> {
  return deps.models.ResponseRevision.findById(revisionId(invitationId, revision)).lean<StoredRevision>();
}

/**
 * Moves the current response, its analytic record and the invitation forward
 * to a stored revision. Safe to repeat, and only ever forward: the
 * invitation's count moves with $max and its completion date with $min, and a
 * current response or record is replaced only by a later revision. Returns
 * the evidence's view of the record now stored.
 */
async function recordRevision(deps: RespondDeps, revision: StoredRevision, invitation: InvitationDoc): Promise<EvidenceRecord> {
  const { models } = deps;
  const { _id, ...fields } = revision as StoredRevision & { __v?: unknown };
  delete (fields as { __v?: unknown }).__v;
  await markCompleted(models, { _id: revision.invitation, campaign: revision.campaign, at: revision.submittedAt });
  const current = await models.Response.findById(revision.invitation, { revision: 1 }).lean();
  if (!current) {
    try {
      await models.Response.create({ ...fields, _id: revision.invitation });
    } catch (error) {
      // Another request recorded it at the same moment; the check below brings it forward if needed.
      if (!isDuplicateKey(error)) throw error;
      return recordRevision(deps, revision, invitation);
    }
  } else if (current.revision < revision.revision) {
    await models.Response.replaceOne({ _id: revision.invitation }, fields);
  }
  const { validator } = deps.questionnaires.forStrands(revision.strands as string[]);
  // What the quotes read, compact (quote-text.ts): after the response and before the record, so that a crash in between is
  // repaired with the record's.
  await writeQuoteText(models, { ...revision, _id: revision.invitation }, (question) => validator.isFreeText(question));
  // After the response, so a record never counts answers that are not stored; a crash before it is repaired on the next open.
  const record = await writeRecord(models, await taggedRecordOf(institutionTagger(models, deps.tagKey), { ...revision, _id: revision.invitation }, (question) => validator.isFreeText(question)));

  const update: Record<string, unknown> = { $max: { revision: revision.revision }, $min: { completedAt: revision.submittedAt } };
  // A draft that builds on an older revision is obsolete now.
  const obsoleteDraft = Boolean(invitation.draft?.json) && (invitation.draft?.baseRevision ?? 0) < revision.revision;
  if (obsoleteDraft) update.$unset = { draft: 1 };
  await models.Invitation.updateOne({ _id: revision.invitation }, update);
  // The personal-data page counts drafts under this stamp: a submission that removed none leaves them uncounted.
  if (obsoleteDraft) await noteChange(models, 'responses', [revision.campaign]);
  return decodeRecord(record, (answers) => validator.itemsOf(answers));
}

async function markCompleted(models: Models, completion: { _id: Types.ObjectId; campaign: Types.ObjectId; at: Date }) {
  try {
    await models.Completion.create(completion);
  } catch (error) {
    // Written by an earlier revision, a retry or the backfill: it never changes.
    if (!isDuplicateKey(error)) throw error;
    return;
  }
  await journalProgress(models, completion.campaign, completion._id, 'completed', completion.at);
  await noteChange(models, 'completions', [completion.campaign]);
}

/**
 * The invitations of these campaigns that have a stored response, read from
 * the compact completion marks (never from the responses themselves).
 * Invitations also carry completedAt; this covers one whose update was lost
 * in a crash after its revision was stored.
 */
export async function answeredInvitations(models: Pick<Models, 'Completion'>, campaignIds: readonly Types.ObjectId[]): Promise<Set<string>> {
  const marks = await models.Completion.find(campaignIds.length === 1 ? { campaign: campaignIds[0] } : { campaign: { $in: campaignIds } }, { _id: 1 }).lean();
  return new Set(marks.map((m) => String(m._id)));
}

/**
 * Whether this invitation has a stored response: its completion mark, looked
 * up by _id (a reminder's last check, which must not read every campaign's marks).
 */
export async function hasCompleted(models: Pick<Models, 'Completion'>, invitationId: Types.ObjectId): Promise<boolean> {
  return Boolean(await models.Completion.findById(invitationId, { _id: 1 }).lean());
}

/**
 * Writes the completion marks of responses stored before marks existed: once
 * per database (a marker records that it ran), idempotent, and resumable
 * (a mark already there is kept). Returns how many marks it wrote.
 */
export async function backfillCompletions(models: Pick<Models, 'Completion' | 'Response' | 'Claim' | 'ChangeStamp' | 'ProgressChange'>, now: () => Date, onProgress?: (done: number) => void): Promise<number> {
  const MIGRATION = 'migration:completions-v1';
  if (await models.Claim.exists({ _id: MIGRATION })) return 0;
  let written = 0;
  let read = 0;
  let batch: Array<{ _id: Types.ObjectId; campaign: Types.ObjectId; at: Date }> = [];
  const flush = async () => {
    if (batch.length === 0) return;
    try {
      written += (await models.Completion.insertMany(batch, { ordered: false })).length;
    } catch (error) {
      const result = (error as { insertedDocs?: unknown[]; writeErrors?: Array<{ code?: number; err?: { code?: number } }> });
      if (!result.writeErrors?.every((e) => (e.code ?? e.err?.code) === 11000)) throw error;
      written += result.insertedDocs?.length ?? 0;
    }
    await journalProgressReset(models, batch.map((c) => c.campaign));
    await noteChange(models, 'completions', batch.map((c) => c.campaign));
    batch = [];
  };
  for await (const response of models.Response.find({}, { campaign: 1, submittedAt: 1 }).lean().cursor({ batchSize: 500 })) {
    batch.push({ _id: response._id as Types.ObjectId, campaign: response.campaign, at: response.submittedAt });
    read += 1;
    if (batch.length === 500) {
      await flush();
      onProgress?.(read);
    }
  }
  await flush();
  // Recorded only at the end: a backfill cut short runs again whole, keeping the marks it wrote.
  await claimOnce(models, MIGRATION, now());
  return written;
}

/**
 * When the campaign rests on consent, the respondent's consent, or a 403 in
 * their language: no answer is stored, not even a draft, before they agreed.
 */
async function consentGiven(deps: RespondDeps, campaign: CampaignDoc, invitation: InvitationDoc, language: Language) {
  if (!requiresConsent(campaign)) return undefined;
  const consent = await findConsent(deps.models, invitation._id);
  if (!consent) throw new HttpError(403, answerMessage('consentRequired', language), { consent: 'required' });
  return consent;
}

/**
 * Records the respondent's consent to the notice they were shown. The version
 * must be the current notice's in that language: a page showing an older text
 * is told to reload (409). The first consent stands; giving it again is harmless.
 */
export async function giveConsent(deps: RespondDeps, campaign: CampaignDoc, invitation: InvitationDoc, input: { version: string; language: Language }) {
  const notice = noticeFor(campaign, input.language);
  if (notice.version !== input.version) throw new HttpError(409, 'The privacy notice has changed. Please reload the page.');
  return recordConsent(deps.models, { campaign: campaign._id, invitation: invitation._id, version: notice.version, language: input.language, at: deps.now() });
}

/** Whether two sets of validated answers are the same, whatever the order of their keys. */
function sameAnswers(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
    return `{${entries.map(([key, v]) => `${JSON.stringify(key)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function profileOf(data: Record<string, unknown>): Record<string, string> {
  const profile: Record<string, string> = {};
  for (const [dimension, question] of Object.entries(PROFILE_DIMENSIONS)) {
    const value = data[question];
    if (typeof value === 'string' || typeof value === 'number') profile[dimension] = String(value);
  }
  return profile;
}

function isDuplicateKey(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 11000;
}
