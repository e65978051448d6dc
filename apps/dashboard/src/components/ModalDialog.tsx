import type { ReactNode } from 'react';
import { Dialog, Heading, Modal, ModalOverlay } from 'react-aria-components';

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
