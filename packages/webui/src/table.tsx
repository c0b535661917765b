/**
 * The one table every list page draws: the scrolling panel (`.table-wrap`), a header row of
 * translated column names, the page's own rows, and the empty state — a muted line said instead
 * of the table once the answer is in and holds nothing (never while it is still loading, so
 * "none" is not said before the answer has come), or under the kept header where a page shows its
 * columns even when empty. Rows stay the page's: they carry the data-* attributes the tests find
 * them by. Plain elements styled by styles.css; no data fetching and no page logic here.
 */
import type { ReactNode } from 'react';

export interface EmptyState {
  /** True when the list holds nothing. */
  when: boolean;
  /** The muted line said for an empty list. */
  text: string;
  /** While true the list is still coming: the table stays and nothing is said. */
  isLoading?: boolean;
  /** 'instead' (the default) replaces the table; 'below' keeps the header and says it under. */
  placement?: 'instead' | 'below';
}

export function DataTable({
  columns,
  className,
  testId,
  empty,
  children,
}: {
  /** Column names in order; `false` drops a column (e.g. admin-only), '' is an unnamed one. */
  columns: readonly (string | false)[];
  /** `stack` lays rows out as cards at phone width (each cell names itself by `data-label`). */
  className?: string;
  testId?: string;
  empty?: EmptyState;
  children: ReactNode;
}) {
  const isEmpty = empty !== undefined && empty.when && empty.isLoading !== true;
  const note = isEmpty && <p className="muted">{empty.text}</p>;
  if (isEmpty && empty.placement !== 'below') return note;
  return (
    <>
      <div className="table-wrap">
        <table className={className} data-testid={testId}>
          <thead>
            <tr>
              {columns.map((column, index) =>
                column === false ? null : <th key={index}>{column === '' ? null : column}</th>,
              )}
            </tr>
          </thead>
          <tbody>{children}</tbody>
        </table>
      </div>
      {note}
    </>
  );
}

/**
 * A `stack` table's cells, each named by its column (`data-label`), so at phone width every card
 * line says what it is. Taking the same names as the header keeps the two from drifting apart.
 */
export function LabelledCells({
  columns,
  cells,
}: {
  /** The table's own column names, in the same order as the cells. */
  columns: readonly string[];
  cells: readonly ReactNode[];
}) {
  return cells.map((cell, index) => (
    <td key={index} data-label={columns[index]}>
      {cell}
    </td>
  ));
}
