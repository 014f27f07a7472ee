import { Router, type Response } from 'express';
import { Types } from 'mongoose';
import { z } from 'zod';
import { actorOf } from '../accounts/accounts.routes.ts';
import { recordAudit } from '../accounts/audit.service.ts';
import { csrfProtection, requireRole } from '../accounts/auth.middleware.ts';
import type { Models } from '../db/models.ts';
import { formatDateTime } from '../shared/dates.ts';
import { HttpError } from '../shared/http-error.ts';
import type { SignedInUser } from '../accounts/user.service.ts';
import { describeAudience, EVERYONE } from '../campaigns/audience.service.ts';
import { invitationDryRun } from './invitation-mail.service.ts';
import { auditInvitationSend, invitationSendState, recordInvitationSend } from './invitation-send.service.ts';
import { listTestSends, queueTestSend } from './test-send.service.ts';
import type { catcherView } from './mail-catcher.ts';
import { liftSuppression, listSuppressions, resolveUnknown, retryFailed, type countByRound } from './outbox.service.ts';
import { polledCounts, sendingFigures } from './sending-progress.ts';
import type { OutboxCounts } from './outbox.service.ts';
import { activePauses, explainPause, resumeCampaign } from './sending-pause.service.ts';

export type MailCatcherView = ReturnType<typeof catcherView>;

export interface MailRouteDeps {
  models: Models;
  now: () => Date;
  mailCatcher?: MailCatcherView;
  wakeSender?: () => void;
  /** Starts queueing a recorded "send the invitations" in the background (invitation-send.service.ts). */
  queueInvitations?: () => void;
}

const objectId = z.string().regex(/^[0-9a-f]{24}$/).transform((id) => new Types.ObjectId(id));
const idParams = z.object({ id: objectId });
const outcomeParams = z.object({ id: z.string().regex(/^[0-9a-f]{24}:\d{1,3}$/) });
const resolveBody = z.object({ resolution: z.enum(['resend', 'sent']) });
/** The sending page lists this many failed messages; the counts cover all. */
const LISTED_ON_PAGE = 500;
const sendBody = z.object({ expected: z.string().regex(/^\d{1,7}$/).transform(Number), sendNo: z.string().regex(/^\d{1,6}$/).transform(Number) });
const testSendBody = z.object({
  testNo: z.string().regex(/^\d{1,6}$/).transform(Number),
  returnTo: z.enum(['preview', 'send']).default('send'),
  wording: z.enum(['invitation', 'reminder']).default('invitation'),
});

/** Coordinator pages for sending: send invitations, progress, unknown messages, and the local mail catcher. */
export function mailRoutes(deps: MailRouteDeps): Router {
  const router = Router();
  const coordinator = [requireRole('coordinator'), csrfProtection];

  // The confirmation step: how many emails, to whom in aggregate, a test send, then the one button that sends.
  router.get('/admin/campaigns/:id/send', ...coordinator, async (req, res) => {
    const id = campaignId(req.params);
    await renderConfirmation(id, res);
  });

  router.post('/admin/campaigns/:id/send', ...coordinator, async (req, res) => {
    const id = campaignId(req.params);
    if (!(await deps.models.Campaign.exists({ _id: id }))) throw new HttpError(404, 'This campaign does not exist.');
    const body = sendBody.safeParse(req.body);
    if (!body.success) throw new HttpError(400, 'Please confirm the number of emails on the confirmation page first.');
    // Only the decision is recorded here; the messages are queued in the background, which
    // checks first that the count confirmed is still the count to send (see invitation-send.service.ts).
    const decision = await recordInvitationSend(deps, id, { n: body.data.sendNo, expected: body.data.expected, by: actorOf(res) });
    if (decision === 'stale' || decision === 'busy') {
      const problem =
        decision === 'busy'
          ? 'The invitations of this campaign are still being queued: follow the sending, and send again once that is done.'
          : 'The invitations were sent from another page since this one was shown. Nothing more was sent: please confirm again.';
      await renderConfirmation(id, res, problem, 409);
      return;
    }
    if (decision === 'recorded') {
      await auditInvitationSend(deps.models, { campaign: id, n: body.data.sendNo, expected: body.data.expected, by: actorOf(res), at: deps.now() });
      deps.queueInvitations?.();
    }
    res.redirect(303, `/admin/campaigns/${id}/sending`);
  });

  router.post('/admin/campaigns/:id/test-send', ...coordinator, async (req, res) => {
    const id = campaignId(req.params);
    const body = testSendBody.safeParse(req.body);
    if (!body.success) throw new HttpError(400, 'The form is incomplete: please reload the page.');
    const user = res.locals.user as SignedInUser;
    await queueTestSend(deps, id, { _id: new Types.ObjectId(user.id), email: user.email, name: user.name }, body.data.testNo, body.data.wording);
    deps.wakeSender?.();
    res.redirect(303, body.data.returnTo === 'preview' ? `/admin/campaigns/${id}/preview#test-send` : `/admin/campaigns/${id}/send#test-send`);
  });

  async function renderConfirmation(id: Types.ObjectId, res: Response, problem?: string, status = 200) {
    const campaign = await deps.models.Campaign.findById(id, { name: 1, audience: 1, languages: 1 }).lean();
    if (!campaign) throw new HttpError(404, 'This campaign does not exist.');
    const user = res.locals.user as SignedInUser;
    const send = await invitationSendState(deps, id);
    res.status(status).render('mail/confirm-send', {
      title: `Send the invitations: ${campaign.name}`,
      campaign,
      problem,
      audience: describeAudience({ ...EVERYONE, ...campaign.audience }),
      dryRun: await invitationDryRun(deps, id, send.latest),
      send,
      testSends: await listTestSends(deps, id),
      me: user.email,
      returnTo: 'send',
    });
  }

  router.get('/admin/campaigns/:id/sending', ...coordinator, async (req, res) => {
    const id = campaignId(req.params);
    const campaign = await deps.models.Campaign.findById(id, { name: 1 }).lean();
    if (!campaign) throw new HttpError(404, 'This campaign does not exist.');
    const [{ unknown, failed, counts }, pause, send] = await Promise.all([
      sendingFigures(deps, id),
      activePauses(deps).then((paused) => paused.get(String(id))),
      invitationSendState(deps, id),
    ]);
    res.render('mail/sending', {
      title: `Sending: ${campaign.name}`,
      campaign,
      pause: pause && { ...pause, explanation: explainPause(pause) },
      queueing: send.queueing,
      refused: send.latest?.refused,
      failed: failed.slice(0, LISTED_ON_PAGE).map((s) => ({
        id: `${s.message._id}:${s.attempts - 1}`,
        to: s.message.to,
        kind: s.message.kind,
        round: s.message.round,
        at: s.last?.at,
        error: s.last?.error,
        suppressed: s.last?.smtpCommand === 'RCPT TO' && s.last?.permanent,
      })),
      failedTruncated: failed.length > LISTED_ON_PAGE,
      ...sendingTable(counts),
      unknown: unknown.map(({ outcome, message, messageId, claimedAt }) => ({ id: outcome._id, to: message.to, kind: message.kind, round: message.round, claimedAt, at: outcome.at, error: outcome.error, messageId })),
      progressUrl: `/admin/campaigns/${id}/sending.json`,
      scripts: ['/static/mail-progress.js'],
    });
  });

  router.get('/admin/campaigns/:id/sending.json', ...coordinator, async (req, res) => {
    const id = campaignId(req.params);
    const [{ all, rounds }, send] = await Promise.all([polledCounts(deps, id), invitationSendState(deps, id)]);
    const queueing = send.latest && { queued: send.latest.queued, expected: send.latest.expected, finished: Boolean(send.latest.finishedAt), refused: send.latest.refused };
    res.json({ ...all, rounds, queueing });
  });

  router.post('/admin/campaigns/:id/resume', ...coordinator, async (req, res) => {
    const { id } = idParams.parse(req.params);
    if (await resumeCampaign(deps, id, actorOf(res))) {
      await recordAudit(deps.models, { actor: actorOf(res), action: 'mail.resume-sending', target: `campaign:${id}`, at: deps.now() });
      deps.wakeSender?.();
    }
    res.redirect(303, `/admin/campaigns/${id}/sending`);
  });

  router.post('/admin/mail/failed/:id', ...coordinator, async (req, res) => {
    const { id } = outcomeParams.parse(req.params);
    const outcome = await deps.models.OutboxOutcome.findById(id, { campaign: 1 }).lean();
    if (!outcome) throw new HttpError(404, 'This message does not exist.');
    if (await retryFailed(deps, id, actorOf(res))) {
      await recordAudit(deps.models, { actor: actorOf(res), action: 'mail.retry-failed', target: `outbox:${id}`, at: deps.now() });
      deps.wakeSender?.();
    }
    res.redirect(303, `/admin/campaigns/${outcome.campaign}/sending`);
  });

  router.get('/admin/suppressions', ...coordinator, async (_req, res) => {
    const suppressions = await listSuppressions(deps);
    res.render('mail/suppressions', {
      title: 'Suppressed addresses',
      suppressions: suppressions.map((s) => ({ ...s, liftable: s.reason !== 'unsubscribed' })),
    });
  });

  router.post('/admin/suppressions/:id/lift', ...coordinator, async (req, res) => {
    const { id } = idParams.parse(req.params);
    const result = await liftSuppression(deps, id);
    if (!result.lifted) throw new HttpError(409, result.why);
    await recordAudit(deps.models, { actor: actorOf(res), action: 'mail.lift-suppression', target: `suppression:${result.email}`, details: { reason: result.reason }, at: deps.now() });
    res.redirect(303, '/admin/suppressions');
  });

  router.post('/admin/mail/unknown/:id', ...coordinator, async (req, res) => {
    const params = outcomeParams.safeParse(req.params);
    if (!params.success) throw new HttpError(404, 'This message does not exist.');
    const { id } = params.data;
    const body = resolveBody.safeParse(req.body);
    if (!body.success) throw new HttpError(400, 'Please choose whether to resend the message or record it as sent.');
    const { resolution } = body.data;
    const outcome = await deps.models.OutboxOutcome.findById(id, { campaign: 1 }).lean();
    if (!outcome) throw new HttpError(404, 'This message does not exist.');
    if (await resolveUnknown(deps, id, resolution, actorOf(res))) {
      await recordAudit(deps.models, { actor: actorOf(res), action: 'mail.resolve-unknown', target: `outbox:${id}`, details: { resolution }, at: deps.now() });
      if (resolution === 'resend') deps.wakeSender?.();
    }
    res.redirect(303, `/admin/campaigns/${outcome.campaign}/sending`);
  });

  router.get('/admin/mail', ...coordinator, (_req, res) => {
    const messages = (deps.mailCatcher?.list() ?? []).map((m) => ({ ...m, received: formatDateTime(new Date(m.receivedAt)) }));
    res.render('mail/caught', { title: 'Mail catcher', enabled: Boolean(deps.mailCatcher), messages });
  });

  router.get('/admin/mail/:id', ...coordinator, async (req, res) => {
    const message = typeof req.params.id === 'string' ? await deps.mailCatcher?.read(req.params.id) : undefined;
    if (!message) throw new HttpError(404, 'This message does not exist.');
    // The text is escaped by the view; only http(s) links are made clickable, piece by piece.
    const parts = message.text.split(/(https?:\/\/[^\s<>"]+)/g).map((piece, i) => (i % 2 === 1 ? { link: piece } : { text: piece }));
    res.render('mail/caught-message', { title: message.subject, message, parts, date: message.date && formatDateTime(message.date) });
  });
  return router;
}

const STATE_ROWS: Array<{ state: keyof OutboxCounts; label: string }> = [
  { state: 'queued', label: 'Queued' },
  { state: 'sending', label: 'Being sent' },
  { state: 'sent', label: 'Sent' },
  { state: 'failed', label: 'Failed' },
  { state: 'skipped', label: 'Not sent (unsubscribed, bounced, completed…)' },
  { state: 'unknown', label: 'Unknown — to resolve' },
  { state: 'total', label: 'Total' },
];

/** The sending page's table: one row per state, a column for the invitations, one per reminder round, and all together. */
function sendingTable({ all, rounds }: Awaited<ReturnType<typeof countByRound>>) {
  const columns = [...rounds.map((r) => ({ key: String(r.round), label: r.round === 0 ? 'Invitations' : `Reminder round ${r.round}`, counts: r.counts })), { key: 'all', label: 'All emails', counts: all }];
  return {
    counts: all,
    columns,
    stateRows: STATE_ROWS.map(({ state, label }) => ({ state, label, cells: columns.map((c) => ({ round: c.key, value: c.counts[state] })) })),
  };
}

/** A malformed id names no campaign: 404, like an unknown one. */
function campaignId(params: unknown): Types.ObjectId {
  const parsed = idParams.safeParse(params);
  if (!parsed.success) throw new HttpError(404, 'This campaign does not exist.');
  return parsed.data.id;
}
