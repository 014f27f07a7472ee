import { Router } from 'express';
import { Types } from 'mongoose';
import { z } from 'zod';
import { actorOf } from '../accounts/accounts.routes.ts';
import { csrfProtection, requireRole } from '../accounts/auth.middleware.ts';
import { HttpError } from '../shared/http-error.ts';
import { regenerateLink, revokeLink, type InvitationDeps } from './invitation.service.ts';

const idParams = z.object({ id: z.string().regex(/^[0-9a-f]{24}$/).transform((id) => new Types.ObjectId(id)) });
const regenerateBody = z.object({ replacing: z.coerce.number().int().min(0).max(1_000_000) });

/** Coordinator actions on one personal link: revoke it, or replace it by a new one. */
export function invitationRoutes(deps: InvitationDeps & { now: () => Date }): Router {
  const router = Router();
  const coordinator = [requireRole('coordinator'), csrfProtection];

  router.post('/admin/invitations/:id/revoke', ...coordinator, async (req, res) => {
    const id = parseId(req.params);
    const { institution } = await revokeLink(deps, id, actorOf(res));
    res.redirect(303, `/admin/institutions/${institution}`);
  });

  router.post('/admin/invitations/:id/regenerate', ...coordinator, async (req, res) => {
    const id = parseId(req.params);
    const body = regenerateBody.safeParse(req.body);
    if (!body.success) throw new HttpError(400, 'The form is incomplete. Please reload the page and try again.');
    const { link, institution } = await regenerateLink(deps, id, body.data.replacing, actorOf(res));
    res.render('invitations/regenerated', { title: 'A new personal link', link, back: `/admin/institutions/${institution}` });
  });

  return router;
}

function parseId(params: unknown): Types.ObjectId {
  const parsed = idParams.safeParse(params);
  if (!parsed.success) throw new HttpError(404, 'This personal link does not exist.');
  return parsed.data.id;
}
