import { parseArgs } from 'node:util';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { Types } from 'mongoose';
import { z } from 'zod';
import { createUser, disableUser, enableUser, generatePassword, listUsers, newUserInputSchema } from '../accounts/user.service.ts';
import { ROLES } from '../accounts/user.model.ts';
import { inviteCampaign, listCampaigns } from '../campaigns/campaign.service.ts';
import { reminderDryRun } from '../reminders/reminder.service.ts';
import { sendCampaign, type CliMailSettings, type ProgressOutput } from './campaign-send.ts';
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
                               creates one personal link per active contact
  campaign:send --campaign <id> [--reminder-round [--yes]]
                               creates the links, queues the invitations (or starts the
                               next reminder round) and sends them through SMTP_URL with a
                               progress bar; exits 1 if some failed or are unknown.
                               --reminder-round alone is a dry run: who would get it, by
                               country and institution type; add --yes to send it.
                               Safe to run again or after Ctrl-C: nothing is sent twice

The tool connects to MONGODB_URI, else starts the embedded database under DATA_DIR.
Only one process can use the embedded database: while the platform runs, use the
MONGODB_URI it prints at start.`;

export class UsageError extends Error {}

export const COMMANDS = ['users:add', 'users:disable', 'users:enable', 'users:list', 'import', 'campaign:list', 'campaign:invite', 'campaign:send'] as const;

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
    },
    strict: true,
  });
  switch (command) {
    case 'users:add':
      return addUser(deps, values);
    case 'users:disable': {
      if (!values.email) throw new UsageError('users:disable needs --email');
      await disableUser(deps, values.email, ACTOR);
      deps.print(`${values.email.toLowerCase()} is disabled.`);
      return;
    }
    case 'users:enable': {
      if (!values.email) throw new UsageError('users:enable needs --email');
      await enableUser(deps, values.email, ACTOR);
      deps.print(`${values.email.toLowerCase()} is enabled again.`);
      return;
    }
    case 'users:list':
      for (const user of await listUsers(deps)) {
        deps.print(`${user.email}\t${user.role}\t${user.name}${user.disabledAt ? '\t(disabled)' : ''}${user.passwordExpired ? '\t(must set own password)' : ''}`);
      }
      return;
    case 'import':
      return importFile(deps, values.file, values.commit);
    case 'campaign:list':
      for (const campaign of await listCampaigns(deps)) {
        deps.print(`${campaign._id}\t${campaign.name}\t${formatDay(campaign.opensAt)} – ${formatLastDay(campaign.closesAt)}${campaign.closedAt ? ` (closed early on ${formatDay(campaign.closedAt)})` : ''}\t${campaign.invitations} ${campaign.invitations === 1 ? 'link' : 'links'}`);
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
      if (command === 'campaign:send' && values['reminder-round'] && !values.yes) {
        printReminderDryRun(deps, await reminderDryRun(deps, campaignId));
        return;
      }
      if (command === 'campaign:send') {
        if (!deps.mail || !deps.progress) throw new Error('campaign:send needs the mail settings and a progress output.');
        return sendCampaign({ ...deps, mail: deps.mail, progress: deps.progress }, campaignId, { reminderRound: values['reminder-round'], actor: ACTOR });
      }
      const result = await inviteCampaign(deps, campaignId, ACTOR);
      deps.print(`${result.created} personal links created; the campaign has ${result.total}.`);
      return;
    }
    default:
      throw new UsageError(command ? `Unknown command: ${command}` : 'No command given.');
  }
}

/** Before any reminder round: how many would receive it, where, and who. */
function printReminderDryRun(deps: CliDeps, dryRun: Awaited<ReturnType<typeof reminderDryRun>>) {
  deps.print(`Dry run: the next reminder round would go to ${dryRun.total} contacts (${dryRun.started} started, ${dryRun.total - dryRun.started} not started).`);
  for (const cell of dryRun.bySegment) deps.print(`  ${cell.country} ${cell.institutionType}: ${cell.count}`);
  for (const r of dryRun.recipients) deps.print(`  ${r.name} <${r.email}>, ${r.institutionName} (${r.country})${r.started ? ', started' : ''}`);
  deps.print('Nothing was sent. Add --yes to send this round.');
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
  deps.print(`${commit ? 'Imported' : 'Preview'}: ${counts.create} to create, ${counts.update} to update, ${counts.unchanged} unchanged, ${counts.reject} rejected.`);
  deps.print(`Institutions: ${plan.institutions.create} new, ${plan.institutions.update} changed. Contacts: ${plan.contacts.create} new, ${plan.contacts.update} changed.`);
  for (const row of plan.rows.filter((r) => r.action === 'reject')) deps.print(`  row ${row.row} rejected: ${row.reason}`);
  for (const row of plan.rows.filter((r) => r.action === 'update')) deps.print(`  row ${row.row} updates: ${row.reason}`);
  if (!commit && plan.writes.institutions.length + plan.writes.contacts.length > 0) deps.print('Nothing was written. Run again with --commit to import.');
}

/** The message to show for a failed command, and the exit code. */
export function describeFailure(error: unknown): { message: string; code: number } {
  if (error instanceof UsageError) return { message: `${error.message}\n\n${USAGE}`, code: 2 };
  if (error instanceof HttpError) return { message: error.message, code: 1 };
  if (error instanceof TypeError && (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) return { message: `${error.message}\n\n${USAGE}`, code: 2 };
  if ((error as { code?: string }).code === 'ENOENT') return { message: (error as Error).message, code: 1 };
  return { message: `The command failed: ${(error as Error)?.stack ?? String(error)}`, code: 1 };
}
