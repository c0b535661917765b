/**
 * The handful of building blocks every page shares: a labelled field (a real <label> around its
 * input, so tests and screen readers find fields by name), a field's problem line, a modal dialog
 * and the form and confirm dialogs built on it, a copy button, an error line, a key-value panel
 * and a KPI card. Plain elements styled by styles.css; no page logic and no HTTP here (ApiError
 * is read only to print a refusal by its code).
 */
import {
  Fragment,
  useEffect,
  useId,
  useState,
  type InputHTMLAttributes,
  type ReactNode,
  type SyntheticEvent,
} from 'react';
import { useTranslation } from 'react-i18next';

import { ApiError } from './http.js';

export function Field({
  label,
  error,
  hint,
  ...input
}: {
  label: string;
  error?: string | undefined;
  hint?: string;
} & InputHTMLAttributes<HTMLInputElement>) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input id={id} aria-invalid={error ? true : undefined} {...input} />
      {hint && <small className="hint">{hint}</small>}
      {error && (
        <small className="field-error" role="alert">
          {error}
        </small>
      )}
    </div>
  );
}

/** A problem named under its field; nothing at all while there is none. */
export function FieldProblem({ text }: { text: string | undefined }) {
  if (!text) return null;
  return (
    <small className="field-error" role="alert">
      {text}
    </small>
  );
}

export function SelectField({
  label,
  value,
  onChange,
  options,
}: {
  label: string;
  value: string;
  onChange: (value: string) => void;
  options: readonly { value: string; label: string }[];
}) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <select
        id={id}
        value={value}
        onChange={(event) => {
          onChange(event.target.value);
        }}
      >
        {options.map((option) => (
          <option key={option.value} value={option.value}>
            {option.label}
          </option>
        ))}
      </select>
    </div>
  );
}

export function Modal({
  title,
  onClose,
  children,
}: {
  title: string;
  onClose: () => void;
  children: ReactNode;
}) {
  const id = useId();
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key === 'Escape') onClose();
    };
    window.addEventListener('keydown', onKey);
    return () => {
      window.removeEventListener('keydown', onKey);
    };
  }, [onClose]);
  return (
    <div className="overlay">
      <div className="modal" role="dialog" aria-modal="true" aria-labelledby={id}>
        <header>
          <h2 id={id}>{title}</h2>
          <button type="button" className="ghost" aria-label="×" onClick={onClose}>
            ×
          </button>
        </header>
        {children}
      </div>
    </div>
  );
}

/**
 * A modal holding one form: the fields, then the server's refusal, then Cancel and the submit
 * button. The browser's own validation is off (`noValidate`): every form checks its fields itself
 * and names the problem on the field. `onSubmit` runs with the page reload already prevented.
 */
export function FormDialog({
  title,
  onClose,
  onSubmit,
  error,
  isPending,
  submitLabel,
  className,
  children,
}: {
  title: string;
  onClose: () => void;
  onSubmit: () => void;
  /** The last refusal of the save, shown above the buttons. */
  error: unknown;
  /** While true the submit button is disabled, so one click sends one request. */
  isPending?: boolean;
  submitLabel: string;
  className?: string;
  children: ReactNode;
}) {
  const submit = (event: SyntheticEvent) => {
    event.preventDefault();
    onSubmit();
  };
  return (
    <Modal title={title} onClose={onClose}>
      <form onSubmit={submit} noValidate className={className}>
        {children}
        <DialogFooter error={error} onCancel={onClose}>
          <button type="submit" className="primary" disabled={isPending}>
            {submitLabel}
          </button>
        </DialogFooter>
      </form>
    </Modal>
  );
}

/** A question in a modal: its text, a refusal if answering failed, Cancel and a danger Confirm. */
export function ConfirmDialog({
  title,
  text,
  error,
  testId,
  onClose,
  onConfirm,
}: {
  title: string;
  text: string;
  error: unknown;
  testId?: string | undefined;
  onClose: () => void;
  onConfirm: () => void;
}) {
  const { t } = useTranslation();
  return (
    <Modal title={title} onClose={onClose}>
      <p data-testid={testId}>{text}</p>
      <DialogFooter error={error} onCancel={onClose}>
        <button type="button" className="danger" onClick={onConfirm}>
          {t('common.confirm')}
        </button>
      </DialogFooter>
    </Modal>
  );
}

/** The foot of a dialog that acts: the server's refusal, then Cancel and the dialog's button. */
function DialogFooter({
  error,
  onCancel,
  children,
}: {
  error: unknown;
  onCancel: () => void;
  children: ReactNode;
}) {
  const { t } = useTranslation();
  return (
    <>
      <ErrorText error={error} />
      <div className="buttons">
        <button type="button" onClick={onCancel}>
          {t('common.cancel')}
        </button>
        {children}
      </div>
    </>
  );
}

export function CopyButton({ text }: { text: string }) {
  const { t } = useTranslation();
  const [copied, setCopied] = useState(false);
  return (
    <button
      type="button"
      onClick={() => {
        void navigator.clipboard.writeText(text).then(() => {
          setCopied(true);
        });
      }}
    >
      {copied ? t('common.copied') : t('common.copy')}
    </button>
  );
}

/** The server's own words for a failure: its stable code and message. */
export function ErrorText({ error }: { error: unknown }) {
  if (!error) return null;
  const text =
    error instanceof ApiError ? `${error.code}: ${error.message}` : (error as Error).message;
  return (
    <p className="error" role="alert">
      {text}
    </p>
  );
}

/** Label/value pairs as a definition list (a client's facts); labels are already translated. */
export function Facts({ items }: { items: readonly (readonly [string, ReactNode])[] }) {
  return (
    <dl className="facts">
      {items.map(([label, value]) => (
        <Fragment key={label}>
          <dt>{label}</dt>
          <dd>{value}</dd>
        </Fragment>
      ))}
    </dl>
  );
}

/** One figure in a row of `.kpis`: a muted label over the value, and an optional note under it. */
export function Kpi({
  label,
  value,
  note,
  testId,
}: {
  label: string;
  value: ReactNode;
  note?: ReactNode;
  testId?: string | undefined;
}) {
  return (
    <div className="card kpi" data-testid={testId}>
      <span className="muted">{label}</span>
      <strong>{value}</strong>
      {note !== undefined && <small className="muted">{note}</small>}
    </div>
  );
}

export function StatusBadge({ kind, label }: { kind: string; label: string }) {
  return <span className={`badge badge-${kind}`}>{label}</span>;
}

export function formatBytes(value: number): string {
  if (value < 1024) return `${value} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let scaled = value;
  let unit = -1;
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit++;
  }
  return `${scaled.toFixed(1)} ${units[unit] ?? ''}`;
}
