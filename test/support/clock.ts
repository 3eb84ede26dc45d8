/**
 * A clock a test moves by hand, for the claims, leases and backoffs of the state machine and the
 * dispatcher: a lease of a minute ends when the test says so, without a minute's wait. It starts at the
 * real time, so the database's own now() (which the activities still use) never runs ahead of it.
 */
export class ManualClock {
  private at = Date.now();

  /** The current time; pass `clock.now` as a dispatcher's clock. */
  readonly now = (): Date => new Date(this.at);

  advance(ms: number): Date {
    this.at += ms;
    return this.now();
  }
}
