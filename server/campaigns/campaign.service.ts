import { Types } from 'mongoose';
import { z } from 'zod';
import { recordAudit } from '../accounts/audit.service.ts';
import type { Models } from '../db/models.ts';
import { campaignLiveLinks } from '../fieldwork/fieldwork.service.ts';
import { createInvitations, type CreatedLink } from '../invitations/invitation.service.ts';
import { readCampaignLinkEntries, type LinkEntry } from '../invitations/link-copy.store.ts';
import { campaignLinks } from '../invitations/link-population.ts';
import { claimOnce } from '../shared/claim.model.ts';
import { HttpError } from '../shared/http-error.ts';
import { LANGUAGES, type Language } from '../shared/languages.ts';
import { LAWFUL_BASES } from '../privacy/privacy-notice.ts';
import { audienceSchema, describeAudience, EVERYONE, selectAudience, type AudienceRead } from './audience.service.ts';
import { readAndKeepCampaignLinks } from './audience-state.ts';
import { closedEarlyAt, EMAIL_KINDS, STRAND_CODES } from './campaign.model.ts';
import { checkTemplates, EMAIL_WORDINGS, formatDeadline, renderCampaignEmail, templateFor, TemplateError, type EmailWording, type RenderedEmail } from './campaign-email.service.ts';

export interface CampaignDeps {
  models: Models;
  now: () => Date;
}

export const campaignInputSchema = z
  .object({
    name: z.string().trim().min(1, 'the name is empty').max(200),
    strands: z.array(z.enum(STRAND_CODES)).min(1, 'choose at least one questionnaire'),
    opensAt: z.coerce.date({ error: 'the opening date is not a date' }),
    closesAt: z.coerce.date({ error: 'the closing date is not a date' }),
    languages: z.array(z.enum(LANGUAGES)).min(1, 'choose at least one language'),
    senderName: z.string().trim().max(200).optional(),
    replyTo: z
      .string()
      .trim()
      .toLowerCase()
      .transform((v) => v || undefined)
      .pipe(z.email('the reply-to address is not a valid email address').max(254).optional()),
    templates: z
      .array(
        z.object({
          kind: z.enum(EMAIL_KINDS),
          language: z.enum(LANGUAGES),
          subject: z.string().trim().min(1, 'an email subject is empty').max(300),
          body: z.string().trim().min(1, 'an email text is empty').max(20_000),
        }),
      )
      .default([]),
    lawfulBasis: z.enum(LAWFUL_BASES, { error: 'choose a lawful basis' }).default('legitimate-interest'),
    retentionMonths: z.coerce.number({ error: 'the retention is not a number of months' }).int('the retention is a whole number of months').min(1, 'keep personal data at least 1 month').max(240, 'keep personal data at most 240 months').default(24),
    /** An empty notice falls back to the default text, so it is not stored. */
    privacyNotices: z
      .array(z.object({ language: z.enum(LANGUAGES), text: z.string().trim().max(20_000, 'a privacy notice is longer than 20,000 characters') }))
      .default([])
      .transform((notices) => notices.filter((n) => n.text.length > 0)),
    audience: audienceSchema.default(EVERYONE),
  })
  .refine((c) => c.closesAt > c.opensAt, { message: 'the last day to answer comes before the opening day: choose a last day on or after it', path: ['closesAt'] });
export type CampaignInput = z.input<typeof campaignInputSchema>;

/**
 * Checks a campaign's settings and email texts; every problem is reported
 * at once, as a 400 HttpError the form can show.
 */
function validate(input: CampaignInput) {
  const parsed = campaignInputSchema.safeParse(input);
  const problems = parsed.success ? [] : parsed.error.issues.map((issue) => issue.message);
  try {
    if (parsed.success) checkTemplates(parsed.data.templates);
  } catch (error) {
    if (!(error instanceof TemplateError)) throw error;
    problems.push(...error.message.split('\n'));
  }
  if (!parsed.success || problems.length > 0) throw new HttpError(400, 'The campaign cannot be saved.', { problems });
  return parsed.data;
}

/** Creates a campaign; recorded in the audit log. */
export async function createCampaign(deps: CampaignDeps, input: CampaignInput, actor: string) {
  const data = validate(input);
  const campaign = await deps.models.Campaign.create(data);
  await recordAudit(deps.models, { actor, action: 'campaign.create', target: `campaign:${campaign._id}`, details: { name: data.name }, at: deps.now() });
  return campaign;
}

/** Changes a campaign's settings and texts; the audit log records which fields changed. */
export async function updateCampaign(deps: CampaignDeps, id: Types.ObjectId, input: CampaignInput, actor: string) {
  const data = validate(input);
  const before = await deps.models.Campaign.findById(id).lean();
  if (!before) throw new HttpError(404, 'This campaign does not exist.');
  await deps.models.Campaign.updateOne({ _id: id }, { $set: data });
  const changed = (Object.keys(data) as Array<keyof typeof data>).filter((key) => JSON.stringify(data[key]) !== JSON.stringify((before as Record<string, unknown>)[key]));
  await recordAudit(deps.models, { actor, action: 'campaign.update', target: `campaign:${id}`, details: { changed }, at: deps.now() });
}

export async function getCampaign(deps: Pick<CampaignDeps, 'models'>, id: Types.ObjectId) {
  const campaign = await deps.models.Campaign.findById(id).lean();
  if (!campaign) throw new HttpError(404, 'This campaign does not exist.');
  return campaign;
}

/**
 * Every campaign, newest first, with its number of links (revoked ones
 * included). Each campaign's count is kept until its "links" stamp moves and
 * then read from its compact copy of its links (link-population.ts), so a
 * load reads a stamp per campaign by _id; grouping the invitations instead
 * read every campaign's links on every load (about 1 s of the database's CPU
 * at 12,000 links).
 */
export async function listCampaigns(deps: Pick<CampaignDeps, 'models'>) {
  const campaigns = await deps.models.Campaign.find().sort({ opensAt: -1, _id: -1 }).lean();
  const counts = await Promise.all(campaigns.map((campaign) => campaignLinks(deps.models, campaign._id)));
  return campaigns.map((campaign, i) => ({ ...campaign, closedEarlyAt: closedEarlyAt(campaign), invitations: counts[i]!.total }));
}

/**
 * What closing a campaign early would do, for the coordinator to confirm:
 * how many links there are and how many respondents have not submitted (they
 * then find the closed page in their language; drafts are kept, nothing more
 * is accepted, and no further invitation or reminder is sent).
 */
export async function closePreview(deps: Pick<CampaignDeps, 'models' | 'now'>, id: Types.ObjectId) {
  const campaign = await getCampaign(deps, id);
  // The fieldwork view's kept links: read again only when the campaign's links or respondents' progress changed.
  const live = await campaignLiveLinks(deps, id);
  const links = live.length;
  const completed = live.filter((link) => link.completed).length;
  const started = live.filter((link) => !link.completed && link.started).length;
  const now = deps.now();
  return { campaign, links, completed, started, notStarted: links - completed - started, closedEarlyAt: closedEarlyAt(campaign), alreadyClosed: Boolean(campaign.closedAt) || campaign.closesAt <= now, notYetOpen: campaign.opensAt > now };
}

/**
 * Closes a campaign before its closing date: links stop accepting answers
 * (respondents see the closed page, in their language, with today's date),
 * the sender and the reminder scheduler skip it. The close is claimed by a
 * unique insert, so a double click closes and audits once.
 */
export async function closeCampaignEarly(deps: CampaignDeps, id: Types.ObjectId, actor: string): Promise<{ closed: boolean }> {
  const campaign = await getCampaign(deps, id);
  const now = deps.now();
  if (campaign.closedAt || campaign.closesAt <= now) return { closed: false };
  if (!(await claimOnce(deps.models, `campaign-close:${id}`, now))) return { closed: false };
  await deps.models.Campaign.updateOne({ _id: id }, { $set: { closedAt: now } });
  await recordAudit(deps.models, { actor, action: 'campaign.close', target: `campaign:${id}`, details: { plannedClose: campaign.closesAt }, at: now });
  return { closed: true };
}

/**
 * Creates one personal link per contact of the campaign's audience (see
 * audience.service.ts: active, not unsubscribed, never demo data in a real
 * campaign). Idempotent: inviting again adds links only for contacts added
 * since. A contact whose language the campaign does not offer gets the
 * campaign's first language. With `expected` (the count the coordinator was
 * shown), nothing is created when the audience has changed since: the page
 * then shows the new count. `onLinks` hears each step of links as it is
 * written (see createInvitations). `audience` is this campaign's audience as
 * the caller has just read it (readAudience), so that it is not read twice.
 * Returns how many were created.
 */
export async function inviteCampaign(
  deps: CampaignDeps & { tokenKey: Buffer; publicUrl: string },
  campaignId: Types.ObjectId,
  actor: string,
  options: { expected?: number; step?: number; firstStep?: number; onLinks?: (links: CreatedLink[], left: number) => Promise<void>; audience?: AudienceRead } = {},
): Promise<{ created: number; total: number; audience: string }> {
  const campaign = await getCampaign(deps, campaignId);
  const languages = (campaign.languages?.length ? campaign.languages : [...LANGUAGES]) as Language[];
  // campaign:send has read the audience and the existing links already, to print them.
  const { members } = options.audience ?? (await selectAudience(deps.models, campaign));
  if (options.expected !== undefined) {
    // Counted from the members just read, not from the list the page kept: the links made are these members'.
    const linked = (await readAndKeepCampaignLinks(deps.models, campaignId)).contacts;
    const toCreate = members.filter((m) => !linked.has(String(m._id))).length;
    if (toCreate !== options.expected) {
      throw new HttpError(409, `The audience changed since the page was shown: ${toCreate} links would now be created, not ${options.expected}. Please check the count again.`);
    }
  }
  const contacts = members.map((m) => ({ _id: m._id, institution: m.institution, language: languages.includes(m.language as Language) ? m.language : languages[0]! }));
  // One call: createInvitations reads the campaign's existing links once (a full scan on FerretDB).
  const created = await createInvitations(deps, campaignId, contacts, { step: options.step, firstStep: options.firstStep, existing: options.audience?.linked, onStep: options.onLinks });
  const total = await deps.models.Invitation.countDocuments({ campaign: campaignId });
  const audience = describeAudience({ ...EVERYONE, ...campaign.audience });
  await recordAudit(deps.models, { actor, action: 'campaign.invite', target: `campaign:${campaignId}`, details: { created, total, audience }, at: deps.now() });
  return { created, total, audience };
}

/**
 * The campaign's emails as one contact would receive them, per language and
 * kind, for the coordinator to read before sending. The sample is the
 * campaign's first invited contact in that language when there is one.
 */
export async function previewCampaignEmails(
  deps: CampaignDeps & { publicUrl: string },
  campaignId: Types.ObjectId,
): Promise<Array<{ language: Language; kind: string; wording: EmailWording; label: string; email: RenderedEmail; sample: string; custom: boolean }>> {
  const campaign = await getCampaign(deps, campaignId);
  // The first link in each language, from the campaign's compact copy of its links: a filter on the invitations
  // would read every link of every campaign on the embedded engine, once per language.
  const first = new Map<string, LinkEntry>();
  for (const link of await readCampaignLinkEntries(deps.models, campaignId)) {
    const seen = first.get(String(link.language));
    if (!seen || String(link._id) < String(seen._id)) first.set(String(link.language), link);
  }
  const out = [];
  for (const language of (campaign.languages?.length ? campaign.languages : LANGUAGES) as Language[]) {
    const invitation = first.get(language);
    const contact = invitation ? await deps.models.Contact.findById(invitation.contact).lean() : null;
    const institution = invitation ? await deps.models.Institution.findById(invitation.institution).lean() : null;
    const base = deps.publicUrl.replace(/\/$/, '');
    const values = {
      contactName: contact?.name ?? 'Maria Example',
      institutionName: institution?.name ?? 'Example Vocational College',
      link: `${base}/s/EXAMPLE-PERSONAL-LINK`,
      deadline: formatDeadline(campaign.closesAt, language),
      unsubscribeLink: `${base}/u/EXAMPLE`,
    };
    // A reminder has two wordings: to contacts who have not started, and to those who started and not submitted.
    for (const wording of EMAIL_WORDINGS) {
      out.push({
        language,
        kind: wording.kind,
        wording: wording.wording,
        label: wording.label,
        email: renderCampaignEmail(campaign, wording.kind, language, { ...values, started: wording.started }),
        sample: contact ? `${contact.name} <${contact.email}>` : 'sample data',
        custom: campaign.templates?.some((t) => t.kind === wording.kind && t.language === language) ?? false,
      });
    }
  }
  return out;
}

/** The texts a campaign form shows: the campaign's own, else the defaults. */
export function formTemplates(campaign: { templates?: Parameters<typeof templateFor>[0]['templates'] } | undefined) {
  return LANGUAGES.flatMap((language) => EMAIL_KINDS.map((kind) => templateFor(campaign ?? {}, kind, language)));
}
