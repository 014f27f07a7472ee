import { Router } from 'express';
import { Types } from 'mongoose';
import { z } from 'zod';
import { actorOf } from '../accounts/accounts.routes.ts';
import { recordAudit } from '../accounts/audit.service.ts';
import { csrfProtection, requireRole } from '../accounts/auth.middleware.ts';
import { separatorOf } from '../shared/csv.ts';
import { HttpError } from '../shared/http-error.ts';
import { LANGUAGES } from '../shared/languages.ts';
import { COUNTRY_CODES, countryLabel, INSTITUTION_TYPES, institutionTypeLabel } from './institution-codes.ts';
import { addFromForm, commitPreview, IMPORT_COLUMNS, IMPORT_MAX_BYTES, loadPreview, planImport, storePreview, type ImportDeps, type RowOutcome } from './import.service.ts';
import {
  contactEditSchema,
  deactivateMany,
  exportInstitutionsCsv,
  getInstitution,
  institutionEditSchema,
  institutionQuerySchema,
  institutionTotals,
  listInstitutions,
  setContactActive,
  setInstitutionActive,
  updateContact,
  updateInstitution,
} from './institution.service.ts';

/** The form body of an upload may be this large (URL encoding inflates the file's text). */
export const IMPORT_UPLOAD_PATH = '/admin/institutions/import';
export const IMPORT_BODY_LIMIT = IMPORT_MAX_BYTES * 3 + 64 * 1024;

const objectId = z.string().regex(/^[0-9a-f]{24}$/).transform((id) => new Types.ObjectId(id));
const idParams = z.object({ id: objectId });
const uploadBody = z.object({ text: z.string(), fileName: z.string().max(300).optional() });
const previewBody = z.object({ previewId: z.string().max(100) });
const text = (max: number) => z.string().max(max).default('');
const newInstitutionBody = z.object({
  institution_name: text(300),
  country: text(10),
  institution_type: text(100),
  erasmus_id: text(20),
  contact_name: text(200),
  email: text(300),
  language: text(10),
});
const newContactBody = newInstitutionBody.pick({ contact_name: true, email: true, language: true });
const selectedIds = z.object({
  ids: z.preprocess((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]), z.array(objectId).max(500)),
  back: z.string().regex(/^\/admin\/institutions(\/[0-9a-f]{24})?$/).optional().catch(undefined),
});
const activeBody = z.object({ active: z.enum(['true', 'false']).transform((v) => v === 'true') });

/** Institutions and contacts: list, search, edit, deactivate, export, and the CSV import with its preview. */
export function institutionRoutes(deps: ImportDeps): Router {
  const router = Router();
  const coordinator = [requireRole('coordinator'), csrfProtection];
  const choices = { countries: COUNTRY_CODES.map((code) => ({ code, label: countryLabel(code) })), types: INSTITUTION_TYPES, languages: LANGUAGES };

  router.get('/admin/institutions', ...coordinator, async (req, res) => {
    const query = institutionQuerySchema.parse(req.query);
    const [result, totals] = await Promise.all([listInstitutions(deps, query), institutionTotals(deps)]);
    const params = (page: number) => new URLSearchParams({ ...(query.q ? { q: query.q } : {}), ...(query.country ? { country: query.country } : {}), ...(query.type ? { type: query.type } : {}), page: String(page) }).toString();
    res.render('institutions/list', {
      title: 'Institutions',
      ...choices,
      query,
      institutions: result.institutions.map((i) => ({ ...i, typeLabel: institutionTypeLabel(i.type) })),
      page: result.page,
      previous: result.page > 1 ? params(result.page - 1) : undefined,
      next: result.hasNext ? params(result.page + 1) : undefined,
      exportQuery: params(1).replace(/&?page=\d+/, ''),
      totals,
      deactivated: countParam(req.query.deactivated),
      revoked: countParam(req.query.revoked),
    });
  });

  router.get('/admin/institutions/new', ...coordinator, (_req, res) => {
    res.render('institutions/new', { title: 'Add an institution', ...choices, values: { language: 'en' } });
  });

  router.post('/admin/institutions/new', ...coordinator, async (req, res) => {
    const body = parseForm(newInstitutionBody, req.body);
    const added = await addFromForm(deps, body, actorOf(res));
    if ('problems' in added) return res.status(400).render('institutions/new', { title: 'Add an institution', ...choices, values: body, problems: added.problems });
    res.redirect(303, `/admin/institutions/${added.institutionId}?added=${added.newInstitution ? 'institution' : 'contact'}`);
  });

  // Several institutions, or several contacts, at once; each one's open links are revoked.
  router.post('/admin/institutions/deactivate', ...coordinator, async (req, res) => {
    const { ids } = parseForm(selectedIds, req.body);
    if (ids.length === 0) throw new HttpError(400, 'Please tick the institutions to deactivate.');
    const result = await deactivateMany(deps, 'institution', ids, actorOf(res));
    res.redirect(303, `/admin/institutions?deactivated=${result.deactivated}&revoked=${result.revokedLinks}`);
  });

  router.post('/admin/contacts/deactivate', ...coordinator, async (req, res) => {
    const { ids, back } = parseForm(selectedIds, req.body);
    if (ids.length === 0) throw new HttpError(400, 'Please tick the contacts to deactivate.');
    const result = await deactivateMany(deps, 'contact', ids, actorOf(res));
    res.redirect(303, `${back ?? '/admin/institutions'}?deactivated=${result.deactivated}&revoked=${result.revokedLinks}`);
  });

  router.get('/admin/institutions/export.csv', ...coordinator, async (req, res) => {
    const query = institutionQuerySchema.parse(req.query);
    res.set({ 'Content-Type': 'text/csv; charset=utf-8', 'Content-Disposition': 'attachment; filename="institutions.csv"' });
    await recordAudit(deps.models, { actor: actorOf(res), action: 'export.institutions', details: { q: query.q, country: query.country, type: query.type }, at: deps.now() });
    for await (const chunk of exportInstitutionsCsv(deps, query, separatorOf(req.query))) res.write(chunk);
    res.end();
  });

  const importPage = (problem?: string) => ({ title: 'Import institutions and contacts', columns: IMPORT_COLUMNS, maxMb: IMPORT_MAX_BYTES / 1024 / 1024, scripts: ['/static/import.js'], problem });
  router.get('/admin/institutions/import', ...coordinator, (_req, res) => {
    res.render('institutions/import', importPage());
  });

  router.post('/admin/institutions/import', ...coordinator, async (req, res) => {
    const body = uploadBody.safeParse(req.body);
    // A file refused as a whole is said on the import page, where the coordinator chooses the next one (a browser, not a script, posts this form).
    const refuse = (status: number, problem: string) => res.status(status).render('institutions/import', importPage(problem));
    if (!body.success || body.data.text.trim() === '') return refuse(400, 'Please choose a CSV file or paste its contents.');
    let plan: Awaited<ReturnType<typeof planImport>>;
    try {
      plan = await planImport(deps, body.data.text);
    } catch (error) {
      if (error instanceof HttpError && error.status < 500) return refuse(error.status, error.message);
      throw error;
    }
    const previewId = await storePreview(deps, body.data.text, actorOf(res), body.data.fileName || undefined);
    res.render('institutions/preview', {
      title: 'Import preview',
      plan,
      previewId,
      fileName: body.data.fileName,
      nothingToDo: plan.writes.institutions.length + plan.writes.contacts.length === 0,
      sections: previewSections(plan.rows),
    });
  });

  router.post('/admin/institutions/import/commit', ...coordinator, async (req, res) => {
    const body = previewBody.safeParse(req.body);
    if (!body.success) throw new HttpError(400, 'Which import?');
    if (!(await loadPreview(deps, body.data.previewId, actorOf(res)))) throw new HttpError(404, 'This import preview does not exist. Upload the file again.');
    const plan = await commitPreview(deps, body.data.previewId, actorOf(res));
    res.render('institutions/imported', { title: 'Import done', plan });
  });

  router.get('/admin/institutions/:id', ...coordinator, async (req, res) => {
    const { id } = parseParams(req.params);
    const { institution, contacts } = await getInstitution(deps, id);
    res.render('institutions/detail', {
      title: institution.name,
      institution,
      contacts,
      ...choices,
      added: req.query.added === 'institution' || req.query.added === 'contact' ? req.query.added : undefined,
      deactivated: countParam(req.query.deactivated),
      revoked: countParam(req.query.revoked),
      newContact: { language: 'en' },
    });
  });

  router.post('/admin/institutions/:id/contacts', ...coordinator, async (req, res) => {
    const { id } = parseParams(req.params);
    const body = parseForm(newContactBody, req.body);
    const { institution, contacts } = await getInstitution(deps, id);
    // The institution's own details, so the row names exactly this institution.
    const row = { institution_name: institution.name, country: institution.country, institution_type: institution.type, erasmus_id: institution.erasmusId ?? '', ...body };
    const added = await addFromForm(deps, row, actorOf(res));
    if ('problems' in added) {
      return res.status(400).render('institutions/detail', { title: institution.name, institution, contacts, ...choices, newContact: body, contactProblems: added.problems });
    }
    res.redirect(303, `/admin/institutions/${id}?added=contact`);
  });

  router.post('/admin/institutions/:id', ...coordinator, async (req, res) => {
    const { id } = parseParams(req.params);
    const body = institutionEditSchema.safeParse(req.body);
    if (!body.success) throw new HttpError(400, `Please check the form: ${body.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`);
    await updateInstitution(deps, id, body.data, actorOf(res));
    res.redirect(303, `/admin/institutions/${id}`);
  });

  router.post('/admin/institutions/:id/active', ...coordinator, async (req, res) => {
    const { id } = parseParams(req.params);
    const { active } = parseForm(activeBody, req.body);
    await setInstitutionActive(deps, id, active, actorOf(res));
    res.redirect(303, `/admin/institutions/${id}`);
  });

  router.post('/admin/contacts/:id', ...coordinator, async (req, res) => {
    const { id } = parseParams(req.params);
    const body = contactEditSchema.safeParse(req.body);
    if (!body.success) throw new HttpError(400, `Please check the form: ${body.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`);
    await updateContact(deps, id, body.data, actorOf(res));
    const contact = await deps.models.Contact.findById(id, { institution: 1 }).lean();
    res.redirect(303, `/admin/institutions/${contact?.institution}`);
  });

  router.post('/admin/contacts/:id/active', ...coordinator, async (req, res) => {
    const { id } = parseParams(req.params);
    const { active } = parseForm(activeBody, req.body);
    const { institution } = await setContactActive(deps, id, active, actorOf(res));
    res.redirect(303, `/admin/institutions/${institution}`);
  });

  return router;
}

/** A count carried in the address after a redirect, to say what just happened. */
function countParam(value: unknown): number | undefined {
  return typeof value === 'string' && /^\d{1,6}$/.test(value) ? Number(value) : undefined;
}

function parseParams(params: unknown) {
  const parsed = idParams.safeParse(params);
  if (!parsed.success) throw new HttpError(404, 'This page does not exist.');
  return parsed.data;
}

function parseForm<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new HttpError(400, 'The form is incomplete. Please reload the page and try again.');
  return parsed.data;
}

/**
 * The preview's tables: every rejected, repeated and changed row (what changes
 * from what to what); new rows with every column and unchanged rows only in
 * part, so a large file stays readable.
 */
function previewSections(rows: RowOutcome[]) {
  const section = (action: RowOutcome['action'], caption: string, limit: number, columns: 'reason' | 'changes' | 'fields' | 'none', reasonLabel?: string) => {
    const all = rows.filter((r) => r.action === action);
    const shown = all.slice(0, limit);
    return {
      caption,
      rows: shown.map((r) => ({ ...r, fieldValues: r.fields && Object.values(r.fields) })),
      shown: shown.length,
      total: all.length,
      more: all.length > limit,
      withReason: columns === 'reason',
      withChanges: columns === 'changes',
      withFields: columns === 'fields',
      fieldNames: columns === 'fields' ? Object.keys(shown[0]?.fields ?? {}) : [],
      reasonLabel,
    };
  };
  return [
    section('reject', 'Rejected rows (not imported)', 5000, 'reason', 'Reason'),
    section('duplicate', 'Repeated rows (imported once)', 5000, 'reason', 'Note'),
    section('update', 'Rows that change what is recorded', 5000, 'changes'),
    section('create', 'New rows', 200, 'fields'),
    section('unchanged', 'Unchanged rows', 50, 'none'),
  ].filter((s) => s.total > 0);
}
