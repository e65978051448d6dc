import { runId } from './infra';

/** Runs once per jest run: fixes the run id every worker and child process inherits. */
export default async function globalSetup(): Promise<void> {
  runId();
}
