import nodemailer, { type Transporter } from 'nodemailer';

export interface TransportSettings {
  /** smtp://user:pass@host:port or smtps://... */
  url: string;
  ratePerSecond: number;
  maxConnections: number;
  /** Every SMTP wait (connect, greeting, socket) ends well within this, so a live send never outlasts its lease. */
  leaseMs: number;
}

/**
 * A pooled SMTP transport: a few connections kept open and reused, and at
 * most `ratePerSecond` messages handed over per second, so a large campaign
 * neither floods the relay nor opens a connection per message.
 */
export function createMailTransport(settings: TransportSettings): Transporter {
  const timeout = Math.max(1000, Math.min(60_000, Math.floor(settings.leaseMs / 3)));
  return nodemailer.createTransport({
    url: settings.url,
    pool: true,
    maxConnections: settings.maxConnections,
    maxMessages: 1000,
    rateDelta: 1000,
    rateLimit: settings.ratePerSecond,
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
  } as Parameters<typeof nodemailer.createTransport>[0]);
}
