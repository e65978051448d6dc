import { plainWords } from '../errors';
import type { KeyView } from '../api';

/**
 * Small pieces every page uses. The modal dialog is in ModalDialog.tsx: react-aria's overlays are
 * only loaded with the first dialog, not with the key list (src/App.tsx, first load).
 */

/** An API error in plain words, announced to screen readers. Nothing when there is no error. */
export function ErrorNote({ error }: { error: unknown }) {
  if (error === null || error === undefined) return null;
  return (
    <p role="alert" className="error">
      {plainWords(error)}
    </p>
  );
}

const STATUS_WORDS: Record<KeyView['status'], string> = { active: 'Active', disabled: 'Disabled', expired: 'Expired', revoked: 'Revoked' };

export function StatusBadge({ status }: { status: KeyView['status'] }) {
  return <span className={`badge badge-${status}`}>{STATUS_WORDS[status]}</span>;
}

export function Spinner({ label = 'Loading…' }: { label?: string }) {
  return (
    <p className="muted" role="status">
      {label}
    </p>
  );
}

