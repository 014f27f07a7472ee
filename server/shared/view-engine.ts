import Handlebars from 'handlebars';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join, relative } from 'node:path';
import { formatDateTime, formatDay, formatLastDay } from './dates.ts';
import { plural } from './plural.ts';
import { LANGUAGES, type Language } from './languages.ts';

type Template = Handlebars.TemplateDelegate;

/**
 * Express view engine over Handlebars: views/<feature>/<name>.hbs rendered
 * into views/layouts/<layout>.hbs (default "main"), with every file under
 * views/partials/ as a partial. Handlebars escapes {{ }} output; {{{ }}} is
 * used only for HTML the platform itself produced.
 */
export function createViewEngine(viewsDir: string, settings: { cache: boolean }) {
  const cacheTemplates = settings.cache;
  const handlebars = Handlebars.create();
  const cache = new Map<string, Template>();

  const compile = (file: string): Template => {
    const cached = cacheTemplates ? cache.get(file) : undefined;
    if (cached) return cached;
    const template = handlebars.compile(readFileSync(file, 'utf8'), { strict: false });
    cache.set(file, template);
    return template;
  };

  const registerPartials = () => {
    const dir = join(viewsDir, 'partials');
    for (const file of walk(dir)) {
      const name = relative(dir, file).replace(/\.hbs$/, '');
      handlebars.registerPartial(name, readFileSync(file, 'utf8'));
    }
  };
  registerPartials();

  handlebars.registerHelper('json', (value: unknown) => {
    // Safe inside <script type="application/json">: no "</script>" can close it.
    const text = JSON.stringify(value ?? null).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
    return new Handlebars.SafeString(text);
  });
  handlebars.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  // Dates in one format everywhere (server/shared/dates.ts); the last helper argument is Handlebars' options.
  const language = (lang: unknown): Language => (LANGUAGES as readonly unknown[]).includes(lang) ? (lang as Language) : 'en';
  handlebars.registerHelper('formatDate', (value: unknown, lang: unknown) => (value instanceof Date ? formatDay(value, language(lang)) : ''));
  handlebars.registerHelper('formatDateTime', (value: unknown, lang: unknown) => (value instanceof Date ? formatDateTime(value, language(lang)) : ''));
  handlebars.registerHelper('formatLastDay', (value: unknown, lang: unknown) => (value instanceof Date ? formatLastDay(value, language(lang)) : ''));
  // "1 response", "2 responses"; pluralWord gives the word alone, for a count styled apart.
  handlebars.registerHelper('plural', (count: unknown, one: unknown, many: unknown) => plural(Number(count), String(one), String(many)));
  handlebars.registerHelper('pluralWord', (count: unknown, one: unknown, many: unknown) => (Number(count) === 1 ? one : many));

  function render(file: string, options: object, callback: (error: unknown, html?: string) => void) {
    const data = options as Record<string, unknown>;
    try {
      if (!cacheTemplates) registerPartials();
      const body = compile(file)(data);
      const layoutName = data.layout === false ? undefined : String(data.layout ?? 'main');
      const html = layoutName ? compile(join(viewsDir, 'layouts', `${layoutName}.hbs`))({ ...data, body }) : body;
      callback(null, html);
    } catch (error) {
      callback(error);
    }
  }

  return { render, handlebars };
}

function walk(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return walk(path);
    return extname(path) === '.hbs' && basename(path) !== '' ? [path] : [];
  });
}
