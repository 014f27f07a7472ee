import { formatLastDay } from '../shared/dates.ts';
import Handlebars from 'handlebars';
import type { Language } from '../shared/languages.ts';
import { LANGUAGE_NAMES } from '../shared/languages.ts';
import type { EmailKind } from './campaign.model.ts';
import { DEFAULT_EMAILS } from './email-defaults.ts';

/** The values an email text may use, and nothing else. */
export const PLACEHOLDERS = ['contactName', 'institutionName', 'link', 'deadline', 'unsubscribeLink', 'campaignName', 'started'] as const;
const BLOCK_HELPERS = ['if', 'unless'];

export interface EmailValues {
  contactName: string;
  institutionName: string;
  /** The contact's personal link. */
  link: string;
  /** The closing date, already written out in the email's language (see formatDeadline). */
  deadline: string;
  unsubscribeLink: string;
  /** Defaults to the campaign's name. */
  campaignName?: string;
  /** Reminders: the contact began answering and has not submitted. */
  started?: boolean;
}

/** The wordings a contact may receive: the invitation, and the reminder's two branches ({{#if started}}). */
export const EMAIL_WORDINGS = [
  { wording: 'invitation', kind: 'invitation', started: false, label: 'Invitation' },
  { wording: 'reminder', kind: 'reminder', started: false, label: 'Reminder to those who have not started' },
  { wording: 'reminder-started', kind: 'reminder', started: true, label: 'Reminder to those who started' },
] as const satisfies ReadonlyArray<{ wording: string; kind: EmailKind; started: boolean; label: string }>;
export type EmailWording = (typeof EMAIL_WORDINGS)[number]['wording'];

export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
}

interface TemplateSource {
  kind: EmailKind;
  language: string;
  subject: string;
  body: string;
}

/**
 * A Handlebars instance of its own for email texts, apart from the page
 * views: strict mode (a missing value is an error, not an empty string) and
 * none of the view helpers.
 */
const handlebars = Handlebars.create();
const compiled = new Map<string, { text: Handlebars.TemplateDelegate; html: Handlebars.TemplateDelegate }>();

export class TemplateError extends Error {}

/**
 * Checks one email text: it must parse, and use only the known placeholders
 * with `if`/`unless` blocks. Returns the problems, each fit to show to the
 * coordinator (empty when the text is fine).
 */
export function checkTemplate(source: string, where: string): string[] {
  let program: hbs.AST.Program;
  try {
    program = handlebars.parse(source);
  } catch (error) {
    return [`${where}: the text cannot be read (${firstLine((error as Error).message)}). Check the {{ }} pairs.`];
  }
  const problems = new Set<string>();
  const allowed = PLACEHOLDERS as readonly string[];
  const visitPath = (node: hbs.AST.Expression) => {
    if (node.type !== 'PathExpression') {
      if (node.type === 'SubExpression') problems.add(`${where}: helpers are not available in email texts.`);
      return;
    }
    const path = node as hbs.AST.PathExpression;
    if (path.data || path.parts.length !== 1 || path.depth > 0 || !allowed.includes(path.parts[0]!)) {
      problems.add(`${where}: unknown placeholder {{${path.original}}}. Use ${PLACEHOLDERS.map((p) => `{{${p}}}`).join(', ')}.`);
    }
  };
  const visit = (nodes: hbs.AST.Statement[]) => {
    for (const node of nodes) {
      if (node.type === 'MustacheStatement') {
        const mustache = node as hbs.AST.MustacheStatement;
        if (mustache.params.length > 0 || (mustache.hash?.pairs.length ?? 0) > 0) problems.add(`${where}: helpers are not available in email texts ({{${(mustache.path as hbs.AST.PathExpression).original} ...}}).`);
        else visitPath(mustache.path);
      } else if (node.type === 'BlockStatement') {
        const block = node as hbs.AST.BlockStatement;
        const name = (block.path as hbs.AST.PathExpression).original;
        if (!BLOCK_HELPERS.includes(name) || block.params.length !== 1) {
          problems.add(`${where}: only {{#if placeholder}} and {{#unless placeholder}} blocks are allowed, not {{#${name}}}.`);
        } else {
          visitPath(block.params[0]!);
        }
        visit(block.program?.body ?? []);
        visit(block.inverse?.body ?? []);
      } else if (node.type === 'PartialStatement' || node.type === 'PartialBlockStatement' || node.type === 'DecoratorBlock' || node.type === 'Decorator') {
        problems.add(`${where}: partials are not available in email texts.`);
      }
    }
  };
  visit(program.body);
  return [...problems];
}

/** Checks every email text of a campaign; throws a TemplateError listing all problems. */
export function checkTemplates(templates: readonly TemplateSource[]): void {
  const problems = templates.flatMap((t) => {
    const where = `${LANGUAGE_NAMES[t.language as Language] ?? t.language} ${t.kind}`;
    return [...checkTemplate(t.subject, `${where} subject`), ...checkTemplate(t.body, `${where} text`)];
  });
  if (problems.length > 0) throw new TemplateError(problems.join('\n'));
}

/** The campaign's text for a kind and language, or the platform's default when it has none. */
export function templateFor(campaign: { templates?: readonly TemplateSource[] | null }, kind: EmailKind, language: Language): TemplateSource {
  return campaign.templates?.find((t) => t.kind === kind && t.language === language) ?? { kind, language, ...DEFAULT_EMAILS[language][kind] };
}

/**
 * Renders a campaign's invitation or reminder for one contact: the subject
 * and plain text as written, and an HTML version in which every value is
 * escaped and the links are clickable. Compiled templates are cached by
 * their source, so sending thousands of emails compiles each text once.
 */
export function renderCampaignEmail(
  campaign: { name: string; templates?: readonly TemplateSource[] | null },
  kind: EmailKind,
  language: Language,
  values: EmailValues,
): RenderedEmail {
  const template = templateFor(campaign, kind, language);
  const data = { campaignName: campaign.name, started: false, ...values };
  const subject = compile(template.subject).text(data).replace(/[\r\n]+/g, ' ').trim();
  const text = compile(template.body).text(data);
  const html = `<!doctype html><html lang="${language}"><body>${compile(template.body)
    .html(data)
    .split(/\r?\n\s*\r?\n/)
    .map((paragraph) => `<p>${paragraph.trim().replace(/\r?\n/g, '<br>').replace(/https?:\/\/[^\s<]+/g, (url) => `<a href="${url}">${url}</a>`)}</p>`)
    .join('\n')}</body></html>`;
  return { subject, text, html };
}

/** The closing date as the email's language writes it, e.g. "30 April 2026" / "30 avril 2026". */
export function formatDeadline(closesAt: Date, language: Language): string {
  return formatLastDay(closesAt, language);
}

function compile(source: string) {
  let entry = compiled.get(source);
  if (!entry) {
    entry = {
      text: handlebars.compile(source, { strict: true, noEscape: true, knownHelpersOnly: true, knownHelpers: { if: true, unless: true } }),
      html: handlebars.compile(source, { strict: true, knownHelpersOnly: true, knownHelpers: { if: true, unless: true } }),
    };
    if (compiled.size > 500) compiled.clear();
    compiled.set(source, entry);
  }
  return entry;
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}
