import { Router } from 'express';
import { z } from 'zod';
import { actorOf } from '../accounts/accounts.routes.ts';
import { csrfProtection, requireRole } from '../accounts/auth.middleware.ts';
import { HttpError } from '../shared/http-error.ts';
import { findDemoData, removeDemoData, type DemoDataDeps } from './demo-data.service.ts';

export interface DemoDataRouteDeps extends DemoDataDeps {
  /** Called after removal with the ids of the analytic records removed: the evidence takes them out. */
  onRemoved?: (removedRecords: string[]) => void;
}

const removeBody = z.object({ confirm: z.literal('remove') });

/** "Remove demo data": the list of what would go, then one button (coordinators only, audited). */
export function demoDataRoutes(deps: DemoDataRouteDeps): Router {
  const router = Router();
  const coordinator = [requireRole('coordinator'), csrfProtection];

  router.get('/admin/demo-data', ...coordinator, async (req, res) => {
    const found = await findDemoData(deps.models);
    const removed = typeof req.query.removed === 'string' && /^\d+$/.test(req.query.removed) ? Number(req.query.removed) : undefined;
    const { ids: _, ...shown } = found;
    res.render('campaigns/demo-data', {
      title: 'Remove demo data',
      ...shown,
      removed,
      nothing: found.campaigns.length + found.institutions.length + found.contacts.length + found.counts.invitations === 0,
    });
  });

  router.post('/admin/demo-data', ...coordinator, async (req, res) => {
    if (!removeBody.safeParse(req.body).success) throw new HttpError(400, 'Please use the button on the demo data page.');
    const removed = await removeDemoData(deps, actorOf(res));
    deps.onRemoved?.(removed.removedRecords);
    res.redirect(303, `/admin/demo-data?removed=${removed.institutions.length + removed.contacts.length + removed.campaigns.length}`);
  });

  return router;
}
