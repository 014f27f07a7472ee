import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '../../server/cli/commands.ts';
import { importContacts } from '../../server/institutions/import.service.ts';
import { signIn } from '../helpers/accounts.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/test-platform.ts';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => {
  await platform.close();
});

const deps = () => ({ models: platform.models, now: platform.clock.now });

// Semicolons, a BOM, quoted fields with the separator inside, an English type label and an empty language.
const FILE = [
  '\uFEFFinstitution_name;country;institution_type;erasmus_id;contact_name;email;language',
  '"Lycée des métiers; Jean Monnet";FR;ivet_school;E10000001;Claire Dubois;claire@lycee.example;fr',
  '"Lycée des métiers; Jean Monnet";FR;ivet_school;E10000001;Marc Petit;marc@lycee.example;',
  'Berufskolleg Nord;DE;Dual or apprenticeship-based initial VET;;Anna Weber;ANNA@bk-nord.example;de',
  'Σχολή Αθηνών;GR;ivet_school;;Nikos P;nikos@athens.example;en',
  'Nowhere College;US;ivet_school;;John Doe;john@nowhere.example;en',
  'Bad Type School;AT;university;;Eva K;eva@bad.example;de',
  'Wrong Id School;AT;ivet_school;12345;Karl M;karl@wrong.example;de',
  'Twice School;SE;cvet_adult;;Lars A;same@twice.example;en',
  'Twice School 2;SE;cvet_adult;;Lars B;same@twice.example;en',
  'No Email School;FI;cvet_adult;;Mikko;not-an-email;it',
].join('\r\n');

describe('importing institutions and contacts from CSV', () => {
  it('the preview says per row what would be created and why rows are rejected, and writes nothing', async () => {
    const plan = await importContacts(deps(), FILE, { commit: false, actor: 'test' });
    expect(plan.counts).toEqual({ create: 3, update: 0, unchanged: 0, duplicate: 0, reject: 7 });
    expect(plan.institutions).toEqual({ create: 2, update: 0 });
    expect(plan.contacts).toEqual({ create: 3, update: 0 });
    const reasons = Object.fromEntries(plan.rows.filter((r) => r.action === 'reject').map((r) => [r.row, r.reason]));
    expect(reasons[5]).toMatch(/GR.*EL/);
    expect(reasons[6]).toMatch(/country "US"/);
    expect(reasons[7]).toContain('institution type "university" is unknown (use one of ivet_school, ivet_dual, cvet_adult, company_centre, chamber_sector, post_secondary, or the type\'s name in English, French or German, e.g. "School-based initial VET")');
    expect(reasons[8]).toMatch(/Erasmus\+ organisation ID/);
    expect(reasons[9]).toMatch(/same@twice.example appears on rows 9, 10/);
    expect(reasons[10]).toMatch(/rows 9, 10/);
    expect(reasons[11]).toMatch(/not a valid email address/);
    expect(reasons[11]).toMatch(/language "it"/);
    expect(await platform.models.Institution.countDocuments()).toBe(0);
    expect(await platform.models.Contact.countDocuments()).toBe(0);
  });

  it('through the web: upload, preview, confirm; re-importing the same file changes nothing', async () => {
    const { agent, csrf, user } = await signIn(platform, 'coordinator');
    const preview = await agent.post('/admin/institutions/import').type('form').send({ _csrf: csrf, text: FILE, fileName: 'contacts.csv' }).expect(200);
    expect(preview.text).toMatch(/<strong>3<\/strong> to create/);
    expect(preview.text).toMatch(/<strong>7<\/strong> rejected/);
    expect(preview.text).toContain('Lycée des métiers; Jean Monnet');
    const previewId = /name="previewId" value="([^"]+)"/.exec(preview.text)![1];
    expect(await platform.models.Contact.countDocuments()).toBe(0);

    await agent.post('/admin/institutions/import/commit').type('form').send({ _csrf: csrf, previewId }).expect(200);
    const institutions = await platform.models.Institution.find().sort({ name: 1 }).lean();
    expect(institutions.map((i) => [i.name, i.country, i.type, i.erasmusId ?? null])).toEqual([
      ['Berufskolleg Nord', 'DE', 'ivet_dual', null],
      ['Lycée des métiers; Jean Monnet', 'FR', 'ivet_school', 'E10000001'],
    ]);
    const contacts = await platform.models.Contact.find().sort({ email: 1 }).lean();
    expect(contacts.map((c) => [c.email, c.language])).toEqual([
      ['anna@bk-nord.example', 'de'],
      ['claire@lycee.example', 'fr'],
      ['marc@lycee.example', 'en'],
    ]);
    const audit = await platform.models.AuditEntry.findOne({ action: 'import.commit' }).lean();
    expect(audit?.actor).toBe(user.email);
    expect(audit?.target).toBe('contacts.csv');

    // The same confirmation a second time is refused.
    const again = await agent.post('/admin/institutions/import/commit').type('form').send({ _csrf: csrf, previewId });
    expect(again.status).toBe(409);

    platform.clock.advance(3600_000);
    const snapshot = JSON.stringify([await platform.models.Institution.find().sort({ _id: 1 }).lean(), await platform.models.Contact.find().sort({ _id: 1 }).lean()]);
    const second = await agent.post('/admin/institutions/import').type('form').send({ _csrf: csrf, text: FILE }).expect(200);
    expect(second.text).toMatch(/<strong>0<\/strong> to create/);
    expect(second.text).toMatch(/<strong>3<\/strong> unchanged/);
    expect(second.text).toContain('Nothing would change');
    const plan = await importContacts(deps(), FILE, { commit: true, actor: 'test' });
    expect(plan.counts).toMatchObject({ create: 0, update: 0, unchanged: 3 });
    const after = JSON.stringify([await platform.models.Institution.find().sort({ _id: 1 }).lean(), await platform.models.Contact.find().sort({ _id: 1 }).lean()]);
    expect(after).toBe(snapshot);
  });

  it('a changed contact name and a second contact for a known institution are an update and a creation', async () => {
    const base = 'institution_name,country,institution_type,erasmus_id,contact_name,email,language\n';
    await importContacts(deps(), `${base}Omnia,FI,ivet_school,,Mikko V,mikko@omnia.example,en\n`, { commit: true, actor: 'test' });
    const before = await platform.models.Contact.findOne({ email: 'mikko@omnia.example' }).lean();
    platform.clock.advance(60_000);
    const plan = await importContacts(
      deps(),
      `${base}Omnia,FI,ivet_school,,Mikko Virtanen,mikko@omnia.example,en\nOmnia,FI,ivet_school,,Liisa K,liisa@omnia.example,en\n`,
      { commit: true, actor: 'test' },
    );
    expect(plan.rows.map((r) => [r.row, r.action])).toEqual([[2, 'update'], [3, 'create']]);
    const after = await platform.models.Contact.findOne({ email: 'mikko@omnia.example' }).lean();
    expect(after?.name).toBe('Mikko Virtanen');
    expect(after?.updatedAt?.getTime()).toBeGreaterThan(before!.updatedAt!.getTime());
    const omnia = await platform.models.Institution.find({ name: 'Omnia' }).lean();
    expect(omnia).toHaveLength(1);
    expect(await platform.models.Contact.countDocuments({ institution: omnia[0]!._id })).toBe(2);
  });

  it('confirming the same preview twice at once imports it once', async () => {
    const { agent, csrf } = await signIn(platform, 'coordinator');
    const text = 'institution_name,country,institution_type,erasmus_id,contact_name,email,language\nRace School,IT,ivet_school,,Luca,luca@race.example,en\n';
    const preview = await agent.post('/admin/institutions/import').type('form').send({ _csrf: csrf, text }).expect(200);
    const previewId = /name="previewId" value="([^"]+)"/.exec(preview.text)![1];
    const commitsBefore = await platform.models.AuditEntry.countDocuments({ action: 'import.commit' });
    const results = await Promise.all([0, 1].map(() => agent.post('/admin/institutions/import/commit').type('form').send({ _csrf: csrf, previewId })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    expect(await platform.models.AuditEntry.countDocuments({ action: 'import.commit' })).toBe(commitsBefore + 1);
    expect(await platform.models.Contact.countDocuments({ email: 'luca@race.example' })).toBe(1);
  });

  it('a file without a required column is refused as a whole with the missing column named, on the import page, ready for the next file', async () => {
    const { agent, csrf } = await signIn(platform, 'coordinator');
    const response = await agent.post('/admin/institutions/import').type('form').send({ _csrf: csrf, text: 'institution_name,country\nX,DE\n' });
    expect(response.status).toBe(400);
    expect(response.headers['content-type']).toMatch(/text\/html/);
    expect(response.text).toContain('<div class="form-error" role="alert"><p>The file was not imported:</p>');
    expect(response.text).toMatch(/institution_type, contact_name, email/);
    expect(response.text).toContain('id="import-form"');
    const empty = await agent.post('/admin/institutions/import').type('form').send({ _csrf: csrf, text: '  ' }).expect(400);
    expect(empty.text).toContain('Please choose a CSV file or paste its contents.');
  });

  it('a file saved in Windows-1252 (Excel\'s plain CSV) is refused with the line and how to save it as UTF-8, through the web and the tool, and nothing is stored', async () => {
    const text = 'institution_name;country;institution_type;contact_name;email;language\r\nBerufskolleg Köln;DE;ivet_dual;Jörg Maier;joerg@bk-koeln.example;de\r\n';
    const bytes = Buffer.from(text, 'latin1');
    // The browser's reader and the tool both decode the file as UTF-8, as the page asks for it.
    const { agent, csrf } = await signIn(platform, 'coordinator');
    const response = await agent.post('/admin/institutions/import').type('form').send({ _csrf: csrf, text: new TextDecoder('utf-8').decode(bytes) });
    expect(response.status).toBe(400);
    expect(response.text).toContain('The file is not in UTF-8: line 2 has characters that cannot be read (shown as \uFFFD: &quot;Berufskolleg K\uFFFDln;DE;');
    expect(response.text).toContain('&quot;CSV UTF-8 (comma delimited)&quot;');
    const file = join(mkdtempSync(join(tmpdir(), 'import-1252-')), 'contacts.csv');
    writeFileSync(file, bytes);
    const lines: string[] = [];
    const run = runCommand(['import', '--file', file, '--commit'], { models: platform.models, now: platform.clock.now, tokenKey: platform.tokenKey, publicUrl: '', print: (l) => lines.push(l) });
    await expect(run).rejects.toThrow(/The file is not in UTF-8: line 2/);
    expect(await platform.models.Institution.exists({ name: /Berufskolleg K/ })).toBeNull();
    expect(await platform.models.Contact.exists({ email: 'joerg@bk-koeln.example' })).toBeNull();
    // The same file saved as UTF-8 is imported with its accents.
    writeFileSync(file, text);
    await runCommand(['import', '--file', file, '--commit'], { models: platform.models, now: platform.clock.now, tokenKey: platform.tokenKey, publicUrl: '', print: (l) => lines.push(l) });
    expect((await platform.models.Contact.findOne({ email: 'joerg@bk-koeln.example' }).lean())?.name).toBe('Jörg Maier');
  });

  it('a country may be written by its name, in English, French, German or its own language, with or without accents; a name it does not know says what to write', async () => {
    const file = [
      'institution_name,country,institution_type,contact_name,email',
      'Berufsschule Graz,Österreich,ivet_school,Eva K,eva@graz.names.example',
      'HTL Linz,osterreich,ivet_school,Karl M,karl@linz.names.example',
      'Lycée Lyon,Allemagne,ivet_school,Paul D,paul@lyon.names.example',
      'Athens VET,Ελλάδα,ivet_school,Nikos P,nikos@athens.names.example',
      'Madrid FP,España,ivet_school,Ana G,ana@madrid.names.example',
      'Ankara MEB,Turkey,ivet_school,Ali Y,ali@ankara.names.example',
      'Sarajevo,Bosnia & Herzegovina,ivet_school,Amra H,amra@sarajevo.names.example',
      'Nowhere College,Germny,ivet_school,John Doe,john@nowhere.names.example',
    ].join('\n');
    const plan = await importContacts(deps(), file, { commit: true, actor: 'test' });
    const byRow = Object.fromEntries(plan.rows.map((r) => [r.row, r]));
    expect(plan.rows.filter((r) => r.action === 'create').map((r) => r.fields?.Country)).toEqual(['AT (Austria)', 'AT (Austria)', 'DE (Germany)', 'EL (Greece)', 'ES (Spain)', 'TR (Türkiye)', 'BA (Bosnia & Herzegovina)']);
    expect(byRow[9]!.action).toBe('reject');
    expect(byRow[9]!.reason).toContain('country "Germny" is not one of the survey\'s countries (write its two-letter code, e.g. DE, Greece as EL; its name, e.g. Germany or Deutschland; or "other")');
    const names = { 'Berufsschule Graz': 'AT', 'HTL Linz': 'AT', 'Lycée Lyon': 'DE', 'Athens VET': 'EL', 'Madrid FP': 'ES', 'Ankara MEB': 'TR', Sarajevo: 'BA' };
    const stored = await platform.models.Institution.find({ name: { $in: Object.keys(names) } }, { name: 1, country: 1 }).lean();
    expect(Object.fromEntries(stored.map((i) => [i.name, i.country]))).toEqual(names);
    // Left as the other tests found the database.
    await platform.models.Contact.deleteMany({ institution: { $in: stored.map((i) => i._id) } });
    await platform.models.Institution.deleteMany({ name: { $in: Object.keys(names) } });
  });

  it('rows are numbered as a spreadsheet shows them, past empty lines and cells of several lines; a quote inside a cell is text', async () => {
    const file = [
      'institution_name,country,institution_type,contact_name,email',
      'Quoted "Nord" School,AT,ivet_school,Eva K,eva@rows.example',
      '"Two, ""lines""',
      'School",AT,ivet_school,Karl M,karl@rows.example',
      '',
      '  ',
      'No Country School,,ivet_school,Paul D,paul@rows.example',
    ].join('\r\n');
    const plan = await importContacts(deps(), file, { commit: false, actor: 'test' });
    expect(plan.rows.map((r) => [r.row, r.action, r.institutionName])).toEqual([
      [2, 'create', 'Quoted "Nord" School'],
      [3, 'create', 'Two, "lines"\r\nSchool'],
      [6, 'reject', 'No Country School'],
    ]);
  });

  it('a quoted cell left open is named by the line where it opens, on the page and by the tool, and nothing is stored', async () => {
    const lines = ['institution_name,country,institution_type,contact_name,email', 'A School,AT,ivet_school,Eva K,eva@open.example', '"B School,AT,ivet_school,Karl M,karl@open.example'];
    for (let i = 0; i < 20; i++) lines.push(`School ${i},AT,ivet_school,C ${i},c${i}@open.example`);
    const file = lines.join('\n');
    const message = 'Line 3 opens a quoted cell that is never closed, so the rest of the file would be read as that one cell.';
    const { agent, csrf } = await signIn(platform, 'coordinator');
    const response = await agent.post('/admin/institutions/import').type('form').send({ _csrf: csrf, text: file, fileName: 'contacts.csv' });
    expect(response.status).toBe(400);
    expect(response.text).toContain(message);
    expect(response.text).toContain('Line 3 reads: &quot;B School,AT,ivet_school');
    const dir = mkdtempSync(join(tmpdir(), 'open-quote-'));
    writeFileSync(join(dir, 'contacts.csv'), file);
    const run = runCommand(['import', '--file', join(dir, 'contacts.csv'), '--commit'], { models: platform.models, now: platform.clock.now, tokenKey: platform.tokenKey, publicUrl: '', print: () => undefined });
    await expect(run).rejects.toThrow(message);
    expect(await platform.models.Institution.countDocuments({ name: { $in: ['A School', 'School 0'] } })).toBe(0);
  });

  it('a workbook (.xlsx) chosen in place of its CSV is named as such, with how to save the CSV, and nothing is stored', async () => {
    // The start of an .xlsx file (a zip archive), as the page's reader decodes it.
    const bytes = Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x06, 0x00]), Buffer.from('[Content_Types].xml'), Buffer.from([0xb5, 0x55, 0xcb, 0x6e, 0xc2, 0x30])]);
    const { agent, csrf } = await signIn(platform, 'coordinator');
    const previews = await platform.models.ImportPreview.countDocuments();
    const response = await agent.post('/admin/institutions/import').type('form').send({ _csrf: csrf, text: new TextDecoder('utf-8').decode(bytes), fileName: 'contacts.xlsx' });
    expect(response.status).toBe(400);
    expect(response.text).toContain('This is a spreadsheet workbook (.xlsx or .ods), not a CSV file. Nothing was imported.');
    expect(response.text).toContain('&quot;CSV UTF-8 (comma delimited)&quot;');
    expect(await platform.models.ImportPreview.countDocuments()).toBe(previews);
  });

  it('a tab-separated file (Excel\'s "Text (Tab delimited)") is read like a CSV', async () => {
    const file = ['institution_name\tcountry\tinstitution_type\tcontact_name\temail', 'Tab School, Linz\tAT\tivet_school\tTara Tab\ttara@tab.example'].join('\r\n');
    const plan = await importContacts(deps(), file, { commit: false, actor: 'test' });
    expect(plan.rows.map((r) => [r.row, r.action, r.institutionName, r.email])).toEqual([[2, 'create', 'Tab School, Linz', 'tara@tab.example']]);
  });

  it('an import without the CSRF token is refused and writes nothing', async () => {
    const { agent } = await signIn(platform, 'coordinator');
    const previews = await platform.models.ImportPreview.countDocuments();
    const response = await agent.post('/admin/institutions/import').type('form').send({ text: FILE });
    expect(response.status).toBe(403);
    expect(await platform.models.ImportPreview.countDocuments()).toBe(previews);
  });

  it('a reviewer can neither see the institutions nor import', async () => {
    const { agent, csrf } = await signIn(platform, 'reviewer');
    expect((await agent.get('/admin/institutions')).status).toBe(403);
    expect((await agent.get('/admin/institutions/export.csv')).status).toBe(403);
    expect((await agent.post('/admin/institutions/import').type('form').send({ _csrf: csrf, text: FILE })).status).toBe(403);
  });
});

describe('the institutions list', () => {
  it('searches by name or email, filters by country, pages, exports, and deactivates', async () => {
    const base = 'institution_name,country,institution_type,erasmus_id,contact_name,email,language\n';
    const rows = Array.from({ length: 55 }, (_, i) => `Paged School ${String(i).padStart(2, '0')},AT,cvet_adult,,C ${i},c${i}@paged.example,de`).join('\n');
    await importContacts(deps(), `${base}${rows}\n"<script>alert(1)</script> Academy",BE,post_secondary,,"=cmd",x@evil.example,en\n`, { commit: true, actor: 'test' });
    const { agent, csrf } = await signIn(platform, 'coordinator');

    const page1 = await agent.get('/admin/institutions?country=AT').expect(200);
    expect(page1.text.match(/Paged School \d\d/g)).toHaveLength(50);
    expect(page1.text).toMatch(/href="\/admin\/institutions\?country&#x3D;AT&amp;page&#x3D;2">Next/);
    const page2 = await agent.get('/admin/institutions?country=AT&page=2').expect(200);
    expect(page2.text.match(/Paged School \d\d/g)).toHaveLength(5);
    expect(page2.text).toContain('Paged School 54');
    expect(page2.text).not.toContain('page&#x3D;3');

    const byEmail = await agent.get('/admin/institutions?q=c7%40paged').expect(200);
    expect(byEmail.text.match(/Paged School \d\d/g)).toEqual(['Paged School 07']);
    const byName = await agent.get(`/admin/institutions?q=${encodeURIComponent('<script>')}`).expect(200);
    expect(byName.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt; Academy');
    expect(byName.text).not.toContain('<script>alert(1)');
    // Pattern characters are searched literally, and a bad filter value is ignored rather than passed on.
    expect((await agent.get('/admin/institutions?q=.*&country[$ne]=AT').expect(200)).text).toContain('No institution matches.');

    const csv = await agent.get('/admin/institutions/export.csv?country=BE').expect(200);
    expect(csv.headers['content-type']).toMatch(/text\/csv/);
    expect(csv.text).toContain(`<script>alert(1)</script> Academy,BE (Belgium),Post-secondary VET provider,,'=cmd,x@evil.example,English,yes,yes,no`);

    const academy = await platform.models.Institution.findOne({ country: 'BE' }).lean();
    await agent.post(`/admin/institutions/${academy!._id}/active`).type('form').send({ _csrf: csrf, active: 'false' }).expect(303);
    expect((await platform.models.Institution.findById(academy!._id).lean())?.active).toBe(false);
    const contact = await platform.models.Contact.findOne({ email: 'x@evil.example' }).lean();
    await agent.post(`/admin/contacts/${contact!._id}/active`).type('form').send({ _csrf: csrf, active: 'false' }).expect(303);
    expect((await platform.models.Contact.findById(contact!._id).lean())?.active).toBe(false);
    await agent.post(`/admin/contacts/${contact!._id}`).type('form').send({ _csrf: csrf, name: 'Real Name', email: 'Real@Evil.example', language: 'fr' }).expect(303);
    expect(await platform.models.Contact.findById(contact!._id).lean()).toMatchObject({ name: 'Real Name', email: 'real@evil.example', language: 'fr' });
    expect(await platform.models.AuditEntry.countDocuments({ action: { $in: ['institution.deactivate', 'contact.deactivate', 'contact.update', 'export.institutions'] } })).toBe(4);
  });
});
