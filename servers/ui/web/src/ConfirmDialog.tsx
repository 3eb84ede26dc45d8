import { useEffect, useId, useRef, type ReactNode } from 'react';

interface ConfirmDialogProps {
  open: boolean;
  title: string;
  children?: ReactNode;
  confirmLabel: string;
  onConfirm: () => void;
  onCancel: () => void;
}

/**
 * A native modal <dialog>: the browser keeps focus inside it, closes it on Escape and gives focus back to
 * the button that opened it. Its form's method="dialog" closes it with the pressed button's value.
 */
export function ConfirmDialog({ open, title, children, confirmLabel, onConfirm, onCancel }: ConfirmDialogProps) {
  const dialog = useRef<HTMLDialogElement>(null);
  const cancel = useRef<HTMLButtonElement>(null);
  const headingId = useId();

  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    if (open && !element.open) {
      element.returnValue = '';
      element.showModal();
      // Start on the harmless choice: Enter right away does not act.
      cancel.current?.focus();
    } else if (!open && element.open) {
      element.close();
    }
  }, [open]);

  // Escape is told at once, in its own key event: the native close event comes later, as a task of its
  // own that a quick next key press can overtake (the opener's click would then find the dialog still
  // "open" in the state, and nothing would open).
  const escaped = () => onCancel();
  const closed = () => {
    // A close event that arrives after the dialog was opened again belongs to the earlier closing.
    if (dialog.current?.open) return;
    if (dialog.current?.returnValue === 'confirm') onConfirm();
    else onCancel();
  };

  return (
    <dialog ref={dialog} aria-labelledby={headingId} onCancel={escaped} onClose={closed} className="confirm">
      <form method="dialog">
        <h2 id={headingId}>{title}</h2>
        {children}
        <div className="actions">
          <button type="submit" value="cancel" className="secondary" ref={cancel}>
            Cancel
          </button>
          <button type="submit" value="confirm" className="danger">
            {confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}
