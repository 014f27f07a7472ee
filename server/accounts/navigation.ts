import type { Role } from './user.model.ts';

/**
 * The admin navigation shown in the header once signed in. Each feature adds
 * its own line; a link shows only to the roles listed.
 */
export const ADMIN_NAV: ReadonlyArray<{ href: string; label: string; roles: readonly Role[] }> = [
  { href: '/admin', label: 'Dashboard', roles: ['coordinator', 'reviewer'] },
  { href: '/evidence', label: 'Evidence', roles: ['coordinator', 'reviewer'] },
  { href: '/admin/institutions', label: 'Institutions', roles: ['coordinator'] },
  { href: '/admin/campaigns', label: 'Campaigns', roles: ['coordinator'] },
  { href: '/admin/suppressions', label: 'Suppressions', roles: ['coordinator'] },
  { href: '/admin/privacy', label: 'Personal data', roles: ['coordinator'] },
  { href: '/admin/users', label: 'Users', roles: ['coordinator'] },
  { href: '/admin/audit', label: 'Audit log', roles: ['coordinator'] },
  { href: '/admin/password', label: 'Your password', roles: ['coordinator', 'reviewer'] },
];

export function navigationFor(role: Role, currentPath: string) {
  return ADMIN_NAV.filter((item) => item.roles.includes(role)).map((item) => ({
    href: item.href,
    label: item.label,
    current: item.href === '/admin' ? currentPath === '/admin' : currentPath === item.href || currentPath.startsWith(`${item.href}/`),
  }));
}
