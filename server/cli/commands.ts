import { parseArgs } from 'node:util';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { Types } from 'mongoose';
import { z } from 'zod';
import { ROLES } from '../accounts/user.model.ts';
import { readAudience, summariseAudience, type AudienceRead } from '../campaigns/audience.service.ts';
import { getCampaign, inviteCampaign, listCampaigns } from '../campaigns/campaign.service.ts';
import { findDemoData, removeDemoData } from '../campaigns/demo-data.service.ts';
import { latestReminderRound, reminderDryRun, reminderRounds } from '../reminders/reminder.service.ts';
import { countByState } from '../mail/outbox.service.ts';
import { BOUNCE_REASON, bouncedAddresses, previewBounces, recordBounces } from '../mail/bounce.service.ts';
import { plural } from '../shared/plural.ts';
import { formatDateTime } from '../shared/dates.ts';
import { sendCampaign, type CliMailSettings, type ProgressOutput, type ReminderChoice } from './campaign-send.ts';
import type { Models } from '../db/models.ts';
import { importContacts, IMPORT_MAX_BYTES } from '../institutions/import.service.ts';
import { deriveToken, hashToken } from '../invitations/invitation-token.ts';
import { formatDay, formatLastDay } from '../shared/dates.ts';
import { HttpError } from '../shared/http-error.ts';

export interface CliDeps {
  models: Models;
  now: () => Date;
  tokenKey: Buffer;
  publicUrl: string;
  /** Where the command's report goes (stdout in the real tool). */
  print: (line: string) => void;
  /** Asks for a password without echoing it; undefined when there is no terminal. */
  askPassword?: (question: string) => Promise<string>;
  /** For campaign:send: the sending settings, where the progress is drawn, and Ctrl-C. */
  mail?: CliMailSettings;
  progress?: ProgressOutput;
  stop?: AbortSignal;
}

/**
 * The user commands' service, loaded when one of them runs: its password
 * checker's dictionaries and the hashing library cost the tool's start about
 * 0.25 s of CPU (more in waiting on a busy machine), which campaign:send and
 * the other commands never need.
 */
const userService = () => import('../accounts/user.service.ts');

/** The audit log's name for whoever runs the command-line tool. */
const ACTOR = `command line (${process.env.USER ?? process.env.USERNAME ?? 'unknown user'})`;

export const USAGE = `Usage: npm run cli -- <command> [options]

  users:add --email <address> --name <name> --role coordinator|reviewer
                               asks for a first password (or generates one and prints it
                               once); it works for one sign-in, then the user sets their own
  users:disable --email <address>
  users:enable --email <address>
  users:list
  import --file <contacts.csv> [--commit]
                               shows what the file would create, update and reject;
                               writes only with --commit
  campaign:list
  campaign:invite --campaign <id>
                               creates one personal link per contact of the campaign's
                               audience (set on the campaign page); never demo data
  campaign:send --campaign <id> [--reminder-round [--yes | --new-round <n>]]
                               creates the links, queues the invitations and sends them
                               through SMTP_URL with a progress bar; exits 1 if some
                               failed or are unknown. Safe to run again or after Ctrl-C:
                               nothing is sent twice.
                               --reminder-round alone is a dry run: the round in progress,
                               or who the next round would go to, by country and
                               institution type. --yes finishes the round in progress
                               (never starts one); --new-round <n> starts round n, the
                               number the dry run names (again: continues round n), never
                               within the reminder policy's days between rounds
  mail:bounces --file <bounces.txt> [--commit]
                               records hard bounces the relay reported (any text: one
                               address a line, a CSV column, a pasted report): shows which
                               contacts' addresses it would suppress (reason "bounce"),
                               which are suppressed already and which are no contact's;
                               suppresses them (audited) only with --commit
  demo:remove [--commit]       lists the demo data (first start's demo campaign, seed:demo);
                               deletes it, with its links, answers and emails, only with --commit

The tool connects to MONGODB_URI, else starts the embedded database under DATA_DIR.
Only one process can use the embedded database: while the platform runs, use the
MONGODB_URI it prints at start.`;

export class UsageError extends Error {}

export const COMMANDS = ['users:add', 'users:disable', 'users:enable', 'users:list', 'import', 'campaign:list', 'campaign:invite', 'campaign:send', 'mail:bounces', 'demo:remove'] as const;

/**
 * Runs one command of the command-line tool; the tests call this through the
 * real tool. Returns the exit code when it is not simply 0.
 */
export async function runCommand(argv: string[], deps: CliDeps): Promise<number | void> {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      email: { type: 'string' },
      name: { type: 'string' },
      role: { type: 'string' },
      file: { type: 'string' },
      commit: { type: 'boolean', default: false },
      campaign: { type: 'string' },
      'reminder-round': { type: 'boolean', default: false },
      yes: { type: 'boolean', default: false },
      'new-round': { type: 'string' },
    },
    strict: true,
  });
  switch (command) {
    case 'users:add':
      return addUser(deps, values);
    case 'users:disable': {
      if (!values.email) throw new UsageError('users:disable needs --email');
      await (await userService()).disableUser(deps, values.email, ACTOR);
      deps.print(`${values.email.toLowerCase()} is disabled.`);
      return;
    }
    case 'users:enable': {
      if (!values.email) throw new UsageError('users:enable needs --email');
      await (await userService()).enableUser(deps, values.email, ACTOR);
      deps.print(`${values.email.toLowerCase()} is enabled again.`);
      return;
    }
    case 'users:list':
      for (const user of await (await userService()).listUsers(deps)) {
        deps.print(`${user.email}\t${user.role}\t${user.name}${user.disabledAt ? '\t(disabled)' : ''}${user.passwordExpired ? '\t(must set own password)' : ''}`);
      }
      return;
    case 'import':
      return importFile(deps, values.file, values.commit);
    case 'campaign:list':
      for (const campaign of await listCampaigns(deps)) {
        deps.print(`${campaign._id}\t${campaign.name}\t${formatDay(campaign.opensAt)} – ${formatLastDay(campaign.closesAt)}${campaign.closedEarlyAt ? ` (closed early on ${formatDay(campaign.closedEarlyAt)})` : ''}\t${campaign.invitations} ${campaign.invitations === 1 ? 'link' : 'links'}`);
      }
      return;
    case 'campaign:invite':
    case 'campaign:send': {
      const id = z.string().regex(/^[0-9a-f]{24}$/).safeParse(values.campaign);
      if (!id.success) throw new UsageError(`${command} needs --campaign <id> (see campaign:list)`);
      if (!(await tokenKeyMatchesDatabase(deps))) {
        throw new UsageError(
          'The token key differs from the one the existing personal links were made with: links created now would not open.\n' +
            'Run the tool with the same DATA_DIR (or TOKEN_KEY) as the platform.',
        );
      }
      const campaignId = new Types.ObjectId(id.data);
      const audience = values['reminder-round'] ? undefined : await printAudience(deps, campaignId);
      if (command === 'campaign:send') {
        const reminder = reminderChoice(values);
        if (reminder === 'dry run') return printReminderDryRun(deps, campaignId);
        if (!deps.mail || !deps.progress) throw new Error('campaign:send needs the mail settings and a progress output.');
        return sendCampaign({ ...deps, mail: deps.mail, progress: deps.progress }, campaignId, { reminder, actor: ACTOR, audience });
      }
      const result = await inviteCampaign(deps, campaignId, ACTOR, { audience });
      deps.print(`${result.created} personal links created; the campaign has ${result.total}.`);
      return;
    }
    case 'mail:bounces':
      return bouncesFile(deps, values.file, values.commit);
    case 'demo:remove':
      return demoRemove(deps, values.commit);
    default:
      throw new UsageError(command ? `Unknown command: ${command}` : 'No command given.');
  }
}

/** Who the campaign's links go to, before they are made; returns what it read, for campaign:send to make the links from. */
async function printAudience(deps: CliDeps, campaignId: Types.ObjectId): Promise<AudienceRead> {
  const campaign = await getCampaign(deps, campaignId);
  const read = await readAudience(deps.models, campaign);
  const summary = await summariseAudience(deps.models, campaign, read);
  const demo = summary.demoExcluded > 0 ? ` (${summary.demoExcluded} demo contacts left out)` : '';
  deps.print(`Audience: ${summary.description}: ${summary.matching} contacts${demo}, ${summary.withLink} with a personal link already.`);
  if (summary.unknownEmails.length > 0) deps.print(`  ${summary.unknownEmails.length} addresses on the list match no active contact: ${summary.unknownEmails.slice(0, 10).join(', ')}`);
  return read;
}

/** demo:remove — the list first; deleting only with --commit. */
async function demoRemove(deps: CliDeps, commit: boolean) {
  const found = commit ? await removeDemoData(deps, ACTOR) : await findDemoData(deps.models);
  const { counts } = found;
  deps.print(
    `${commit ? 'Removed' : 'Demo data'}: ${found.campaigns.length} campaigns, ${found.institutions.length} institutions, ${found.contacts.length} contacts, ` +
      `${counts.invitations} personal links, ${counts.responses} responses, ${counts.emails} emails.`,
  );
  for (const c of found.campaigns) deps.print(`  campaign     ${c.name}`);
  for (const i of found.institutions) deps.print(`  institution  ${i.name} (${i.country})`);
  for (const c of found.contacts) deps.print(`  contact      ${c.name} <${c.email}>`);
  if (!commit && found.campaigns.length + found.institutions.length + found.contacts.length + counts.invitations > 0) deps.print('Nothing was removed. Run again with --commit to remove it.');
}

/** What --reminder-round, --yes and --new-round ask for. */
function reminderChoice(values: { 'reminder-round'?: boolean; yes?: boolean; 'new-round'?: string }): ReminderChoice | 'dry run' | undefined {
  if (!values['reminder-round']) {
    if (values.yes || values['new-round'] !== undefined) throw new UsageError('--yes and --new-round go with --reminder-round');
    return undefined;
  }
  if (values['new-round'] !== undefined) {
    if (!/^[1-9]\d{0,2}$/.test(values['new-round'])) throw new UsageError('--new-round needs the number of the round to start, as the dry run names it');
    return { newRound: Number(values['new-round']) };
  }
  return values.yes ? { continue: true } : 'dry run';
}

/**
 * Before any reminder round: the round in progress, if one has messages not
 * yet sent, or else how many the next round would reach, where, and who,
 * with the command that starts it.
 */
async function printReminderDryRun(deps: CliDeps, campaignId: Types.ObjectId) {
  const latest = await latestReminderRound(deps, campaignId);
  const counts = latest ? await countByState(deps, { campaign: campaignId, kind: 'reminder', round: latest.round }) : undefined;
  if (latest && counts && counts.queued + counts.sending > 0) {
    deps.print(
      `Reminder round ${latest.round} is in progress: ${counts.sent} sent, ${counts.skipped} skipped, ${counts.failed} failed, ${counts.unknown} unknown, ` +
        `${counts.queued + counts.sending} not sent yet, of ${counts.total}.`,
    );
    deps.print(`Nothing was sent. Add --yes to finish round ${latest.round}.`);
    return;
  }
  if (latest && counts) {
    deps.print(`Reminder round ${latest.round} is finished: ${counts.sent} sent, ${counts.skipped} skipped, ${counts.failed} failed, ${counts.unknown} unknown, of ${counts.total}.`);
  }
  const [dryRun, { nextRound, everyDays, nextStartsAt }] = await Promise.all([reminderDryRun(deps, campaignId), reminderRounds(deps, campaignId)]);
  deps.print(`Dry run: the next reminder round would go to ${dryRun.total} contacts (${dryRun.started} started, ${dryRun.total - dryRun.started} not started).`);
  for (const cell of dryRun.bySegment) deps.print(`  ${cell.country} ${cell.institutionType}: ${cell.count}`);
  for (const r of dryRun.recipients) deps.print(`  ${r.name} <${r.email}>, ${r.institutionName} (${r.country})${r.started ? ', started' : ''}`);
  if (dryRun.unknownInvitations > 0) {
    deps.print(`Not included: ${dryRun.unknownInvitations} contacts whose invitation's outcome is unknown; resolve them on the sending page first.`);
  }
  if (nextRound === undefined) deps.print('Nothing was sent. The invitations have not been sent yet.');
  else if (nextStartsAt && nextStartsAt > deps.now()) {
    deps.print(`Nothing was sent. Reminder round ${nextRound} can start from ${formatDateTime(nextStartsAt)} (the reminder policy leaves ${plural(everyDays, 'day', 'days')} between rounds); then add --new-round ${nextRound}.`);
  } else deps.print(`Nothing was sent. Add --new-round ${nextRound} to start and send reminder round ${nextRound}.`);
}

/**
 * Personal links are derived from the token key and never stored: a tool run
 * with another DATA_DIR would have another key and create links that cannot
 * open. Checked against any existing invitation (true when there is none).
 */
async function tokenKeyMatchesDatabase(deps: CliDeps): Promise<boolean> {
  const sample = await deps.models.Invitation.findOne({}, { tokenHash: 1, tokenGeneration: 1 }).lean();
  if (!sample) return true;
  return hashToken(deriveToken(deps.tokenKey, String(sample._id), sample.tokenGeneration ?? 0)) === sample.tokenHash;
}

async function addUser(deps: CliDeps, values: { email?: string; name?: string; role?: string }) {
  if (!values.email || !values.name || !values.role) throw new UsageError('users:add needs --email, --name and --role');
  if (!(ROLES as readonly string[]).includes(values.role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
  let password = deps.askPassword ? await deps.askPassword('First password (at least 12 characters, not easy to guess; leave empty to generate one): ') : '';
  const generated = password === '';
  const { createUser, generatePassword, newUserInputSchema } = await userService();
  if (generated) password = generatePassword();
  const input = newUserInputSchema.safeParse({ name: values.name, email: values.email, role: values.role, password });
  if (!input.success) throw new UsageError(input.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n'));
  // Whoever runs the tool knows this password: it works for the first sign-in only.
  const user = await createUser(deps, input.data, ACTOR, { passwordExpired: true });
  deps.print(`${user.role} ${user.email} created. At the first sign-in they must set their own password.`);
  if (generated) deps.print(`Password (shown only this once): ${password}`);
}

async function importFile(deps: CliDeps, file: string | undefined, commit: boolean) {
  if (!file) throw new UsageError('import needs --file <contacts.csv>');
  const buffer = await readFile(file);
  if (buffer.length > IMPORT_MAX_BYTES) throw new UsageError(`${file} is larger than ${IMPORT_MAX_BYTES / 1024 / 1024} MB: split it.`);
  const plan = await importContacts(deps, buffer.toString('utf8'), { commit, actor: ACTOR, fileName: basename(file) });
  const { counts } = plan;
  deps.print(`${commit ? 'Imported' : 'Preview'}: ${counts.create} to create, ${counts.update} to update, ${counts.unchanged} unchanged, ${counts.duplicate ? `${counts.duplicate} repeated (imported once), ` : ''}${counts.reject} rejected.`);
  deps.print(`Institutions: ${plan.institutions.create} new, ${plan.institutions.update} changed. Contacts: ${plan.contacts.create} new, ${plan.contacts.update} changed.`);
  for (const row of plan.rows.filter((r) => r.action === 'reject')) deps.print(`  row ${row.row} rejected: ${row.reason}`);
  for (const row of plan.rows.filter((r) => r.action === 'duplicate')) deps.print(`  row ${row.row} is ${row.reason}`);
  for (const row of plan.rows.filter((r) => r.action === 'update')) deps.print(`  row ${row.row} updates: ${row.reason}`);
  if (!commit && plan.writes.institutions.length + plan.writes.contacts.length > 0) deps.print('Nothing was written. Run again with --commit to import.');
}

/** A bounce list is text; a few megabytes hold hundreds of thousands of addresses. */
const BOUNCES_MAX_BYTES = 5 * 1024 * 1024;

async function bouncesFile(deps: CliDeps, file: string | undefined, commit: boolean) {
  if (!file) throw new UsageError('mail:bounces needs --file <bounces.txt>');
  const buffer = await readFile(file);
  if (buffer.length > BOUNCES_MAX_BYTES) throw new UsageError(`${file} is larger than ${BOUNCES_MAX_BYTES / 1024 / 1024} MB: split it.`);
  const addresses = bouncedAddresses(buffer.toString('utf8'));
  if (addresses.length === 0) throw new UsageError(`${file} holds no email address.`);
  const result = commit ? await recordBounces(deps, addresses, ACTOR) : { ...(await previewBounces(deps, addresses)), added: undefined };
  const list = (emails: string[]) => `${emails.slice(0, 20).join(', ')}${emails.length > 20 ? `, … (${emails.length - 20} more)` : ''}`;
  deps.print(
    `${commit ? 'Recorded' : 'Preview'}: ${plural(commit ? result.added! : result.toSuppress.length, 'address', 'addresses')} ${commit ? 'suppressed' : 'to suppress'} (reason "${BOUNCE_REASON}"), ` +
      `${plural(result.alreadySuppressed.length, 'address', 'addresses')} already suppressed, ${plural(result.notContacts.length, 'address', 'addresses')} of no contact (left out).`,
  );
  if (result.toSuppress.length > 0) deps.print(`  ${commit ? 'suppressed' : 'to suppress'}: ${list(result.toSuppress)}`);
  if (result.notContacts.length > 0) deps.print(`  no contact has: ${list(result.notContacts)}`);
  if (!commit && result.toSuppress.length > 0) deps.print('Nothing was written. Run again with --commit to suppress them.');
}

/** The message to show for a failed command, and the exit code. */
export function describeFailure(error: unknown): { message: string; code: number } {
  if (error instanceof UsageError) return { message: `${error.message}\n\n${USAGE}`, code: 2 };
  if (error instanceof HttpError) return { message: error.message, code: 1 };
  if (error instanceof TypeError && (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) return { message: `${error.message}\n\n${USAGE}`, code: 2 };
  if ((error as { code?: string }).code === 'ENOENT') return { message: (error as Error).message, code: 1 };
  return { message: `The command failed: ${(error as Error)?.stack ?? String(error)}`, code: 1 };
}
