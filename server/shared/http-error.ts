/**
 * An expected failure: its status and message are fit to show to the user.
 * Anything else reaching the error middleware is a bug, logged and shown as a plain page.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Extra JSON for API clients, e.g. per-question validation messages. */
    readonly details?: Record<string, unknown>,
    /** A view to render instead of the generic error page, with its data. */
    readonly view?: { name: string; data: Record<string, unknown> },
  ) {
    super(message);
  }
}
