/**
 * The Older/Newer buttons under a newest-first list paged by cursors (the audit history, the
 * rule-set revisions), with the page number between them. The trail logic is cursor-pages.ts;
 * this only draws it and hands the next trail back. No fetching here: the page refetches when
 * its trail changes.
 */
import { useTranslation } from 'react-i18next';

import { newer, older, pageNumber, type CursorTrail } from './cursor-pages.js';

export function CursorPager({
  trail,
  next,
  onChange,
}: {
  trail: CursorTrail;
  /** The page's `next_cursor`: none on the oldest page, so "Older" is disabled there. */
  next: string | undefined;
  onChange: (trail: CursorTrail) => void;
}) {
  const { t } = useTranslation();
  return (
    <div className="buttons pager">
      <button
        type="button"
        disabled={trail.length === 0}
        onClick={() => {
          onChange(newer(trail));
        }}
      >
        {t('paging.newer')}
      </button>
      <span className="muted">{t('paging.page', { page: pageNumber(trail) })}</span>
      <button
        type="button"
        disabled={next === undefined}
        onClick={() => {
          if (next) onChange(older(trail, next));
        }}
      >
        {t('audit.older')}
      </button>
    </div>
  );
}
