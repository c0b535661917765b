/**
 * Older/Newer paging over a newest-first list that only hands out "older" cursors (the audit
 * envelope's and the revision list's `next_cursor`, reference §7.2): the page shown is named by
 * the cursor it was fetched with, and "Newer" goes back along the cursors already followed. Pure
 * state transitions, so they are tested without a browser; no React, no HTTP.
 */

/** The cursors followed so far; the last one fetched the page on screen (none = the newest). */
export type CursorTrail = readonly string[];

/** The cursor of the page on screen, or undefined for the newest page. */
export function currentCursor(trail: CursorTrail): string | undefined {
  return trail.at(-1);
}

/** One page older: follow the page's `next_cursor`. */
export function older(trail: CursorTrail, nextCursor: string): CursorTrail {
  return [...trail, nextCursor];
}

/** One page newer: drop the last cursor followed. */
export function newer(trail: CursorTrail): CursorTrail {
  return trail.slice(0, -1);
}

/** 1 for the newest page. */
export function pageNumber(trail: CursorTrail): number {
  return trail.length + 1;
}
