import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
const HEADER = 'institution_name,country,institution_type,erasmus_id,contact_name,email,language,tags';

/** The page's text without tags, entities decoded, blanks collapsed. */
function textOf(html: string): string {
  return html
    .replace(/<[^>]+>/g, ' ')
    .replace(/&#x3D;/g, '=')
    .replace(/&#x27;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&gt;/g, '>')
    .replace(/&lt;/g, '<')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');
}

describe('the import preview and its special rows', () => {
  it('shows every column of a new row, with the type and country in words', async () => {
    const { agent, csrf } = await signIn(platform, 'coordinator');
    const text = `${HEADER}\nKauno technikos kolegija,LT,cvet_adult,E10203040,Rūta Kazlauskienė,ruta@ktk.example,en,pilot|baltic\n`;
    const preview = await agent.post('/admin/institutions/import').type('form').send({ _csrf: csrf, text }).expect(200);
    const shown = textOf(preview.text);
    for (const heading of ['Country', 'Type', 'Erasmus+ ID', 'Contact', 'Email', 'Language', 'Tags']) expect(shown).toContain(heading);
    expect(shown).toContain('Kauno technikos kolegija');
    expect(shown).toContain('LT (Lithuania)');
    expect(shown).toContain('Continuing VET or adult education provider');
    expect(shown).toContain('E10203040');
    expect(shown).toContain('Rūta Kazlauskienė');
    expect(shown).toContain('ruta@ktk.example');
    expect(shown).toMatch(/baltic, pilot/);
  });

  it('says for a changed row what changes from what to what', async () => {
    await importContacts(deps(), `${HEADER}\nOmnia,FI,ivet_school,,Mikko V,mikko@omnia.example,en,\n`, { commit: true, actor: 'test' });
    const changed = `${HEADER}\nOmnia,FI,ivet_dual,,Mikko Virtanen,mikko@omnia.example,fr,nordic\n`;
    const plan = await importContacts(deps(), changed, { commit: false, actor: 'test' });
    expect(plan.rows[0]!.action).toBe('update');
    expect(plan.rows[0]!.changes).toEqual([
      { field: 'Type', from: 'School-based initial VET', to: 'Dual or apprenticeship-based initial VET' },
      { field: 'Contact', from: 'Mikko V', to: 'Mikko Virtanen' },
      { field: 'Language', from: 'English', to: 'French' },
      { field: 'Tags', from: '(none)', to: 'nordic' },
    ]);
    const { agent, csrf } = await signIn(platform, 'coordinator');
    const preview = await agent.post('/admin/institutions/import').type('form').send({ _csrf: csrf, text: changed }).expect(200);
    const shown = textOf(preview.text);
    expect(shown).toMatch(/Contact: Mikko V → Mikko Virtanen/);
    expect(shown).toMatch(/Type: School-based initial VET → Dual or apprenticeship-based initial VET/);
  });

  it('imports an exact duplicate row once, with a note; the same address with other details is still refused', async () => {
    const row = 'Lycée Jean Moulin,FR,ivet_school,,Claire Dubois,claire@moulin.example,fr,';
    const text = `${HEADER}\n${row}\n${row}\nOther School,FR,ivet_school,,Claire D,dup@moulin.example,fr,\nOther School,FR,ivet_school,,Claire E,dup@moulin.example,fr,\n`;
    const plan = await importContacts(deps(), text, { commit: true, actor: 'test' });
    expect(plan.rows.map((r) => [r.row, r.action])).toEqual([
      [2, 'create'],
      [3, 'duplicate'],
      [4, 'reject'],
      [5, 'reject'],
    ]);
    expect(plan.rows[1]!.reason).toMatch(/the same as row 2: imported once/);
    expect(plan.counts).toMatchObject({ create: 1, duplicate: 1, reject: 2 });
    expect(await platform.models.Contact.countDocuments({ email: 'claire@moulin.example' })).toBe(1);
    expect(await platform.models.Contact.countDocuments({ email: 'dup@moulin.example' })).toBe(0);

    const { agent, csrf } = await signIn(platform, 'coordinator');
    const preview = await agent.post('/admin/institutions/import').type('form').send({ _csrf: csrf, text: `${HEADER}\nNew Lycée,FR,ivet_school,,Paul,paul@new.example,fr,\nNew Lycée,FR,ivet_school,,Paul,paul@new.example,fr,\n` }).expect(200);
    const shown = textOf(preview.text);
    expect(shown).toMatch(/1 duplicate/);
    expect(shown).toMatch(/the same as row 2: imported once/);
  });

  it("accepts the survey's other country code, written in any case", async () => {
    const text = `${HEADER}\nSchool abroad,other,ivet_school,,Ana,ana@abroad.example,en,\nSchool far,OTHER,ivet_school,,Ben,ben@far.example,en,\n`;
    const plan = await importContacts(deps(), text, { commit: true, actor: 'test' });
    expect(plan.rows.map((r) => r.action)).toEqual(['create', 'create']);
    const stored = await platform.models.Institution.find({ name: { $in: ['School abroad', 'School far'] } }).lean();
    expect(stored.map((i) => i.country)).toEqual(['other', 'other']);
  });
});
