/**
 * Wakes whoever waits for "something changed" in this process: `next` is a
 * promise that resolves at the following `notify`, after which a new one is
 * handed out. Take `next` before looking at the state it guards, so that a
 * change in between is not missed.
 */
export class ChangeSignal {
  private resolve!: () => void;
  next!: Promise<void>;

  constructor() {
    this.renew();
  }

  notify(): void {
    this.resolve();
    this.renew();
  }

  private renew(): void {
    this.next = new Promise<void>((resolve) => (this.resolve = resolve));
  }
}
