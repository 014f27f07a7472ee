import type { Types } from 'mongoose';
import type { Models } from '../db/models.ts';
import type { SendingPause } from './outbox.model.ts';
import { insertIgnoringDuplicates, signalOutboxChange } from './outbox.service.ts';

export interface PauseDeps {
  models: Pick<Models, 'SendingPause' | 'OutboxSignal'>;
  now: () => Date;
}

/** The longest a campaign waits before the sender tries the relay again. */
const LONGEST_PAUSE_MS = 3600_000;

/**
 * The newest pause of each campaign, whether or not it has ended. The
 * collection holds a few documents per relay incident, so it is read whole
 * (on FerretDB any filter but _id would read it whole anyway).
 */
export async function latestPauses(deps: Pick<PauseDeps, 'models'>): Promise<Map<string, SendingPause>> {
  const latest = new Map<string, SendingPause>();
  for (const pause of await deps.models.SendingPause.find({}, { __v: 0 }).lean<SendingPause[]>()) {
    const key = String(pause.campaign);
    const known = latest.get(key);
    if (!known || pause.at > known.at) latest.set(key, pause);
  }
  return latest;
}

/** The campaigns paused now, with the pause that holds each. */
export async function activePauses(deps: PauseDeps): Promise<Map<string, SendingPause>> {
  const now = deps.now();
  const active = new Map<string, SendingPause>();
  // A resume is a pause that ends where it begins.
  for (const [campaign, pause] of await latestPauses(deps)) if (pause.until > now && pause.until > pause.at) active.set(campaign, pause);
  return active;
}

/**
 * Pauses sending for a campaign after the relay failed in a way that is not
 * about one recipient. The pause lasts `baseMs` and doubles with each pause
 * that follows the end of the previous one closely (the relay still fails),
 * up to an hour. Returns the pause that holds the campaign: the newest one
 * when another sender paused it since `since` (no second pause for the same incident).
 */
export async function pauseCampaign(
  deps: PauseDeps & { by: string },
  campaign: Types.ObjectId,
  failure: { error: string; smtpCommand?: string },
  baseMs: number,
  since: Date,
): Promise<SendingPause> {
  const now = deps.now();
  const previous = (await latestPauses(deps)).get(String(campaign));
  if (previous && previous.at >= since && previous.until > now) return previous;
  const previousMs = previous ? previous.until.getTime() - previous.at.getTime() : 0;
  const streak = previous && previous.until.getTime() >= now.getTime() - Math.max(previousMs, baseMs) ? previous.streak + 1 : 0;
  const pause: SendingPause = {
    _id: `${campaign}:${now.getTime()}:${deps.by}`,
    campaign,
    at: now,
    until: new Date(now.getTime() + Math.min(baseMs * 2 ** streak, LONGEST_PAUSE_MS)),
    error: failure.error,
    smtpCommand: failure.smtpCommand,
    streak,
    by: deps.by,
  };
  // Two pauses with the same id (same sender, same millisecond) are the same pause.
  await insertIgnoringDuplicates(deps.models.SendingPause.collection, [pause]);
  // Idle senders learn of it, and so of the time its messages fall due again.
  await signalOutboxChange(deps);
  return pause;
}

/** The coordinator's "try again now": a pause that ends at once, newer than the one it lifts. */
export async function resumeCampaign(deps: PauseDeps, campaign: Types.ObjectId, actor: string): Promise<boolean> {
  const current = (await activePauses(deps)).get(String(campaign));
  if (!current) return false;
  // Strictly newer than the pause it ends, even within the same millisecond.
  const at = new Date(Math.max(deps.now().getTime(), current.at.getTime() + 1));
  const resume = {
    _id: `${campaign}:${at.getTime()}:resume`,
    campaign,
    at,
    until: at,
    error: `Sending resumed by ${actor}`,
    // The next failure starts the doubling again from the first pause.
    streak: -1,
    by: actor,
  };
  await insertIgnoringDuplicates(deps.models.SendingPause.collection, [resume]);
  await signalOutboxChange(deps);
  return true;
}

/** What the coordinator reads about a pause: what the relay said, and what to check. */
export function explainPause(pause: Pick<SendingPause, 'error' | 'smtpCommand'>): string {
  const code = /(?:^|\s)([45]\d\d)[\s-]/.exec(pause.error)?.[1];
  if (pause.error.startsWith('EAUTH') || pause.smtpCommand === 'AUTH') return 'The mail server refused the login: check the user and password in SMTP_URL.';
  if (pause.smtpCommand === 'MAIL FROM') {
    if (code === '530' || /authenticat/i.test(pause.error)) return 'The mail server wants a login before it takes mail: SMTP_URL has no user and password, or not the right ones.';
    return "The mail server refused the sender address: check MAIL_FROM and the campaign's sender with the relay's administrator.";
  }
  if (pause.smtpCommand === 'RCPT TO') {
    return 'The mail server refuses to pass mail on for this platform (it answered every recipient with "relay access denied", a request for a login or a refusal of the sender): SMTP_URL needs a user and password the relay accepts, or the relay must accept mail from this machine. No address was suppressed.';
  }
  if (pause.smtpCommand === 'DATA') return 'The mail server refused the message itself (its content or size): check the campaign texts with the relay\'s administrator.';
  return 'The mail server could not be reached, or it dropped the connection or stopped answering: check SMTP_URL and that the relay is up.';
}
