import type { Types } from 'mongoose';
import { recordAudit } from '../accounts/audit.service.ts';
import type { Models } from '../db/models.ts';
import { removeRecords } from '../evidence/analytic-record.ts';
import { removeQuoteTexts } from '../evidence/quote-text.ts';
import { dropInstitutionSecret } from '../evidence/institution-tag.ts';
import { isDemoContact } from './audience.service.ts';
import { changingLinks } from '../invitations/invitation.service.ts';
import { forgetErasedEmails } from '../mail/email-changes.ts';
import { forgetErasedProgress, progressChangesNaming } from '../respond/progress-changes.ts';
import { forgetDue } from '../mail/outbox.service.ts';
import { removeSentEmails } from '../mail/sent-email.store.ts';
import { noteChange } from '../shared/change-stamp.ts';
import { noteContactsChange } from '../shared/contact-changes.ts';

export interface DemoDataDeps {
  models: Models;
  now: () => Date;
}

export interface DemoData {
  campaigns: Array<{ _id: Types.ObjectId; name: string }>;
  institutions: Array<{ _id: Types.ObjectId; name: string; country: string }>;
  contacts: Array<{ _id: Types.ObjectId; name: string; email: string }>;
  /** What goes with them: links, answers and emails of demo campaigns or to demo contacts. */
  counts: { invitations: number; responses: number; revisions: number; emails: number; reminderRounds: number };
}

/**
 * Every demo record: campaigns flagged demo, institutions flagged demo, and
 * demo contacts (flagged, of a demo institution, or at a .invalid address,
 * as seed:demo made them before the flag existed) — with the personal links,
 * answers and emails that belong to a demo campaign or a demo contact, also
 * where a real campaign invited demo contacts by mistake. Reads each
 * collection once (FerretDB v1 answers any other filter than _id by a full read).
 */
export async function findDemoData(models: Models): Promise<DemoData & { ids: DemoIds }> {
  const [campaigns, institutions] = await Promise.all([
    models.Campaign.find({ demo: true }, { name: 1 }).sort({ _id: 1 }).lean(),
    models.Institution.find({}, { name: 1, country: 1, demo: 1 }).sort({ _id: 1 }).lean(),
  ]);
  const demoInstitutions = institutions.filter((i) => i.demo);
  const institutionById = new Map(institutions.map((i) => [String(i._id), i]));
  const contacts = (await models.Contact.find({}, { name: 1, email: 1, institution: 1, demo: 1 }).sort({ _id: 1 }).lean()).filter((c) =>
    isDemoContact(c, institutionById.get(String(c.institution))),
  );
  const demo = {
    campaigns: campaigns.map((c) => ({ _id: c._id, name: c.name })),
    institutions: demoInstitutions.map((i) => ({ _id: i._id, name: i.name, country: i.country })),
    contacts: contacts.map((c) => ({ _id: c._id, name: c.name, email: c.email })),
  };
  // Without a demo campaign or contact no link, answer or email is demo: the links, emails and answers (each read
  // whole on the embedded engine, the answers the costliest of all) are not read.
  if (campaigns.length === 0 && contacts.length === 0) {
    return { ...demo, counts: { invitations: 0, responses: 0, revisions: 0, emails: 0, reminderRounds: 0 }, ids: { invitationIds: [], messageIds: [], roundIds: [], touched: [] } };
  }
  const campaignIds = new Set(campaigns.map((c) => String(c._id)));
  const contactIds = new Set(contacts.map((c) => String(c._id)));
  const ofDemo = (doc: { campaign?: unknown; contact?: unknown }) => campaignIds.has(String(doc.campaign)) || contactIds.has(String(doc.contact));
  const [invitations, outbox, rounds] = await Promise.all([
    models.Invitation.find({}, { campaign: 1, contact: 1 }).lean(),
    models.Outbox.find({}, { campaign: 1, contact: 1 }).lean(),
    models.ReminderRound.find({}, { campaign: 1 }).lean(),
  ]);
  const invitationIds = invitations.filter(ofDemo).map((i) => i._id);
  const messageIds = outbox.filter(ofDemo).map((m) => m._id);
  const roundIds = rounds.filter((r) => campaignIds.has(String(r.campaign))).map((r) => r._id);
  // Real campaigns that invited demo contacts by mistake lose links and emails too: their stamps must move as well.
  const touched = [...invitations.filter(ofDemo), ...outbox.filter(ofDemo)].map((d) => d.campaign as Types.ObjectId);
  const [responses, revisions] = invitationIds.length
    ? await Promise.all([models.Response.countDocuments({ _id: { $in: invitationIds } }), models.ResponseRevision.countDocuments({ invitation: { $in: invitationIds } })])
    : [0, 0];
  return {
    ...demo,
    counts: { invitations: invitationIds.length, responses, revisions, emails: messageIds.length, reminderRounds: roundIds.length },
    ids: { invitationIds, messageIds, roundIds, touched },
  };
}

interface DemoIds {
  invitationIds: Types.ObjectId[];
  messageIds: Types.ObjectId[];
  roundIds: unknown[];
  /** The campaigns, demo or not, whose links or emails go. */
  touched: Types.ObjectId[];
}

/**
 * Deletes the demo data that findDemoData lists, dependants first (emails,
 * answers, links), then the contacts, institutions and campaigns, so that a
 * run stopped half-way is finished by running it again. Recorded in the audit
 * log with the counts. Returns what was removed, with the ids of the analytic
 * records removed (the evidence takes them out).
 */
export async function removeDemoData(deps: DemoDataDeps, actor: string): Promise<DemoData & { removedRecords: string[] }> {
  const { models } = deps;
  const found = await findDemoData(models);
  const { invitationIds, messageIds, roundIds } = found.ids;
  const touched = [...found.campaigns.map((c) => c._id), ...found.ids.touched];
  await forgetDue(models, messageIds);
  await removeSentEmails(models, messageIds);
  await models.OutboxOutcome.deleteMany({ message: { $in: messageIds } });
  await models.OutboxClaim.deleteMany({ message: { $in: messageIds } });
  await models.Outbox.deleteMany({ _id: { $in: messageIds } });
  // No journal entry names this removal: as after an erasure, no sending page's state or checkpoint made
  // before it is used or kept (email-changes.ts). By the campaigns' links too, which a re-run still finds.
  await forgetErasedEmails(models, touched, []);
  // The records before the responses, so a re-run still finds them; the records are compact, so finding them costs little.
  const records = invitationIds.length ? (await models.AnalyticRecord.find({ _id: { $in: invitationIds } }, { _id: 1 }).lean()).map((r) => r._id) : [];
  await removeRecords(models, records);
  await removeQuoteTexts(models, invitationIds);
  await models.ResponseRevision.deleteMany({ invitation: { $in: invitationIds } });
  await models.Response.deleteMany({ _id: { $in: invitationIds } });
  // A demo campaign loses every link, so its copy of them (link-copy.store.ts) becomes empty, the demo contacts' ids gone
  // from it; the real campaigns touched say no edit, and the next reader of their links reads them afresh.
  await changingLinks(models, touched, async () => {
    await models.Invitation.deleteMany({ _id: { $in: invitationIds } });
    return new Map(found.campaigns.map((c) => [String(c._id), { removedAll: true }]));
  });
  // The progress journal's entries naming the demo links go after them; the touched campaigns' fieldwork is read whole again.
  await forgetErasedProgress(models, touched, (await progressChangesNaming(models, invitationIds.map(String))).map((e) => e._id));
  await models.ReminderRound.deleteMany({ _id: { $in: roundIds } });
  for (const kind of ['links', 'completions', 'rounds', 'emails', 'responses', 'tests'] as const) await noteChange(models, kind, touched);
  await models.Contact.deleteMany({ _id: { $in: found.contacts.map((c) => c._id) } });
  await models.Institution.deleteMany({ _id: { $in: found.institutions.map((i) => i._id) } });
  await noteContactsChange(models);
  for (const campaign of found.campaigns) await dropInstitutionSecret(models, campaign._id);
  await models.Campaign.deleteMany({ _id: { $in: found.campaigns.map((c) => c._id) } });
  await recordAudit(models, {
    actor,
    action: 'demo.remove',
    details: {
      campaigns: found.campaigns.map((c) => c.name),
      institutions: found.institutions.length,
      contacts: found.contacts.length,
      ...found.counts,
    },
    at: deps.now(),
  });
  const { ids: _, ...removed } = found;
  return { ...removed, removedRecords: records.map(String) };
}
