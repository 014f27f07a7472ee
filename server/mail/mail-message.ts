import { formatDeadline, renderCampaignEmail, type EmailValues } from '../campaigns/campaign-email.service.ts';
import type { Campaign } from '../campaigns/campaign.model.ts';
import type { Language } from '../shared/languages.ts';
import type { MessageKind } from './outbox.model.ts';

export interface MessageInput {
  campaign: Pick<Campaign, 'name' | 'closesAt' | 'senderName' | 'replyTo' | 'templates'>;
  kind: MessageKind;
  language: Language;
  from: string;
  to: string;
  messageId: string;
  values: Omit<EmailValues, 'deadline' | 'campaignName'>;
  /** The campaign's privacy notice, linked at the end of every email whatever its text. */
  privacyLink: string;
  /** A test's wording: the invitation unless it tests the reminder. */
  testOf?: Exclude<MessageKind, 'test'>;
}

/** The email of one recipient, as composeMessage makes it (nodemailer's message options). */
export interface ComposedMessage {
  from: string | { name: string; address: string };
  to: string;
  replyTo?: string;
  subject: string;
  text: string;
  html: string;
  messageId: string;
  headers: { 'List-Unsubscribe': string; 'List-Unsubscribe-Post': string; 'X-Survey-Test'?: string };
}

const PRIVACY_LINE: Record<Language, string> = {
  en: 'How we handle your personal data',
  fr: 'Comment nous traitons vos données personnelles',
  de: 'Wie wir mit Ihren personenbezogenen Daten umgehen',
};
/** Before the link in the plain text: French puts a space before the colon, as the campaign texts do. */
const PRIVACY_COLON: Record<Language, string> = { en: ':', fr: ' :', de: ':' };

/**
 * The email as handed to nodemailer: the campaign's text for the kind and
 * language, rendered with this contact's values, and the one-click
 * unsubscribe headers of RFC 8058 (the https link; a mailto to the
 * campaign's reply-to address, read by a person, when there is one).
 */
export function composeMessage(input: MessageInput): ComposedMessage {
  // A test is the invitation as a contact would receive it, marked in its subject and headers.
  const test = input.kind === 'test';
  const rendered = renderCampaignEmail(input.campaign, test ? (input.testOf ?? 'invitation') : (input.kind as Exclude<MessageKind, 'test'>), input.language, {
    ...input.values,
    deadline: deadlineOf(input.campaign.closesAt, input.language),
  });
  const unsubscribe = [`<${input.values.unsubscribeLink}>`];
  if (input.campaign.replyTo) unsubscribe.push(`<mailto:${input.campaign.replyTo}?subject=unsubscribe>`);
  return {
    from: input.campaign.senderName ? { name: input.campaign.senderName, address: addressOf(input.from) } : input.from,
    to: input.to,
    ...(input.campaign.replyTo ? { replyTo: input.campaign.replyTo } : {}),
    subject: test ? `[TEST] ${rendered.subject}` : rendered.subject,
    text: `${rendered.text}\n\n${PRIVACY_LINE[input.language]}${PRIVACY_COLON[input.language]} ${input.privacyLink}`,
    html: rendered.html.replace('</body>', `<p><a href="${escapeHtml(input.privacyLink)}">${PRIVACY_LINE[input.language]}</a></p></body>`),
    messageId: input.messageId,
    headers: {
      'List-Unsubscribe': unsubscribe.join(', '),
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
      ...(test ? { 'X-Survey-Test': 'yes: a test send to the coordinator, not an invitation' } : {}),
    },
  };
}

/** The closing dates as written, per date and language: formatting one (Intl) cost as much as rendering the text. */
const deadlines = new Map<string, string>();

function deadlineOf(closesAt: Date, language: Language): string {
  const key = `${closesAt.getTime()}:${language}`;
  let deadline = deadlines.get(key);
  if (deadline === undefined) {
    if (deadlines.size > 1000) deadlines.clear();
    deadline = formatDeadline(closesAt, language);
    deadlines.set(key, deadline);
  }
  return deadline;
}

function escapeHtml(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function addressOf(from: string): string {
  return /<([^>]+)>/.exec(from)?.[1] ?? from.trim();
}
