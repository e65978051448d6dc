import type { ReactNode } from 'react';
import { Dialog, Heading, Modal, ModalOverlay } from 'react-aria-components';
import { plainWords } from '../errors';
import type { KeyView } from '../api';

/** An API error in plain words, announced to screen readers. Nothing when there is no error. */
export function ErrorNote({ error }: { error: unknown }) {
  if (error === null || error === undefined) return null;
  return (
    <p role="alert" className="error">
      {plainWords(error)}
    </p>
  );
}

/**
 * A modal dialog: focus moves in and stays there, Escape closes it (unless `locked`), the page
 * behind is inert. `onClose` runs whichever way it closes.
 */
export function ModalDialog({ title, children, onClose, locked = false, role = 'dialog' }: { title: string; children: ReactNode; onClose: () => void; locked?: boolean; role?: 'dialog' | 'alertdialog' }) {
  return (
    <ModalOverlay className="overlay" isOpen isDismissable={!locked} isKeyboardDismissDisabled={locked} onOpenChange={(open) => !open && onClose()}>
      <Modal className="modal">
        <Dialog className="dialog" role={role}>
          <Heading slot="title">{title}</Heading>
          {children}
        </Dialog>
      </Modal>
    </ModalOverlay>
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

