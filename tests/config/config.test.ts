import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkPlatformConfig, ConfigError, parseConfig, smtpTimeouts } from '../../server/config.ts';

/** A complete production environment; each test changes what it is about. */
const production = (env: Record<string, string | undefined> = {}) => ({
  NODE_ENV: 'production',
  MONGODB_URI: 'mongodb://db.internal:27017/vet-mobility',
  PUBLIC_URL: 'https://survey.example.org',
  TRUST_PROXY: 'loopback',
  SESSION_SECRET: randomBytes(32).toString('base64url'),
  TOKEN_KEY: randomBytes(32).toString('hex'),
  INSTITUTION_TAG_KEY: randomBytes(32).toString('hex'),
  SMTP_URL: 'smtps://user:pass@mail.example.org:465',
  ...env,
});

function errorOf(run: () => unknown): Error | undefined {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  return undefined;
}

describe('TRUST_PROXY', () => {
  it.each([
    ['loopback', 'loopback'],
    ['1', 1],
    ['2', 2],
    ['true', true],
    ['false', false],
    ['10.0.0.5', '10.0.0.5'],
    ['loopback, 10.0.0.0/8,192.168.1.0/24', 'loopback,10.0.0.0/8,192.168.1.0/24'],
    ['uniquelocal', 'uniquelocal'],
    ['::1,fd00::/8', '::1,fd00::/8'],
  ])('%s is accepted as what express trusts (%s)', (value, expected) => {
    expect(parseConfig({ TRUST_PROXY: value }).TRUST_PROXY).toBe(expected);
  });

  it('the protection width of disclosure control is a whole number of at least 1, 1 when unset', () => {
    expect(parseConfig({}).DISCLOSURE_MIN_RANGE).toBe(1);
    expect(parseConfig({ DISCLOSURE_MIN_RANGE: '3' }).DISCLOSURE_MIN_RANGE).toBe(3);
    for (const value of ['0', '-2', '1.5', 'two']) {
      const error = errorOf(() => parseConfig({ DISCLOSURE_MIN_RANGE: value }));
      expect(error).toBeInstanceOf(ConfigError);
      expect(error?.message).toMatch(/DISCLOSURE_MIN_RANGE: /);
    }
  });

  it('solving answer counts by linear programming is on up to 6,000 open quantities when unset, else a whole number of them up to 100,000 (0: off)', () => {
    expect(parseConfig({}).DISCLOSURE_SOLVE_UNKNOWNS).toBe(6000);
    expect(parseConfig({ DISCLOSURE_SOLVE_UNKNOWNS: '0' }).DISCLOSURE_SOLVE_UNKNOWNS).toBe(0);
    expect(parseConfig({ DISCLOSURE_SOLVE_UNKNOWNS: '6000' }).DISCLOSURE_SOLVE_UNKNOWNS).toBe(6000);
    for (const value of ['-1', '1.5', 'many', '100001']) {
      const error = errorOf(() => parseConfig({ DISCLOSURE_SOLVE_UNKNOWNS: value }));
      expect(error).toBeInstanceOf(ConfigError);
      expect(error?.message).toMatch(/DISCLOSURE_SOLVE_UNKNOWNS: /);
    }
  });

  it('when unset, no proxy is trusted', () => {
    expect(parseConfig({}).TRUST_PROXY).toBeUndefined();
  });

  it.each(['yes', 'localhost', '0', '-1', '1.5', '300.1.1.1', '10.0.0.0/33', '10.0.0.1,', 'loopback;10.0.0.1', '::1/129', ''])(
    '%j is refused with a message naming TRUST_PROXY',
    (value) => {
      const error = errorOf(() => parseConfig({ TRUST_PROXY: value }));
      expect(error).toBeInstanceOf(ConfigError);
      expect(error?.message).toMatch(/TRUST_PROXY: must be the number of proxies/);
    },
  );

  it('production with an https PUBLIC_URL and no trusted proxy refuses to start, saying what to set', () => {
    for (const value of [undefined, 'false']) {
      const error = errorOf(() => checkPlatformConfig(parseConfig(production({ TRUST_PROXY: value }))));
      expect(error).toBeInstanceOf(ConfigError);
      expect(error?.message).toMatch(/TRUST_PROXY: PUBLIC_URL is https/);
      expect(error?.message).toMatch(/loopback/);
    }
  });

  it('production with an https PUBLIC_URL and a trusted proxy starts without warnings', () => {
    expect(checkPlatformConfig(parseConfig(production()))).toEqual([]);
  });

  it('outside production, an https PUBLIC_URL without a trusted proxy is a warning', () => {
    const warnings = checkPlatformConfig(parseConfig({ PUBLIC_URL: 'https://survey.example.org' }));
    expect(warnings.join('\n')).toMatch(/TRUST_PROXY/);
  });
});

describe('mail in production', () => {
  it('without SMTP_URL the platform refuses to start, naming SMTP_URL and MAIL_CATCHER', () => {
    const error = errorOf(() => checkPlatformConfig(parseConfig(production({ SMTP_URL: undefined }))));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error?.message).toMatch(/SMTP_URL: required in production/);
    expect(error?.message).toMatch(/MAIL_CATCHER=1/);
  });

  it('without SMTP_URL but with MAIL_CATCHER=1 it starts and keeps the emails in the catcher', () => {
    const config = parseConfig(production({ SMTP_URL: undefined, MAIL_CATCHER: '1' }));
    expect(config.MAIL_CATCHER).toBe(true);
    expect(checkPlatformConfig(config)).toEqual([]);
  });

  it('SMTP_URL and MAIL_CATCHER=1 together are refused as contradictory', () => {
    expect(() => checkPlatformConfig(parseConfig(production({ MAIL_CATCHER: '1' })))).toThrow(/MAIL_CATCHER: set either SMTP_URL/);
  });

  it('outside production, no SMTP_URL still means the local mail catcher', () => {
    expect(checkPlatformConfig(parseConfig({}))).toEqual([]);
  });

  it('a bad MAIL_CATCHER value is refused with a message naming it', () => {
    expect(() => parseConfig({ MAIL_CATCHER: 'yes please' })).toThrow(/MAIL_CATCHER/);
  });

  it('the command-line tool may run in production without SMTP_URL (it only queues then)', () => {
    expect(parseConfig(production({ SMTP_URL: undefined })).SMTP_URL).toBeUndefined();
  });
});

describe('an http PUBLIC_URL in production', () => {
  it('starts with a warning that one-click unsubscribe and the Secure cookie need https', () => {
    const warnings = checkPlatformConfig(parseConfig(production({ PUBLIC_URL: 'http://survey.example.org', TRUST_PROXY: undefined })));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/PUBLIC_URL is http:\/\//);
    expect(warnings[0]).toMatch(/RFC 8058/);
    expect(warnings[0]).toMatch(/Secure/);
  });
});

describe('ENGINE_PORT', () => {
  it('is a port for the embedded engine; unset means any free port', () => {
    expect(parseConfig({ ENGINE_PORT: '27018' }).ENGINE_PORT).toBe(27018);
    expect(parseConfig({}).ENGINE_PORT).toBe(0);
  });

  it.each(['27017x', '70000', '-1'])('%s is refused with a message naming ENGINE_PORT', (value) => {
    expect(() => parseConfig({ ENGINE_PORT: value })).toThrow(/ENGINE_PORT/);
  });
});

describe('the waits for the relay', () => {
  it('by default wait 10 minutes until the relay has answered, then 10 times its slowest recent answer, at least a minute', () => {
    expect(smtpTimeouts(parseConfig({}))).toEqual({ connectMs: 30_000, replyMs: 600_000, replyMinMs: 60_000, replyFactor: 10 });
  });

  it('are set by SEND_REPLY_TIMEOUT_SECONDS, SEND_REPLY_TIMEOUT_MIN_SECONDS and SEND_REPLY_TIMEOUT_FACTOR', () => {
    const config = parseConfig({ SEND_REPLY_TIMEOUT_SECONDS: '1200', SEND_REPLY_TIMEOUT_MIN_SECONDS: '30', SEND_REPLY_TIMEOUT_FACTOR: '4.5' });
    expect(smtpTimeouts(config)).toEqual({ connectMs: 30_000, replyMs: 1_200_000, replyMinMs: 30_000, replyFactor: 4.5 });
  });

  it('a SEND_REPLY_TIMEOUT_SECONDS below a minute, set before the shortest wait existed, still starts: the shortest wait is then that', () => {
    expect(smtpTimeouts(parseConfig({ SEND_REPLY_TIMEOUT_SECONDS: '30' }))).toEqual({ connectMs: 30_000, replyMs: 30_000, replyMinMs: 30_000, replyFactor: 10 });
  });

  it('a shortest wait longer than the longest is refused, naming both variables', () => {
    const error = errorOf(() => parseConfig({ SEND_REPLY_TIMEOUT_SECONDS: '120', SEND_REPLY_TIMEOUT_MIN_SECONDS: '300' }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error?.message).toMatch(/SEND_REPLY_TIMEOUT_MIN_SECONDS: .*SEND_REPLY_TIMEOUT_SECONDS/);
  });

  it.each([['SEND_REPLY_TIMEOUT_FACTOR', '0.5'], ['SEND_REPLY_TIMEOUT_MIN_SECONDS', '0'], ['SEND_REPLY_TIMEOUT_FACTOR', 'ten']])('%s=%s is refused with a message naming it', (name, value) => {
    expect(() => parseConfig({ [name]: value })).toThrow(new RegExp(name));
  });
});

describe('INSTITUTION_TAG_KEY', () => {
  it('production without it refuses to start, saying how to make one and to keep it apart from the database', () => {
    const error = errorOf(() => parseConfig(production({ INSTITUTION_TAG_KEY: undefined })));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error?.message).toMatch(/INSTITUTION_TAG_KEY: required in production \(openssl rand -hex 32; back it up apart from the database/);
  });

  it.each(['ab', 'x'.repeat(64), 'AB'.repeat(32)])('%j is refused with a message naming it and how to make one', (value) => {
    expect(errorOf(() => parseConfig({ INSTITUTION_TAG_KEY: value }))?.message).toMatch(/INSTITUTION_TAG_KEY: must be 64 hexadecimal characters \(openssl rand -hex 32\)/);
  });

  it('outside production it may be unset (a key is kept under DATA_DIR)', () => {
    expect(parseConfig({}).INSTITUTION_TAG_KEY).toBeUndefined();
  });
});
