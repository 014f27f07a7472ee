import { demoInstitutionKey } from '../institutions/institution.model.ts';
import { createInvitations, personalLink, type InvitationDeps } from '../invitations/invitation.service.ts';
import { noteContactsChange } from '../shared/contact-changes.ts';

const DEMO_INSTITUTIONS = [
  { name: 'Berufsbildende Schule Musterstadt', country: 'DE', type: 'ivet_dual', language: 'de', contact: 'Anna Schmidt' },
  { name: 'Lycée professionnel Jean Jaurès', country: 'FR', type: 'ivet_school', language: 'fr', contact: 'Claire Martin' },
  { name: 'Omnia Vocational College', country: 'FI', type: 'ivet_school', language: 'en', contact: 'Mikko Virtanen' },
  { name: 'Centro de Formação Profissional do Porto', country: 'PT', type: 'cvet_adult', language: 'en', contact: 'Rui Costa' },
  { name: 'Chambre des métiers du Luxembourg', country: 'LU', type: 'chamber_sector', language: 'fr', contact: 'Paul Weber' },
] as const;

/**
 * On the first start of an empty database, creates a demo campaign with a few
 * demo institutions so a new user can open a link and answer at once.
 * Returns the demo links, or nothing when the database already has a campaign.
 */
export async function createDemoCampaign(deps: InvitationDeps & { now: () => Date }): Promise<string[] | undefined> {
  const { models } = deps;
  if ((await models.Campaign.countDocuments({})) > 0) return undefined;
  const now = deps.now();
  const campaign = await models.Campaign.create({
    name: 'Demo wave',
    strands: ['S1', 'S2', 'S3', 'S4'],
    opensAt: new Date(now.getTime() - 24 * 3600_000),
    closesAt: new Date(now.getTime() + 60 * 24 * 3600_000),
    senderName: 'VET mobility working group (demo)',
    demo: true,
  });
  const contacts = [];
  for (const [index, demo] of DEMO_INSTITUTIONS.entries()) {
    const institution = await models.Institution.findOneAndUpdate(
      { key: demoInstitutionKey(demo) },
      { $setOnInsert: { name: demo.name, country: demo.country, type: demo.type, key: demoInstitutionKey(demo), demo: true } },
      { upsert: true, returnDocument: 'after' },
    );
    const email = `demo${index + 1}@example.org`;
    const contact = await models.Contact.findOneAndUpdate(
      { institution: institution._id, email },
      { $setOnInsert: { institution: institution._id, email, name: demo.contact, language: demo.language, demo: true } },
      { upsert: true, returnDocument: 'after' },
    );
    contacts.push(contact);
  }
  await noteContactsChange(models);
  await createInvitations(deps, campaign._id, contacts);
  const invitations = await models.Invitation.find({ campaign: campaign._id }).sort({ _id: 1 });
  return invitations.map((invitation) => personalLink(deps, invitation));
}
