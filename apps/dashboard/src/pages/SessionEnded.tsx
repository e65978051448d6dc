import { ModalDialog } from '../components/ModalDialog';
import { SignInForm } from './SignIn';

/** Sign-in over the page when a call found the session ended: the page behind stays as it was. */
export function SessionEnded({ email }: { email: string }) {
  return (
    <ModalDialog title="Your session has ended" onClose={() => undefined} locked>
      <p>Sign in again to go on where you were.</p>
      <SignInForm email={email} />
    </ModalDialog>
  );
}
