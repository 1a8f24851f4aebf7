/**
 * The renewal of this replica's blocked clients' lease (--block-lease-ms), for both applications
 * (the embedded store's sessions, a program's copies): while this replica has a client blocked,
 * it puts its run in the log at once and then every fifth of the lease, so the other replicas
 * do not take its blocked clients for a dead replica's. Local timing only: what the log holds
 * decides, on every replica alike.
 */
const RENEWALS_PER_LEASE = 5;

export class LeaseRenewal {
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly leaseMs: number;
  /** Whether this replica still has a client blocked. */
  private readonly anyBlockedHere: () => boolean;
  /** Put this replica's run in the log (AppHooks.renewLease). */
  private readonly renew: () => void;

  constructor(leaseMs: number, anyBlockedHere: () => boolean, renew: () => void) {
    this.leaseMs = leaseMs;
    this.anyBlockedHere = anyBlockedHere;
    this.renew = renew;
  }

  /** A client of this replica blocked: renew now (the others may have applied the block long ago), then on a timer until none is left. */
  arm(): void {
    if (this.timer !== null) return;
    this.renew();
    this.timer = setInterval(
      () => {
        if (this.anyBlockedHere()) this.renew();
        else this.stop();
      },
      Math.max(1, Math.floor(this.leaseMs / RENEWALS_PER_LEASE)),
    );
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
