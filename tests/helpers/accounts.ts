import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { createUser, type SignedInUser } from '../../server/accounts/user.service.ts';
import type { Role } from '../../server/accounts/user.model.ts';
import type { TestPlatform } from './test-platform.ts';

export type SignedInAgent = Awaited<ReturnType<typeof signIn>>;

/**
 * A browser with a signed-in session: the user is created through the
 * service, then signs in over HTTP like a person would. Returns the agent
 * (it keeps the cookie) and the session's CSRF token to send with forms.
 */
export async function signIn(platform: TestPlatform, role: Role, options: { email?: string; name?: string } = {}) {
  const password = randomBytes(12).toString('base64url');
  const email = options.email ?? `${role}-${randomBytes(4).toString('hex')}@board.example`;
  const user: SignedInUser = await createUser(
    { models: platform.models, now: platform.clock.now },
    { name: options.name ?? `Test ${role}`, email, role, password },
    'test setup',
  );
  const agent = request.agent(platform.app);
  const loginPage = await agent.get('/login').expect(200);
  const response = await agent.post('/login').type('form').send({ email, password, _csrf: csrfOf(loginPage.text) });
  if (response.status !== 303) throw new Error(`sign-in failed with ${response.status}: ${response.text.slice(0, 300)}`);
  // Signing in starts a new session with new CSRF tokens: read the current one.
  const csrf = csrfOf((await agent.get('/admin').expect(200)).text);
  return { agent, csrf, user, password };
}

/** The CSRF token a page embeds in its forms. */
export function csrfOf(html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!match) throw new Error('the page has no CSRF token');
  return match[1]!;
}
