import type { Key, ReactNode } from 'react';

/** One column: its header, what each row shows in it, and the classes the styles know it by. */
export interface Column<Row> {
  header: string;
  cell: (row: Row) => ReactNode;
  /** The cells' class: `number` (figures, right-aligned), `mono key`, `last-error`, `nowrap`. */
  className?: string;
  /** The header's class, when it takes one too (`number` over a column of figures). */
  headerClassName?: string;
  /** This column names its row: its cells are row headers (`<th scope="row">`). */
  rowHeader?: boolean;
}

interface TableProps<Row> {
  /** What the rows are, said first to a screen reader. */
  caption: ReactNode;
  captionId?: string;
  /** The caption for screen readers only: the heading above the table already says it on screen. */
  captionHidden?: boolean;
  columns: readonly Column<Row>[];
  rows: readonly Row[];
  rowKey: (row: Row, index: number) => Key;
  /** The name of the scrolling region (it takes the focus, so that the keyboard can scroll it). */
  label: string;
  /** The table's own class (`messages`). */
  className?: string;
  /** A row across every column when there are no rows; without it the body stays empty. */
  empty?: ReactNode;
  /** The rows are being replaced (aria-busy on the region). */
  busy?: boolean;
  /** A region of limited height that scrolls down as well (the charts' tables). */
  short?: boolean;
}

/**
 * The page's tables, all alike: a captioned table with column headers (`scope="col"`), inside a
 * horizontally scrolling region that the keyboard can reach.
 */
export function Table<Row>({ caption, captionId, captionHidden = false, columns, rows, rowKey, label, className, empty, busy, short = false }: TableProps<Row>) {
  return (
    <div className={short ? 'table-scroll short' : 'table-scroll'} tabIndex={0} role="group" aria-label={label} aria-busy={busy}>
      <table className={className}>
        <caption id={captionId} className={captionHidden ? 'visually-hidden' : undefined}>
          {caption}
        </caption>
        <thead>
          <tr>
            {columns.map((column) => (
              <th key={column.header} scope="col" className={column.headerClassName}>
                {column.header}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 && empty !== undefined && (
            <tr>
              <td colSpan={columns.length} className="empty">
                {empty}
              </td>
            </tr>
          )}
          {rows.map((row, index) => (
            <tr key={rowKey(row, index)}>
              {columns.map((column) =>
                column.rowHeader ? (
                  <th key={column.header} scope="row" className={column.className}>
                    {column.cell(row)}
                  </th>
                ) : (
                  <td key={column.header} className={column.className}>
                    {column.cell(row)}
                  </td>
                ),
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
