/**
 * The last pull of a manifest, recorded at most once per UTC day so that a pull stays one read and rarely one write
 * (issue 11: "expire tags not pulled for a duration"). The pull path reads the record anyway; it writes only when
 * the `pulledAt` that read returned is from an earlier day:
 * ```
 *   pull 1 (day d)                          pull 2 (day d, concurrent)             pull 3 (day d, later)
 *   read: pulledAt = d-3                    read: pulledAt = d-3                   read: pulledAt = d ✓ no write
 *   recordPull if pulledAt < start(d) ✓     recordPull if pulledAt < start(d) ✗    (one write per record and day)
 * ```
 * The condition lives in the store's write (DynamoDB: UpdateItem's ConditionExpression), so racing pulls of a stale
 * record write once between them (the losers' conditional writes fail, nothing else happens). A write that fails or
 * is throttled never fails the pull: it is logged, and the next pull tries again.
 */

export const DAY_MS = 86_400_000;

/** Midnight UTC of the day `at` falls in (epoch ms). */
export function dayStart(at: number): number {
  return Math.floor(at / DAY_MS) * DAY_MS;
}

/** Whether a record read with `pulledAt` already holds a pull of the day of `now`: no write then. */
export function pulledToday(pulledAt: number | undefined, now: number): boolean {
  return pulledAt !== undefined && pulledAt >= dayStart(now);
}
