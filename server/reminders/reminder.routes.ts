import { Router, type Response } from 'express';
import { Types } from 'mongoose';
import { z } from 'zod';
import { actorOf } from '../accounts/accounts.routes.ts';
import { recordAudit } from '../accounts/audit.service.ts';
import { csrfProtection, requireRole } from '../accounts/auth.middleware.ts';
import type { Models } from '../db/models.ts';
import { institutionTypeLabel } from '../institutions/institution-codes.ts';
import { formatDateTime } from '../shared/dates.ts';
import { HttpError } from '../shared/http-error.ts';
import { reminderDryRun, reminderRounds, setReminderPolicy, startReminderRound } from './reminder.service.ts';

export interface ReminderRouteDeps {
  models: Models;
  now: () => Date;
  /** Tells the background sender that messages were just enqueued. */
  wakeSender?: () => void;
}

const idParams = z.object({ id: z.string().regex(/^[0-9a-f]{24}$/).transform((id) => new Types.ObjectId(id)) });
const policyBody = z.object({
  // An unticked checkbox sends nothing.
  enabled: z.literal('on').optional(),
  everyDays: z.coerce.number().int().min(1).max(60),
  maxRounds: z.coerce.number().int().min(0).max(10),
});
/** The round the page showed as next: two posts of the same page can start it only once. */
const sendBody = z.object({ round: z.coerce.number().int().min(1).max(1000) });

/** The page lists this many recipients of the dry run; the counts cover all. */
const LISTED_ON_PAGE = 500;

/** The coordinator's reminder pages: policy, rounds so far, dry run of the next round, and "send a round now". */
export function reminderRoutes(deps: ReminderRouteDeps): Router {
  const router = Router();
  const coordinator = [requireRole('coordinator'), csrfProtection];

  async function campaignOf(params: unknown) {
    const parsed = idParams.safeParse(params);
    if (!parsed.success) throw new HttpError(404, 'This campaign does not exist.');
    const campaign = await deps.models.Campaign.findById(parsed.data.id, { name: 1, reminderPolicy: 1, closesAt: 1, closedAt: 1 }).lean();
    if (!campaign) throw new HttpError(404, 'This campaign does not exist.');
    return campaign;
  }

  async function renderPage(res: Response, campaign: Awaited<ReturnType<typeof campaignOf>>, extra: { status?: number; problems?: string[]; refused?: string; values?: Record<string, unknown> } = {}) {
    const [dryRun, { rounds, nextRound, everyDays, nextStartsAt }] = await Promise.all([reminderDryRun(deps, campaign._id), reminderRounds(deps, campaign._id)]);
    const policy = campaign.reminderPolicy ?? { enabled: false, everyDays: 7, maxRounds: 2 };
    res.status(extra.status ?? 200).render('reminders/reminders', {
      title: `Reminders: ${campaign.name}`,
      campaign,
      policy: extra.values ?? policy,
      problems: extra.problems,
      refused: extra.refused,
      rounds: rounds.map((r) => ({ ...r, label: r.round === 0 ? 'Invitation' : `Reminder ${r.round}` })),
      nextRound,
      everyDays,
      // Within the policy's days after the last round a new one is refused: the page says from when instead of offering it.
      notBefore: nextStartsAt && nextStartsAt > deps.now() ? formatDateTime(nextStartsAt) : undefined,
      dryRun: {
        ...dryRun,
        bySegment: dryRun.bySegment.map((s) => ({ ...s, institutionTypeLabel: institutionTypeLabel(s.institutionType) })),
        recipients: dryRun.recipients.slice(0, LISTED_ON_PAGE),
        truncated: dryRun.recipients.length > LISTED_ON_PAGE,
      },
      listedOnPage: LISTED_ON_PAGE,
    });
  }

  router.get('/admin/campaigns/:id/reminders', ...coordinator, async (req, res) => {
    await renderPage(res, await campaignOf(req.params));
  });

  router.post('/admin/campaigns/:id/reminders/policy', ...coordinator, async (req, res) => {
    const campaign = await campaignOf(req.params);
    const body = policyBody.safeParse(req.body);
    if (!body.success) {
      const problems = body.error.issues.map((issue) => PROBLEMS[String(issue.path[0])] ?? 'The form is not valid.');
      const raw = (req.body ?? {}) as Record<string, unknown>;
      await renderPage(res, campaign, { status: 400, problems, values: { enabled: raw.enabled === 'on', everyDays: raw.everyDays, maxRounds: raw.maxRounds } });
      return;
    }
    const policy = { enabled: body.data.enabled === 'on', everyDays: body.data.everyDays, maxRounds: body.data.maxRounds };
    await setReminderPolicy(deps, campaign._id, policy);
    await recordAudit(deps.models, { actor: actorOf(res), action: 'reminder.policy', target: `campaign:${campaign._id}`, details: policy, at: deps.now() });
    res.redirect(303, `/admin/campaigns/${campaign._id}/reminders`);
  });

  router.post('/admin/campaigns/:id/reminders/send', ...coordinator, async (req, res) => {
    const campaign = await campaignOf(req.params);
    const body = sendBody.safeParse(req.body);
    if (!body.success) throw new HttpError(400, 'The form did not say which reminder round to start. Reload the reminders page and try again.');
    const result = await startReminderRound(deps, campaign._id, actorOf(res), body.data.round);
    if (!result.started) {
      await renderPage(res, campaign, { status: 409, refused: result.reason });
      return;
    }
    await recordAudit(deps.models, {
      actor: actorOf(res),
      action: 'reminder.send-round',
      target: `campaign:${campaign._id}`,
      details: { round: result.round, recipients: result.recipients },
      at: deps.now(),
    });
    deps.wakeSender?.();
    res.redirect(303, `/admin/campaigns/${campaign._id}/sending`);
  });
  return router;
}

const PROBLEMS: Record<string, string> = {
  enabled: 'Automatic reminders are either on or off.',
  everyDays: 'Days between reminders must be a whole number from 1 to 60.',
  maxRounds: 'The number of reminders must be a whole number from 0 to 10.',
};
