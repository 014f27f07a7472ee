import type { Types } from 'mongoose';
import type { SignedInAgent } from './accounts.ts';

/** The confirmation page before "Send the invitations": its count of emails and its text (the tables by country, type, language). */
export async function confirmationPage(coordinator: SignedInAgent, campaignId: Types.ObjectId) {
  const page = (await coordinator.agent.get(`/admin/campaigns/${campaignId}/send`).expect(200)).text;
  return { emails: Number(/name="expected" value="(\d+)"/.exec(page)?.[1] ?? 0), page };
}
