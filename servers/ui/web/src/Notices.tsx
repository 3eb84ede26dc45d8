/**
 * A view's outcome lines: the status line stays in the page, empty or not, so that a screen reader
 * announces each new notice; an error appears as an alert.
 */
export function Notices({ notice, error }: { notice: string; error: string | null }) {
  return (
    <>
      <p role="status" className="notice">
        {notice}
      </p>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </>
  );
}
